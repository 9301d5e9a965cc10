//! Batches: many writes in one commit, all or nothing. A batch larger than one commit can carry
//! fails with [`Error::TxnTooLarge`] and writes nothing; so does any other error of any item.

use super::Database;
use crate::flash::BlockDevice;
use crate::value::{self, Value};
use crate::{Error, Result};
use alloc::vec::Vec;

impl<D: BlockDevice> Database<D> {
    /// Insert every document of `docs` in one commit; returns their `_id`s in order. In a
    /// capped collection a later document of the batch may evict an earlier one.
    pub fn insert_many(&mut self, coll: &str, docs: &[Value]) -> Result<Vec<u64>> {
        self.transaction(|t| docs.iter().map(|d| t.insert(coll, d)).collect())
    }

    /// [`Database::insert_many`] with the documents as a JSON array of objects.
    pub fn insert_many_json(&mut self, coll: &str, json: &str) -> Result<Vec<u64>> {
        let Value::Array(docs) = value::from_json(json.as_bytes(), self.cfg.max_depth)? else {
            return Err(Error::InvalidArgument);
        };
        self.insert_many(coll, &docs)
    }

    /// Delete the documents with these `_id`s in one commit; returns how many existed.
    pub fn delete_ids(&mut self, coll: &str, ids: &[u64]) -> Result<u64> {
        self.transaction(|t| {
            let mut n = 0u64;
            for id in ids {
                if t.delete(coll, *id)? {
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    /// Put every `(key, value)` pair into namespace `ns` in one commit (a key given twice
    /// keeps its last value).
    pub fn kv_put_many(&mut self, ns: &str, entries: &[(&[u8], &[u8])]) -> Result<()> {
        self.transaction(|t| {
            for (k, v) in entries {
                t.kv_put(ns, k, v)?;
            }
            Ok(())
        })
    }

    /// Delete these keys from `ns` in one commit; returns how many existed.
    pub fn kv_delete_many(&mut self, ns: &str, keys: &[&[u8]]) -> Result<u64> {
        self.transaction(|t| {
            let mut n = 0u64;
            for k in keys {
                if t.kv_delete(ns, k)? {
                    n += 1;
                }
            }
            Ok(n)
        })
    }
}
