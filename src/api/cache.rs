//! Answers many clients ask for at once (a SCADA wall polling the lamp list,
//! dashboards), kept as the bytes sent for `api.cache_ttl`: one computation
//! per key and period however many ask; the others wait for it rather than
//! walk the city again. A confirmed command makes every entry stale at once,
//! as it does the figures now; a poll's values show within `cache_ttl`.

use super::{blocking, ApiError};
use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// Keys kept at most; past it expired entries go, and if that is not enough,
/// all of them (the next request computes again).
const MAX_ENTRIES: usize = 1024;

#[derive(Debug)]
pub struct ApiCache {
    ttl: Duration,
    entries: parking_lot::Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    /// When its computation began.
    at: Instant,
    /// `LiveState::writes_applied` before it began.
    writes: u64,
    answer: Arc<OnceCell<Bytes>>,
}

impl ApiCache {
    /// `ttl` 0 keeps nothing.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// The answer for `key`: a fresh one computed since the `writes`-th
    /// confirmed write, else `compute` on the blocking pool. Callers of the
    /// same key meanwhile share that computation; a failed one is not kept.
    pub(super) async fn get(
        &self,
        key: String,
        writes: u64,
        compute: impl FnOnce() -> Result<Bytes, ApiError> + Send + 'static,
    ) -> Result<Bytes, ApiError> {
        if self.ttl.is_zero() {
            return blocking(compute).await?;
        }
        let answer = {
            let mut entries = self.entries.lock();
            match entries.get(&key) {
                Some(e) if e.at.elapsed() < self.ttl && e.writes == writes => e.answer.clone(),
                _ => {
                    if entries.len() >= MAX_ENTRIES {
                        entries.retain(|_, e| e.at.elapsed() < self.ttl);
                        if entries.len() >= MAX_ENTRIES {
                            entries.clear();
                        }
                    }
                    let answer = Arc::new(OnceCell::new());
                    entries.insert(
                        key,
                        Entry {
                            at: Instant::now(),
                            writes,
                            answer: answer.clone(),
                        },
                    );
                    answer
                }
            }
        };
        answer
            .get_or_try_init(|| async { blocking(compute).await? })
            .await
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting(n: &Arc<AtomicUsize>) -> impl FnOnce() -> Result<Bytes, ApiError> + Send {
        let n = n.clone();
        move || {
            std::thread::sleep(Duration::from_millis(20));
            let k = n.fetch_add(1, Ordering::SeqCst);
            Ok(Bytes::from(k.to_string()))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_computation_per_key_and_period_and_a_write_makes_it_stale() {
        let cache = Arc::new(ApiCache::new(Duration::from_secs(60)));
        let n = Arc::new(AtomicUsize::new(0));
        let asks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, f) = (cache.clone(), counting(&n));
                tokio::spawn(async move { cache.get("k".into(), 0, f).await.unwrap() })
            })
            .collect();
        for a in asks {
            assert_eq!(a.await.unwrap(), "0");
        }
        assert_eq!(n.load(Ordering::SeqCst), 1, "16 callers, one computation");
        assert_eq!(
            cache.get("other".into(), 0, counting(&n)).await.unwrap(),
            "1"
        );
        // A confirmed write since: computed again.
        assert_eq!(cache.get("k".into(), 1, counting(&n)).await.unwrap(), "2");
        assert_eq!(cache.get("k".into(), 1, counting(&n)).await.unwrap(), "2");
    }

    #[tokio::test]
    async fn a_failure_is_not_kept_and_ttl_zero_keeps_nothing() {
        let cache = ApiCache::new(Duration::from_secs(60));
        let err = cache
            .get("k".into(), 0, || Err(ApiError::Internal("boom".into())))
            .await;
        assert!(err.is_err());
        let ok = cache.get("k".into(), 0, || Ok(Bytes::from("x"))).await;
        assert_eq!(ok.unwrap(), "x");

        let none = ApiCache::new(Duration::ZERO);
        let n = Arc::new(AtomicUsize::new(0));
        none.get("k".into(), 0, counting(&n)).await.unwrap();
        none.get("k".into(), 0, counting(&n)).await.unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }
}
