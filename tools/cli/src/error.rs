//! Errors with the exit codes `cairn` documents, one line each on stderr.

use cairndb::Error as DbError;
use std::fmt;

/// Exit codes (also in `--help` and the README). Scripts branch on them, so they never change.
pub const EXIT_OK: u8 = 0;
/// The operation failed (I/O, no space, a unique or schema violation, ...).
pub const EXIT_FAILED: u8 = 1;
/// Bad usage: the command line, or a filter, patch or JSON document it gives.
pub const EXIT_USAGE: u8 = 2;
/// The key or passphrase does not open the image, or the image's encryption is not the one
/// the options say.
pub const EXIT_KEY: u8 = 3;
/// The image, or a backup stream, is damaged or is not what it should be; `check` found
/// problems.
pub const EXIT_CORRUPT: u8 = 4;
/// A document, key, collection, namespace, index or file named does not exist.
pub const EXIT_NOT_FOUND: u8 = 5;

/// The text shown at the end of `cairn --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  the operation failed (I/O, no space, unique index or schema violated, ...)
  2  usage: bad command line, or a bad filter, patch or JSON document given to it
  3  key: wrong key or passphrase, or the image's encryption differs from the options
  4  corrupt: the image or a backup is damaged, is not a cairndb image, or check found problems
  5  not found: a document, key, collection, index or file named does not exist
Errors go to stderr as one line (a JSON object with --json).";

/// A failure: what to print and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub code: u8,
    pub msg: String,
}

pub type Res<T> = Result<T, CliError>;

impl CliError {
    pub fn new(code: u8, msg: impl Into<String>) -> Self {
        CliError {
            code,
            msg: msg.into(),
        }
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        Self::new(EXIT_FAILED, msg)
    }
    pub fn usage(msg: impl Into<String>) -> Self {
        Self::new(EXIT_USAGE, msg)
    }
    pub fn key(msg: impl Into<String>) -> Self {
        Self::new(EXIT_KEY, msg)
    }
    pub fn corrupt(msg: impl Into<String>) -> Self {
        Self::new(EXIT_CORRUPT, msg)
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(EXIT_NOT_FOUND, msg)
    }

    /// The same error with `what` in front of its message.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.msg = format!("{what}: {}", self.msg);
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

/// The exit code of a library error.
pub fn code_of(e: DbError) -> u8 {
    match e {
        DbError::WrongKey | DbError::KeyMismatch => EXIT_KEY,
        DbError::Corrupt
        | DbError::NotFormatted
        | DbError::Unsupported
        | DbError::BadBackup
        | DbError::BackupChain => EXIT_CORRUPT,
        DbError::NotFound => EXIT_NOT_FOUND,
        DbError::BadFilter
        | DbError::Json
        | DbError::InvalidPatch
        | DbError::InvalidName
        | DbError::InvalidArgument
        | DbError::BadSchema
        | DbError::TooDeep => EXIT_USAGE,
        _ => EXIT_FAILED,
    }
}

/// A library error as a CLI error, with a hint where the library's words are not enough.
pub fn db_err(e: DbError) -> CliError {
    let msg = match e {
        DbError::Unsupported => {
            "unsupported: the image uses a format version or a feature (compressed pages: build \
             cairn with --features compress) this build does not read"
                .to_string()
        }
        DbError::NotFormatted => "no cairndb database in this image".to_string(),
        DbError::Corrupt => {
            "data in the image is corrupt (`repair` keeps what still authenticates)".to_string()
        }
        DbError::KeyMismatch => {
            "the key options do not match the image's encryption (a key for a plain image, or \
             none for an encrypted one)"
                .to_string()
        }
        DbError::TxnTooLarge => {
            "transaction too large: the operation touches more data than one commit holds"
                .to_string()
        }
        other => other.to_string(),
    };
    CliError::new(code_of(e), msg)
}

impl From<DbError> for CliError {
    fn from(e: DbError) -> Self {
        db_err(e)
    }
}

/// An I/O error on a host file, named.
pub fn io_err(path: &std::path::Path, e: std::io::Error) -> CliError {
    let code = if e.kind() == std::io::ErrorKind::NotFound {
        EXIT_NOT_FOUND
    } else {
        EXIT_FAILED
    };
    CliError::new(code, format!("{}: {e}", path.display()))
}

/// [`db_err`], saying so when an I/O error comes from writing to an image opened read-only.
pub fn db_err_ro(read_only: bool, e: DbError) -> CliError {
    if e == DbError::Io && read_only {
        CliError::failed("flash I/O error: the image is open read-only and this command writes")
    } else {
        db_err(e)
    }
}

/// Print an error as one line on stderr (a JSON object with `json`).
pub fn print_error(e: &CliError, json: bool) {
    let one_line = e.msg.replace('\n', " ");
    if json {
        eprintln!("{}", serde_json::json!({"error": one_line, "exit": e.code}));
    } else {
        eprintln!("cairn: error: {one_line}");
    }
}
