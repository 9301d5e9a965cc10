//! Crypto envelope (in progress).
