//! The pure query layer: filters ([`Filter`]), find options (sort, skip, limit, projection:
//! [`FindOptions`]) and a bounded `distinct` ([`Distinct`]). Everything works on
//! [`Value`](crate::value::Value)s; there is no I/O here. docs/SPEC.md, section
//! "Query language", is the normative description.
//!
//! Every parser takes [`Limits`] and refuses what exceeds them with a precise error
//! ([`Error::BadFilter`], [`Error::TooDeep`], [`Error::TooLarge`]); nothing here panics or
//! recurses deeper than a fixed bound.

mod filter;
mod options;
#[cfg(feature = "regex")]
mod regex;
#[cfg(test)]
mod tests;

pub use filter::{Filter, ValueType};
pub use options::{compare_docs, Distinct, FindOptions, Order, Projection};

use crate::error::{Error, Result};
use crate::value::MAX_DEPTH_LIMIT;

/// Bounds on what a query may ask for, fixed by the caller (the database configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of the filter (or options) document, counted like
    /// [`Value::depth`](crate::value::Value::depth). Clamped to [`MAX_DEPTH_LIMIT`].
    pub max_depth: usize,
    /// Longest `$in`/`$nin`/`$and`/`$or`/`$nor` list, and most sort keys or projection paths.
    pub max_list: usize,
    /// Work budget of one `$regex` test of one string, in matcher steps. Also bounds the
    /// matcher's backtracking stack (at most one entry per step).
    pub regex_steps: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 8,
            max_list: 64,
            regex_steps: 10_000,
        }
    }
}

impl Limits {
    fn depth(&self) -> usize {
        self.max_depth.min(MAX_DEPTH_LIMIT)
    }
}

/// Checks a dotted path given in a query: non-empty, no empty segment, at most
/// [`MAX_DEPTH_LIMIT`] segments (deeper paths can never exist in a stored document).
fn check_path(path: &str) -> Result<()> {
    let mut n = 0;
    for seg in path.split('.') {
        n += 1;
        if seg.is_empty() || n > MAX_DEPTH_LIMIT {
            return Err(Error::BadFilter);
        }
    }
    Ok(())
}
