//! The two column types whose storage differs by backend, so that every query
//! that reads or binds them is written once: a time (INTEGER microseconds
//! since the Unix epoch on SQLite, `timestamptz` on PostgreSQL; both keep
//! whole microseconds, so a value read back equals the one written) and a
//! JSON document (TEXT on SQLite, `jsonb` on PostgreSQL).

use chrono::{DateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgHasArrayType, PgTypeInfo};
use sqlx::{Database, Decode, Encode, Postgres, Sqlite, Type};

/// A time as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoreTime(pub DateTime<Utc>);

impl StoreTime {
    /// From microseconds since the epoch (the rows' and the spool's unit).
    pub fn from_micros(us: i64) -> Self {
        Self(DateTime::from_timestamp_micros(us).unwrap_or_default())
    }

    pub fn micros(self) -> i64 {
        self.0.timestamp_micros()
    }
}

impl From<DateTime<Utc>> for StoreTime {
    fn from(t: DateTime<Utc>) -> Self {
        Self(t)
    }
}

impl From<StoreTime> for DateTime<Utc> {
    fn from(t: StoreTime) -> Self {
        t.0
    }
}

/// Microseconds since the epoch: what the windowed figures compute in.
impl From<StoreTime> for i64 {
    fn from(t: StoreTime) -> Self {
        t.micros()
    }
}

impl Type<Sqlite> for StoreTime {
    fn type_info() -> <Sqlite as Database>::TypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &<Sqlite as Database>::TypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for StoreTime {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<'q, Sqlite>>::encode(self.micros(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for StoreTime {
    fn decode(value: <Sqlite as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let us = <i64 as Decode<'r, Sqlite>>::decode(value)?;
        DateTime::from_timestamp_micros(us)
            .map(StoreTime)
            .ok_or_else(|| format!("time {us} µs is out of range").into())
    }
}

impl Type<Postgres> for StoreTime {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl PgHasArrayType for StoreTime {
    fn array_type_info() -> PgTypeInfo {
        <DateTime<Utc> as PgHasArrayType>::array_type_info()
    }
}

impl<'q> Encode<'q, Postgres> for StoreTime {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for StoreTime {
    fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        <DateTime<Utc> as Decode<'r, Postgres>>::decode(value).map(StoreTime)
    }
}

/// A JSON document as text. PostgreSQL keeps it as `jsonb`, which does not
/// keep the text's spacing or key order: read it back as a value, not as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreJson(pub String);

impl StoreJson {
    /// The document, `null` when the text is not JSON.
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }
}

impl Type<Sqlite> for StoreJson {
    fn type_info() -> <Sqlite as Database>::TypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &<Sqlite as Database>::TypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for StoreJson {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.0.clone(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for StoreJson {
    fn decode(value: <Sqlite as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        <String as Decode<'r, Sqlite>>::decode(value).map(StoreJson)
    }
}

impl Type<Postgres> for StoreJson {
    fn type_info() -> PgTypeInfo {
        <sqlx::types::Json<()> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <sqlx::types::Json<()> as Type<Postgres>>::compatible(ty)
    }
}

impl PgHasArrayType for StoreJson {
    fn array_type_info() -> PgTypeInfo {
        <sqlx::types::Json<()> as PgHasArrayType>::array_type_info()
    }
}

impl<'q> Encode<'q, Postgres> for StoreJson {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        // jsonb's binary form: a version byte (1), then the text. The text is
        // sent as it is rather than parsed and written again.
        buf.push(1);
        buf.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
}

impl<'r> Decode<'r, Postgres> for StoreJson {
    fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        <serde_json::Value as Decode<'r, Postgres>>::decode(value).map(|v| StoreJson(v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip() {
        let t = StoreTime::from_micros(1_764_000_000_123_456);
        assert_eq!(t.micros(), 1_764_000_000_123_456);
        assert_eq!(i64::from(t), t.micros());
        assert_eq!(DateTime::<Utc>::from(t).timestamp_subsec_micros(), 123_456);
    }
}
