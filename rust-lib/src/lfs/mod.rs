//! littlefs wrapper (in progress).
