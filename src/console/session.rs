//! Browser sessions and the login rate limits.
//!
//! A session lives only in memory, keyed by 256 random bits that are the
//! cookie's value: nothing in the cookie can be forged or replayed after
//! logout, and a restart of the gateway logs everyone out (acceptable for an
//! operator console; the people log in again). Each session has its own
//! CSRF token, which every POST must echo.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// 256 random bits from the OS, hex.
pub fn random_id() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS gives random bytes");
    hex::encode(bytes)
}

#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    created: Instant,
    last_used: Instant,
}

#[derive(Debug)]
pub struct Sessions {
    idle: Duration,
    absolute: Duration,
    table: parking_lot::Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(idle: Duration, absolute: Duration) -> Self {
        Self {
            idle,
            absolute,
            table: Default::default(),
        }
    }

    /// A new session for `user`: its id (the cookie) and the session.
    /// Expired sessions are swept here, so the table holds at most the
    /// sessions begun within the absolute expiry.
    pub fn begin(&self, user: &str) -> (String, Session) {
        let now = Instant::now();
        let id = random_id();
        let session = Session {
            user: user.to_string(),
            csrf: random_id(),
            created: now,
            last_used: now,
        };
        let mut table = self.table.lock();
        table.retain(|_, s| self.alive(s, now));
        table.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session of this id, its idle time restarted; an expired one
    /// is removed and is `None` like an unknown one.
    pub fn touch(&self, id: &str) -> Option<Session> {
        self.touch_at(id, Instant::now())
    }

    fn touch_at(&self, id: &str, now: Instant) -> Option<Session> {
        let mut table = self.table.lock();
        let s = table.get_mut(id)?;
        if !self.alive(s, now) {
            table.remove(id);
            return None;
        }
        s.last_used = now;
        Some(s.clone())
    }

    /// Whether the session of this id is live, without restarting its idle
    /// time: a page's live updates must not keep an unattended console
    /// logged in.
    pub fn is_live(&self, id: &str) -> bool {
        let now = Instant::now();
        self.table
            .lock()
            .get(id)
            .is_some_and(|s| self.alive(s, now))
    }

    pub fn end(&self, id: &str) {
        self.table.lock().remove(id);
    }

    fn alive(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_used) < self.idle && now.duration_since(s.created) < self.absolute
    }
}

/// Failed logins allowed per user name within [`WINDOW`].
pub const PER_USER: usize = 5;
/// Failed logins allowed per client address within [`WINDOW`]: more than
/// per user, since several people may share one address (a control room
/// behind NAT), yet few enough to stop a guesser trying many names.
pub const PER_ADDRESS: usize = 20;
/// The window the failures are counted over; a refused login may be tried
/// again once the oldest failure in it is this old.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Failed logins per user name and per address over the last [`WINDOW`].
#[derive(Debug, Default)]
pub struct Limiter {
    failures: parking_lot::Mutex<HashMap<(bool, String), VecDeque<Instant>>>,
}

impl Limiter {
    /// Whether a login for `user` from `address` may be tried now.
    pub fn allows(&self, user: &str, address: &str) -> bool {
        let now = Instant::now();
        let mut f = self.failures.lock();
        let mut under = |key: (bool, String), limit: usize| {
            let q = f.entry(key).or_default();
            while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                q.pop_front();
            }
            q.len() < limit
        };
        // Both are evaluated so that both windows are trimmed.
        let user_ok = under((true, user.to_string()), PER_USER);
        let address_ok = under((false, address.to_string()), PER_ADDRESS);
        f.retain(|_, q| !q.is_empty());
        user_ok && address_ok
    }

    pub fn failed(&self, user: &str, address: &str) {
        let now = Instant::now();
        let mut f = self.failures.lock();
        f.entry((true, user.to_string()))
            .or_default()
            .push_back(now);
        f.entry((false, address.to_string()))
            .or_default()
            .push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_when_idle_or_ended() {
        let s = Sessions::new(Duration::from_millis(50), Duration::from_secs(60));
        let (id, first) = s.begin("li.wei");
        assert_eq!(s.touch(&id).unwrap().csrf, first.csrf);
        assert!(s.touch("nope").is_none());
        let later = Instant::now() + Duration::from_millis(40);
        assert!(s.touch_at(&id, later).is_some(), "used within 50 ms");
        let idle = later + Duration::from_millis(50);
        assert!(s.touch_at(&id, idle).is_none(), "idle for 50 ms");
        let (id, _) = s.begin("li.wei");
        s.end(&id);
        assert!(s.touch(&id).is_none());
    }

    #[test]
    fn sessions_end_at_the_absolute_expiry_however_used() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_millis(60));
        let (id, _) = s.begin("li.wei");
        let start = Instant::now();
        for ms in [20, 40, 55] {
            let at = start + Duration::from_millis(ms);
            assert!(s.touch_at(&id, at).is_some(), "used at {ms} ms");
        }
        assert!(s.touch_at(&id, start + Duration::from_millis(61)).is_none());
    }

    #[test]
    fn failures_are_limited_per_user_and_per_address() {
        let l = Limiter::default();
        for _ in 0..PER_USER {
            assert!(l.allows("li.wei", "10.0.0.1"));
            l.failed("li.wei", "10.0.0.1");
        }
        assert!(
            !l.allows("li.wei", "10.0.0.2"),
            "the user is locked anywhere"
        );
        assert!(l.allows("wang.fang", "10.0.0.1"));
        for i in 0..PER_ADDRESS - PER_USER {
            l.failed(&format!("guess{i}"), "10.0.0.1");
        }
        assert!(!l.allows("wang.fang", "10.0.0.1"), "the address is locked");
        assert!(l.allows("wang.fang", "10.0.0.3"));
    }
}
