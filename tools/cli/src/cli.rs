//! The command line (clap). Every command is also a line of the interactive shell.

use crate::error::EXIT_CODES_HELP;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const ABOUT: &str = "Create, inspect, verify and export cairndb device images";

const LONG_ABOUT: &str = "\
Create, inspect, verify and export cairndb device images.

An image is the raw contents of a flash device: littlefs, holding a cairndb database, and
nothing else. `cairn` makes images to provision devices and reads images dumped from them.
The block size is read from the image's littlefs superblock and the block count from its size;
read and program sizes default to 16 and 16 (the QEMU board's) and must match the device's.

Examples:
  cairn dev.img create --block-size 4096 --block-count 64 --key-file dev.key
  cairn dev.img insert readings '{\"room\":\"R101\",\"temp\":21.5}' --key-file dev.key
  cairn dev.img find readings '{\"temp\":{\"$gt\":20}}' --sort -temp --limit 5 --key-file dev.key
  cairn dev.img export dump.sqlite --key-file dev.key
  cairn dev.img --key-file dev.key          (no command: the interactive shell)";

/// `cairn IMAGE [COMMAND]`.
#[derive(Parser, Debug)]
#[command(
    name = "cairn",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXIT_CODES_HELP,
    args_override_self = true,
    subcommand_value_name = "COMMAND",
    subcommand_help_heading = "Commands (no command: the interactive shell)"
)]
pub struct Cli {
    /// The image file (the raw flash contents)
    pub image: PathBuf,
    #[command(flatten)]
    pub opts: GlobalOpts,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

/// Options every command takes (before or after the command name).
#[derive(Args, Debug, Clone, Default)]
pub struct GlobalOpts {
    #[command(flatten)]
    pub key: KeyOpts,
    #[command(flatten)]
    pub geometry: GeometryOpts,
    #[command(flatten)]
    pub limits: LimitOpts,
    /// Print results as JSON (one JSON document per command, or per line for streams); errors
    /// become a JSON object on stderr
    #[arg(long, global = true, help_heading = "Output")]
    pub json: bool,
    /// No progress bars (they are drawn only when stderr is a terminal anyway)
    #[arg(long, short, global = true, help_heading = "Output")]
    pub quiet: bool,
    /// Run the database clock on the host's wall-clock time (milliseconds since 1970) for
    /// `_ts` stamps and time to live; without it, time stands still at the image's own mark.
    /// Use it when the firmware's clock is wall time too: database time never goes back, so
    /// a device on boot-relative time would see its time jump forward
    #[arg(long, global = true, help_heading = "Database")]
    pub wall_clock: bool,
    /// fsync the image after every commit, as the device syncs its flash (slower). Without
    /// it the image is synced once, at the end: each write still reaches the file in order,
    /// so a killed `cairn` leaves what a power cut would; only a crash of the host could not
    #[arg(long, global = true, help_heading = "Database")]
    pub sync: bool,
}

/// The database key: at most one of these (none for a plain image).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Key (at most one; none for a plain image)")]
pub struct KeyOpts {
    /// File holding the 256-bit key: 32 raw bytes, or 64 hex digits
    #[arg(long, global = true, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// The 256-bit key as 64 hex digits (visible to other users in the process list: prefer
    /// --key-file)
    #[arg(long, global = true, value_name = "HEX")]
    pub key_hex: Option<String>,
    /// Passphrase the key is derived from (PBKDF2-HMAC-SHA256)
    #[arg(
        long,
        global = true,
        value_name = "TEXT",
        env = "CAIRN_PASSPHRASE",
        hide_env_values = true
    )]
    pub passphrase: Option<String>,
    /// File whose first line is the passphrase
    #[arg(long, global = true, value_name = "PATH")]
    pub passphrase_file: Option<PathBuf>,
    /// PBKDF2 iterations when a passphrase key is created (`create`, `rekey`, passphrase
    /// backups); opening reads them from the image
    #[arg(long, global = true, value_name = "N", default_value_t = crate::keys::DEFAULT_KDF_ITERATIONS)]
    pub kdf_iterations: u32,
}

/// Flash geometry. littlefs' cache and lookahead sizes are not options: they do not change
/// the bytes on flash, so an image written with any of them reads with any other.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Flash geometry")]
pub struct GeometryOpts {
    /// Erase block size in bytes [create: 4096; open: read from the image's littlefs
    /// superblock]
    #[arg(long, global = true, value_name = "BYTES")]
    pub block_size: Option<u32>,
    /// Number of erase blocks [create: required, or --size; open: the image size over the
    /// block size, checked when given]
    #[arg(long, global = true, value_name = "N")]
    pub block_count: Option<u32>,
    /// Smallest read unit of the device in bytes (not stored in the image)
    #[arg(long, global = true, value_name = "BYTES", default_value_t = crate::image::DEFAULT_READ_SIZE)]
    pub read_size: u32,
    /// Smallest program unit of the device in bytes; littlefs aligns its commits to it, so it
    /// must be the device's (not stored in the image)
    #[arg(long, global = true, value_name = "BYTES", default_value_t = crate::image::DEFAULT_PROG_SIZE)]
    pub prog_size: u32,
}

/// Limits of the database. They are fixed by the firmware's `cairn_config_t` (0 there means
/// the same defaults as here); give the firmware's values when it changed them.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Database limits (as the firmware's cairn_config_t)")]
pub struct LimitOpts {
    /// Largest encoded document in bytes [default: 1024]
    #[arg(long, global = true, value_name = "BYTES")]
    pub max_doc_bytes: Option<usize>,
    /// Deepest nesting of arrays and objects [default: 16]
    #[arg(long, global = true, value_name = "N")]
    pub max_depth: Option<usize>,
    /// Longest collection, namespace or index name [default: 32]
    #[arg(long, global = true, value_name = "N")]
    pub max_name_len: Option<usize>,
    /// Longest key-value key in bytes [default: 128]
    #[arg(long, global = true, value_name = "BYTES")]
    pub max_key_len: Option<usize>,
    /// Largest key-value value in bytes [default: 1024]
    #[arg(long, global = true, value_name = "BYTES")]
    pub max_value_len: Option<usize>,
    /// Most documents a find sorts in RAM without an index [default: 64 on a device; cairn
    /// uses 100000 when not given, which changes nothing on flash]
    #[arg(long, global = true, value_name = "N")]
    pub max_sort_docs: Option<usize>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Cmd {
    /// Create a new image file for a flash geometry, with an empty database
    #[command(visible_alias = "format")]
    Create(CreateArgs),
    /// Geometry, littlefs version, encryption, format and contents of the image
    Info,
    /// Statistics: space, store counters, per-collection totals and caps
    Stats,
    /// List collections and namespaces (with counts), or indexes, tags, keys, events or files
    Ls(LsArgs),
    /// Find documents: filter, sort, skip, limit and projection; table, JSON or JSON lines
    Find(FindArgs),
    /// Print one document by _id
    Get(GetArgs),
    /// Insert a document (JSON text, or stdin) and print its _id
    Insert(InsertArgs),
    /// Apply a patch ({"$set":..,"$unset":..,"$inc":..,"$push":..,"$pull":..}) to a document
    Patch(PatchArgs),
    /// Replace a document's body
    Replace(ReplaceArgs),
    /// Delete documents by _id, or every document matching a filter
    Delete(DeleteArgs),
    /// Drop a collection with its documents and indexes
    Drop(DropArgs),
    /// Show, set or clear a collection's JSON Schema (checked on later writes)
    Schema(SchemaArgs),
    /// Key-value entries: get, put, delete, ls
    #[command(subcommand)]
    Kv(KvCmd),
    /// Import documents (JSON array or JSON lines) or an `export` file, with a progress bar
    Import(ImportArgs),
    /// Export everything as JSON lines (re-importable) or as a SQLite file (one table per
    /// collection)
    Export(ExportArgs),
    /// Write a full or incremental backup stream to a file
    Backup(BackupArgs),
    /// Replace the database by a backup chain (a full backup, then its incrementals), atomically
    Restore(RestoreArgs),
    /// Verify backup streams (and their chain) without restoring
    VerifyBackup(VerifyArgs),
    /// Check every page, document and index entry (exit 4 when a problem is found)
    Check(CheckArgs),
    /// Repair: drop what fails authentication, remove undecodable documents, recount, rebuild
    /// indexes
    Repair,
    /// Re-encrypt the whole database under a new key or passphrase (or none), atomically
    Rekey(RekeyArgs),
    /// Secondary indexes: create, drop, list
    #[command(subcommand)]
    Index(IndexCmd),
    /// Merge all segments, reclaiming the space of deleted and overwritten data
    Compact,
    /// The littlefs volume underneath: list files, dump one (no key needed)
    #[command(subcommand)]
    Lfs(LfsCmd),
    /// The interactive shell (the default without a command): every command above, with
    /// history and completion
    Shell(ShellArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Image size instead of --block-count: bytes, or with a K or M suffix (a multiple of the
    /// block size)
    #[arg(long, value_name = "SIZE")]
    pub size: Option<String>,
    /// Overwrite an existing file
    #[arg(long)]
    pub force: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LsWhat {
    /// Collections with their document counts
    Collections,
    /// Key-value namespaces with their key counts
    Namespaces,
    /// Indexes of one collection (NAME), or of all
    Indexes,
    /// Tags of one collection (NAME) with their counts
    Tags,
    /// Keys of one namespace (NAME)
    Keys,
    /// The event log, newest first
    Events,
    /// littlefs files (as `lfs ls`)
    Files,
}

#[derive(Args, Debug, Clone)]
pub struct LsArgs {
    /// What to list [default: collections and namespaces]
    #[arg(value_enum)]
    pub what: Option<LsWhat>,
    /// The collection or namespace for indexes, tags and keys
    pub name: Option<String>,
    /// Keys starting with this prefix (keys)
    #[arg(long)]
    pub prefix: Option<String>,
    /// Keys as hex, and --prefix given in hex (keys)
    #[arg(long)]
    pub hex: bool,
    /// Most events listed (events)
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFormat {
    /// Aligned columns, one per top-level field (buffers the results)
    Table,
    /// One JSON array
    Json,
    /// One document per line
    Jsonl,
}

#[derive(Args, Debug, Clone)]
pub struct FindArgs {
    /// The collection
    pub collection: String,
    /// Filter document, e.g. '{"temp":{"$gt":20},"room":{"$in":["R1","R2"]}}' [default: {}]
    pub filter: Option<String>,
    /// Sort key: a field path, `-path` or `path:desc` for descending; repeat or comma-separate
    /// for more keys
    #[arg(long, short, allow_hyphen_values = true, value_delimiter = ',')]
    pub sort: Vec<String>,
    /// Most documents returned
    #[arg(long, short = 'n')]
    pub limit: Option<u64>,
    /// Matching documents skipped first
    #[arg(long, default_value_t = 0)]
    pub skip: u64,
    /// Only these fields (comma-separated paths; _id is kept)
    #[arg(long, value_delimiter = ',', conflicts_with = "exclude")]
    pub fields: Vec<String>,
    /// All fields but these (comma-separated paths)
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Output format [default: table on a terminal, else jsonl; json with --json]
    #[arg(long, short, value_enum)]
    pub format: Option<OutFormat>,
    /// Print only the number of matches
    #[arg(long, conflicts_with = "explain")]
    pub count: bool,
    /// Print the plan (index or scan) instead of the documents
    #[arg(long)]
    pub explain: bool,
}

#[derive(Args, Debug, Clone)]
pub struct GetArgs {
    pub collection: String,
    pub id: u64,
}

#[derive(Args, Debug, Clone)]
pub struct InsertArgs {
    pub collection: String,
    /// The document (a JSON object); `-` or nothing reads it from stdin
    pub document: Option<String>,
    /// Time to live in database time units (milliseconds on the QEMU board)
    #[arg(long, value_name = "MS")]
    pub ttl: Option<u64>,
    /// Tags (comma-separated)
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct PatchArgs {
    pub collection: String,
    pub id: u64,
    /// The patch, e.g. '{"$set":{"ok":true},"$inc":{"n":1}}'
    pub patch: String,
}

#[derive(Args, Debug, Clone)]
pub struct ReplaceArgs {
    pub collection: String,
    pub id: u64,
    /// The new body (a JSON object)
    pub document: String,
}

#[derive(Args, Debug, Clone)]
pub struct DeleteArgs {
    pub collection: String,
    /// _id values to delete
    #[arg(required_unless_present = "filter", conflicts_with = "filter")]
    pub ids: Vec<u64>,
    /// Delete every document matching this filter, in one atomic commit
    #[arg(long)]
    pub filter: Option<String>,
    /// With --filter: delete in as many commits as it takes when one cannot hold them all
    /// (each commit is atomic, the whole is not)
    #[arg(long, requires = "filter")]
    pub batched: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DropArgs {
    pub collection: String,
}

#[derive(Args, Debug, Clone)]
pub struct SchemaArgs {
    pub collection: String,
    /// Set this schema (a JSON Schema subset: docs/SPEC.md "Document validation"); documents
    /// already stored are not re-checked
    #[arg(long, value_name = "JSON", conflicts_with = "clear")]
    pub set: Option<String>,
    /// Remove the schema
    #[arg(long)]
    pub clear: bool,
}

#[derive(Subcommand, Debug, Clone)]
pub enum KvCmd {
    /// Print a value (text when it is UTF-8, else hex; see --hex and --raw)
    Get {
        namespace: String,
        key: String,
        /// KEY is hex, and the value is printed as hex
        #[arg(long)]
        hex: bool,
        /// Write the value's bytes to stdout as they are
        #[arg(long, conflicts_with = "hex")]
        raw: bool,
    },
    /// Store a value (text, hex with --hex, or a file's bytes)
    Put {
        namespace: String,
        key: String,
        /// The value [or --value-file]
        #[arg(required_unless_present = "value_file")]
        value: Option<String>,
        /// KEY and VALUE are hex
        #[arg(long)]
        hex: bool,
        /// VALUE is hex (the key is text)
        #[arg(long, conflicts_with = "hex")]
        value_hex: bool,
        /// Read the value from this file
        #[arg(long, value_name = "PATH", conflicts_with = "value")]
        value_file: Option<PathBuf>,
        /// Time to live in database time units
        #[arg(long, value_name = "MS")]
        ttl: Option<u64>,
        /// Tags (comma-separated)
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
    },
    /// Delete a key (exit 5 when it does not exist)
    Delete {
        namespace: String,
        key: String,
        /// KEY is hex
        #[arg(long)]
        hex: bool,
    },
    /// List the keys of a namespace
    Ls {
        namespace: String,
        /// Only keys starting with this
        #[arg(long)]
        prefix: Option<String>,
        /// Keys as hex (and --prefix in hex)
        #[arg(long)]
        hex: bool,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// Input file (`-` for stdin): a JSON array or JSON lines
    pub input: PathBuf,
    /// Every item is a document of this collection; without it the input is an `export`
    /// file (lines of {"collection":..,"doc":..}, {"namespace":..,"key":..,"value":..},
    /// index and schema lines)
    #[arg(long, short)]
    pub collection: Option<String>,
    /// Skip items that fail (each reported on stderr) instead of stopping at the first
    #[arg(long)]
    pub keep_going: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// JSON lines, the input format of `import`
    Jsonl,
    /// A SQLite database: one table per collection, plus `_kv`
    Sqlite,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// Output file (`-`: stdout, JSON lines only)
    pub output: PathBuf,
    /// Output format [default: sqlite for .db, .sqlite and .sqlite3 files, else jsonl]
    #[arg(long, short, value_enum)]
    pub format: Option<ExportFormat>,
    /// Only these collections (repeat or comma-separate) and no key-value entries
    #[arg(long, short, value_delimiter = ',')]
    pub collection: Vec<String>,
    /// Leave out the key-value entries
    #[arg(long)]
    pub no_kv: bool,
    /// Overwrite an existing output file
    #[arg(long)]
    pub force: bool,
}

/// A key for backup streams: at most one; none means the database's own key.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Backup key (at most one; default: the database's key)")]
pub struct BackupKeyOpts {
    /// File with a separate 256-bit backup key (32 raw bytes or 64 hex digits)
    #[arg(long, value_name = "PATH")]
    pub backup_key_file: Option<PathBuf>,
    /// A separate 256-bit backup key as hex
    #[arg(long, value_name = "HEX")]
    pub backup_key_hex: Option<String>,
    /// A passphrase the backup key is derived from
    #[arg(
        long,
        value_name = "TEXT",
        env = "CAIRN_BACKUP_PASSPHRASE",
        hide_env_values = true
    )]
    pub backup_passphrase: Option<String>,
    /// File whose first line is the backup passphrase
    #[arg(long, value_name = "PATH")]
    pub backup_passphrase_file: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    /// The stream file to write
    pub output: PathBuf,
    /// Only the changes since the last backup this database took (deletions included)
    #[arg(long)]
    pub incremental: bool,
    /// Overwrite an existing file
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub key: BackupKeyOpts,
}

#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    /// The chain: a full backup first, then its incrementals in order
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub key: BackupKeyOpts,
}

#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// Streams to verify; more than one must form a chain (full first)
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub key: BackupKeyOpts,
}

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// Repair when problems are found (as `repair`)
    #[arg(long)]
    pub repair: bool,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "New key (exactly one)")]
pub struct RekeyArgs {
    /// File with the new 256-bit key
    #[arg(long, value_name = "PATH")]
    pub new_key_file: Option<PathBuf>,
    /// The new key as 64 hex digits
    #[arg(long, value_name = "HEX")]
    pub new_key_hex: Option<String>,
    /// A new passphrase
    #[arg(
        long,
        value_name = "TEXT",
        env = "CAIRN_NEW_PASSPHRASE",
        hide_env_values = true
    )]
    pub new_passphrase: Option<String>,
    /// File whose first line is the new passphrase
    #[arg(long, value_name = "PATH")]
    pub new_passphrase_file: Option<PathBuf>,
    /// Remove the encryption (records keep their CRC-32C)
    #[arg(long)]
    pub plain: bool,
}

#[derive(Subcommand, Debug, Clone)]
pub enum IndexCmd {
    /// Create an index on one to four fields and fill it from the documents there
    Create {
        collection: String,
        name: String,
        /// Dotted field paths, most significant first
        #[arg(required = true, num_args = 1..=4)]
        fields: Vec<String>,
        /// Refuse a second document with the same value(s)
        #[arg(long)]
        unique: bool,
        /// Index only the documents matching this filter
        #[arg(long, value_name = "FILTER")]
        partial: Option<String>,
    },
    /// Drop an index
    Drop { collection: String, name: String },
    /// List the indexes of a collection, or of all collections
    List { collection: Option<String> },
}

#[derive(Subcommand, Debug, Clone)]
pub enum LfsCmd {
    /// List the files of the littlefs volume with their sizes
    Ls {
        /// Directory [default: /]
        #[arg(default_value = "/")]
        path: String,
    },
    /// Write a file's bytes (as stored: sealed records stay sealed) to stdout or a file
    Cat {
        path: String,
        /// Write to this file instead of stdout
        #[arg(long, short, value_name = "PATH")]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ShellArgs {
    /// Open the image read-only (write commands then fail)
    #[arg(long)]
    pub read_only: bool,
}

/// One line of the shell: a command with its arguments, and --json.
#[derive(Parser, Debug)]
#[command(
    name = "",
    no_binary_name = true,
    disable_version_flag = true,
    subcommand_value_name = "COMMAND",
    help_template = "{subcommands}\n\nAlso: help [COMMAND], .mode json|text, quit (or exit, Ctrl-D)"
)]
pub struct ShellLine {
    /// Print this command's results as JSON
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}
