//! What the energy baseline reads of the schedule's history
//! (`schedule_versions`, written through the backlog): the versions of a
//! window and their contents. Which versions make a window's pieces is
//! `crate::schedule::history`'s rule.

use crate::schedule::history::VersionHead;
use crate::store::db::{with_pool, Db, StoreTime};
use chrono::{DateTime, Utc};

const HEADS: &str = "SELECT effective_at, digest FROM schedule_versions";

/// A row of `HEADS`.
type HeadRow = (StoreTime, String);

fn head((effective, digest): HeadRow) -> VersionHead {
    VersionHead {
        effective: effective.into(),
        digest,
    }
}

impl Db {
    /// The versions a window `[from, to)` needs, in the order they took
    /// effect: the one in force at `from` (the latest at or before it; the
    /// earliest of all when none is that old) and every one that took
    /// effect inside the window. Empty when none was recorded.
    pub async fn schedule_version_heads(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<VersionHead>, sqlx::Error> {
        let at_from = format!(
            "{HEADS} WHERE effective_at <= $1 ORDER BY effective_at DESC, version_id DESC LIMIT 1"
        );
        let inside = format!(
            "{HEADS} WHERE effective_at > $1 AND effective_at < $2 \
             ORDER BY effective_at, version_id"
        );
        let earliest = format!("{HEADS} ORDER BY effective_at, version_id LIMIT 1");
        let (first, rest): (Option<HeadRow>, Vec<HeadRow>) = with_pool!(self, pool => {
            let first = sqlx::query_as(&at_from)
                .bind(StoreTime(from))
                .fetch_optional(pool)
                .await?;
            let rest = sqlx::query_as(&inside)
                .bind(StoreTime(from))
                .bind(StoreTime(to))
                .fetch_all(pool)
                .await?;
            (first, rest)
        });
        let first = match first {
            Some(f) => Some(f),
            // Before the first version: the earliest (inside the window if
            // any is, else after it).
            None if rest.is_empty() => {
                with_pool!(self, pool => sqlx::query_as(&earliest).fetch_optional(pool).await?)
            }
            None => None,
        };
        Ok(first.into_iter().chain(rest).map(head).collect())
    }

    /// The content (JSON) of the version with this digest, if recorded.
    pub async fn schedule_version_content(
        &self,
        digest: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        let sql = "SELECT content FROM schedule_versions WHERE digest = $1 \
                   ORDER BY version_id LIMIT 1";
        with_pool!(self, pool => sqlx::query_scalar(sql).bind(digest).fetch_optional(pool).await)
    }
}
