//! cairndb: a secure, power-fail-safe document and key-value database for microcontrollers.
//!
//! Layers, each using only the ones above it in this list:
//! - [`flash`]: block devices (the media) and the strict simulated NOR flash used by tests;
//! - [`lfs`]: a thin owned wrapper over the littlefs C library with runtime geometry;
//! - [`crypto`]: the sealed-record envelope (AES-256-CTR + HMAC-SHA256, synthetic IV) and keys;
//! - [`value`]: the document value model, JSON text and limits;
//! - `format`: pure byte encodings of keys, records, pages, WAL frames and the root record;
//! - `engine`: the log-structured store (WAL in littlefs attributes, sorted segment files);
//! - [`db`]: the public database API (collections, documents, key-value namespaces);
//! - [`backup`]: the backup stream codec (full and incremental, sealed, checked), beside the
//!   engine: it only needs the crypto envelope and, for raw partitions, a block device.
//! - [`shared`]: one database shared by tasks (a platform lock, detached transactions).
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod backup;
pub mod crypto;
pub mod db;
pub mod engine;
pub mod error;
pub mod flash;
pub mod format;
pub mod index;
pub mod lfs;
pub mod planner;
pub mod query;
pub mod schema;
pub mod shared;
pub mod value;

pub use error::{Error, Result};
