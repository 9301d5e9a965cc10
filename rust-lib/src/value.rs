//! Value model (in progress).
