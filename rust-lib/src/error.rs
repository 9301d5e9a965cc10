//! The one error type of the library. Every fallible call returns [`Result`].

use core::fmt;

/// Everything that can go wrong. Corrupt or hostile data always maps to [`Error::Corrupt`],
/// never to a panic or to wrong data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The block device reported an I/O error.
    Io,
    /// Data on flash failed its authentication tag or checksum, or is structurally invalid.
    Corrupt,
    /// The database is encrypted and the key (or passphrase) given does not open it.
    WrongKey,
    /// The database is encrypted but no key was given, or a key was given for a plain database.
    KeyMismatch,
    /// The flash (or a configured bound of the store) is full.
    NoSpace,
    /// No database exists on the volume (format it first).
    NotFormatted,
    /// The on-flash format version, or a feature it uses (compressed pages without the
    /// `compress` feature), is not one this build reads.
    Unsupported,
    /// The named collection or namespace does not exist.
    NotFound,
    /// The object to create exists already.
    Exists,
    /// A collection, namespace or key name is empty, too long or has forbidden characters.
    InvalidName,
    /// An argument is outside what the call accepts.
    InvalidArgument,
    /// A document, key or value is larger than the configured limit; also a query list past
    /// its bound or a `$regex` test past its step budget.
    TooLarge,
    /// A document (or a query filter) nests deeper than the configured limit.
    TooDeep,
    /// JSON text could not be parsed.
    Json,
    /// A patch document is malformed (unknown operator, wrong operand type).
    InvalidPatch,
    /// A transaction's write set exceeds the configured bound.
    TxnTooLarge,
    /// A RAM allocation of the configured size failed or a configured RAM bound was exceeded.
    NoMemory,
    /// Another littlefs error, with its (negative) littlefs code.
    Fs(i32),
    /// A collection schema is malformed or uses an unsupported keyword.
    BadSchema,
    /// A query filter or find option is malformed: unknown operator, wrong operand type, bad
    /// path or regex pattern.
    BadFilter,
    /// A write would give a unique index a value another document holds already.
    Unique,
    /// A document does not satisfy its collection's schema
    /// ([`Database::last_violation`](crate::db::Database::last_violation) names the field).
    SchemaViolation,
    /// Waiting for the platform lock (or for another task's open transaction) took longer than
    /// the configured timeout.
    Timeout,
    /// Another owner's transaction is open; it must commit, abort or be declared stale first.
    Busy,
    /// A backup stream fails verification: tampered, truncated, wrong key or not a backup.
    BadBackup,
    /// A backup chain is broken: an incremental out of order, from another database, or based
    /// on a sequence number this database can no longer serve (take a full backup).
    BackupChain,
}

/// `core::result::Result` with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::Io => "flash I/O error",
            Error::Corrupt => "data on flash is corrupt",
            Error::WrongKey => "wrong key",
            Error::KeyMismatch => "encryption setting does not match the database",
            Error::NoSpace => "no space left",
            Error::NotFormatted => "no database on this volume",
            Error::Unsupported => "unsupported format version",
            Error::NotFound => "not found",
            Error::Exists => "already exists",
            Error::InvalidName => "invalid name",
            Error::InvalidArgument => "invalid argument",
            Error::TooLarge => "too large",
            Error::TooDeep => "nested too deeply",
            Error::Json => "invalid JSON",
            Error::InvalidPatch => "invalid patch",
            Error::TxnTooLarge => "transaction too large",
            Error::NoMemory => "out of memory",
            Error::Fs(_) => "filesystem error",
            Error::BadSchema => "invalid schema",
            Error::BadFilter => "invalid filter",
            Error::Unique => "unique index violated",
            Error::SchemaViolation => "schema violated",
            Error::Timeout => "timed out",
            Error::Busy => "another transaction is open",
            Error::BadBackup => "invalid backup",
            Error::BackupChain => "broken backup chain",
        };
        match self {
            Error::Fs(code) => write!(f, "{s} ({code})"),
            _ => f.write_str(s),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
