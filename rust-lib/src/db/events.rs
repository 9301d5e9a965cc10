//! The event log: a bounded record of what happened to the database (rekeys now; backups,
//! restores, integrity checks and corruption found as those features log them), kept in the
//! reserved capped collection [`EVENTS`]. An event is a document
//! `{"level": int, "code": int, "msg": str}` with its `_id` (order of logging) and `_ts`
//! (the database clock). The oldest events are evicted past [`Config::event_log_docs`].
//!
//! [`Config::event_log_docs`]: super::Config::event_log_docs

use super::{CollectionOptions, Database, Txn};
use crate::flash::BlockDevice;
use crate::value::{Map, Value};
use crate::{Error, Result};
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

/// The reserved collection holding the event log (readable with the usual document calls).
pub const EVENTS: &str = "_events";
/// Longest event message kept (bytes); a longer one is cut at a character boundary.
pub const MAX_EVENT_MSG: usize = 120;
/// Event code of a completed [`Database::rekey`] (level Info).
pub const EVENT_REKEY: u32 = 1;
/// A backup was written (message: kind, end sequence number, records).
pub const EVENT_BACKUP: u32 = 2;
/// The database was restored from a backup chain.
pub const EVENT_RESTORE: u32 = 3;
/// An integrity check found problems (message: what).
pub const EVENT_CORRUPTION: u32 = 4;
/// A repair ran (message: what it quarantined, fixed and rebuilt).
pub const EVENT_REPAIR: u32 = 5;

/// Severity of an event; a lower value is more severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl Level {
    fn from_int(v: i64) -> Option<Self> {
        Some(match v {
            0 => Level::Error,
            1 => Level::Warn,
            2 => Level::Info,
            3 => Level::Debug,
            _ => return None,
        })
    }
}

/// One logged event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its `_id` in [`EVENTS`]: increases with every event logged.
    pub id: u64,
    pub level: Level,
    pub code: u32,
    pub msg: String,
    /// The database clock when it was logged (0 without a clock).
    pub ts: u64,
}

impl Event {
    /// Read an event document; anything else in the reserved collection is corruption.
    fn from_doc(doc: &Value) -> Result<Self> {
        let m = doc.as_map().ok_or(Error::Corrupt)?;
        let int = |f: &str| m.get(f).and_then(Value::as_i64).ok_or(Error::Corrupt);
        Ok(Event {
            id: u64::try_from(int("_id")?).map_err(|_| Error::Corrupt)?,
            level: Level::from_int(int("level")?).ok_or(Error::Corrupt)?,
            code: u32::try_from(int("code")?).map_err(|_| Error::Corrupt)?,
            msg: String::from(m.get("msg").and_then(Value::as_str).ok_or(Error::Corrupt)?),
            ts: u64::try_from(int("_ts")?).map_err(|_| Error::Corrupt)?,
        })
    }
}

/// `msg` cut to at most [`MAX_EVENT_MSG`] bytes at a character boundary.
fn clip(msg: &str) -> &str {
    let mut end = msg.len().min(MAX_EVENT_MSG);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    msg.get(..end).unwrap_or("")
}

impl<D: BlockDevice> Txn<'_, D> {
    /// Append an event to the log in this transaction, so it commits (or not) with the action
    /// it records. A no-op when `event_log_docs` is 0. The first event creates [`EVENTS`] with
    /// a cap of `event_log_docs` documents.
    pub fn log_event(&mut self, level: Level, code: u32, msg: &str) -> Result<()> {
        let capacity = self.db.cfg.event_log_docs;
        if capacity == 0 {
            return Ok(());
        }
        if self.collection_id(EVENTS)?.is_none() {
            let opts = CollectionOptions {
                max_docs: Some(capacity),
                max_bytes: None,
            };
            self.create_capped(EVENTS, &opts)?;
        }
        let mut m = Map::with_capacity(3);
        m.insert(String::from("level"), Value::Int(level as i64));
        m.insert(String::from("code"), Value::Int(i64::from(code)));
        m.insert(String::from("msg"), Value::Str(String::from(clip(msg))));
        self.insert_doc(EVENTS, &Value::Map(m), None).map(|_| ())
    }
}

impl<D: BlockDevice> Database<D> {
    /// Append an event to the log in its own commit (see [`Txn::log_event`]).
    pub fn log_event(&mut self, level: Level, code: u32, msg: &str) -> Result<()> {
        self.transaction(|t| t.log_event(level, code, msg))
    }

    /// The newest events at `min_level` or more severe, newest first, at most `limit` of them
    /// (RAM: at most `limit` events, and never more than the log holds).
    pub fn events(&mut self, min_level: Level, limit: usize) -> Result<Vec<Event>> {
        let mut keep: VecDeque<Event> = VecDeque::new();
        if limit == 0 {
            return Ok(Vec::new());
        }
        for doc in self.docs(EVENTS)? {
            let e = Event::from_doc(&doc?)?;
            if e.level <= min_level {
                if keep.len() == limit {
                    keep.pop_front();
                }
                keep.push_back(e);
            }
        }
        Ok(keep.into_iter().rev().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_clipped_at_a_character_boundary() {
        let long = "é".repeat(100);
        let c = clip(&long);
        assert!(c.len() <= MAX_EVENT_MSG && c.len() >= MAX_EVENT_MSG - 1);
        assert!(c.chars().all(|ch| ch == 'é'));
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn levels_round_trip_and_order_by_severity() {
        for l in [Level::Error, Level::Warn, Level::Info, Level::Debug] {
            assert_eq!(Level::from_int(l as i64), Some(l));
        }
        assert_eq!(Level::from_int(4), None);
        assert!(Level::Error < Level::Warn && Level::Info < Level::Debug);
    }
}
