//! Backup streams: a pure codec for full and incremental backups, independent of the engine.
//!
//! A backup is one self-contained byte stream: a header, a sequence of sealed chunks that carry
//! the records, and a sealed trailer. The writer is handed records `(key, seq, value)` in
//! strictly increasing key order (`value == None` is a deletion) and writes them to any
//! [`BackupSink`] (a `Vec`, a UART, a file, or a raw partition through [`DeviceSink`]); the
//! reader streams them back from a [`BackupSource`] in the same order, checking everything.
//!
//! Guarantees (docs/SPEC.md, "Backup stream", is the normative byte layout):
//! - Every chunk is sealed with the crypto envelope ([`Sealer`]) under associated data naming
//!   the backup and the chunk's index, so chunks cannot be flipped, dropped, reordered or
//!   spliced in from another backup; the trailer is sealed as "final" with the record and chunk
//!   counts, so a stream cut anywhere is detected. The header is authenticated too.
//! - Tampered, truncated or garbage input gives [`Error::BadBackup`]; the wrong key
//!   [`Error::WrongKey`]; a key of the wrong kind (plain for an encrypted stream or the reverse)
//!   [`Error::KeyMismatch`]; a chain of backups that does not fit together
//!   [`Error::BackupChain`]. No input bytes make the reader panic, loop or allocate without
//!   bound. Records are only handed out from chunks that passed their check; a stream that
//!   fails later (say in its trailer) has handed out authentic records of the same backup, so
//!   a restore must treat the whole stream as failed when any call errors.
//! - RAM is one chunk (at most [`MAX_CHUNK_SIZE`] plus the tag) plus, in the reader, the
//!   current record and the previous key: bounded by [`MAX_KEY_LEN`] and [`MAX_VALUE_LEN`],
//!   independent of the number of records.
//!
//! Plain streams ([`BackupKey::Plain`]) carry CRC-32C checksums instead of tags: they detect
//! damage, not deliberate modification.

use alloc::vec::Vec;
use core::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::crypto::{self, Sealer, CHECK_LEN, SALT_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::flash::{BlockDevice, Geometry};
use crate::format::Reader;

/// The first 8 bytes of every backup stream.
pub const MAGIC: [u8; 8] = *b"CAIRNBK\x01";
/// The stream format version this build writes and reads.
pub const VERSION: u16 = 1;
/// Length of the fixed header, before its tag.
pub const HEADER_LEN: usize = 128;
/// Length of database and backup identities.
pub const ID_LEN: usize = 16;
/// Chunk plaintext size used unless the caller picks another.
pub const DEFAULT_CHUNK_SIZE: u16 = 2048;
/// Smallest chunk plaintext size a stream may declare.
pub const MIN_CHUNK_SIZE: u16 = 64;
/// Largest chunk plaintext size a stream may declare: the reader's chunk buffer bound.
pub const MAX_CHUNK_SIZE: u16 = 4096;
/// Longest key a stream may carry (the writer refuses longer ones with `TooLarge`).
pub const MAX_KEY_LEN: usize = 4096;
/// Longest value a stream may carry (the writer refuses longer ones with `TooLarge`).
pub const MAX_VALUE_LEN: usize = 65_536;

/// Frame header: type u8 || plaintext length u16.
const FRAME_HEADER: usize = 3;
const FRAME_DATA: u8 = 1;
const FRAME_TRAILER: u8 = 2;
/// Trailer plaintext: records u64 || chunks u64 || max_seq u64.
const TRAILER_LEN: usize = 24;
/// Associated data of a frame: "cbk1" || backup_id || index u64 || frame header.
const AAD_LEN: usize = 4 + ID_LEN + 8 + FRAME_HEADER;
const AAD_LABEL: &[u8; 4] = b"cbk1";
const ID_LABEL: &[u8] = b"cairndb/v1/backup-id";
const KIND_FULL: u8 = 0;
const KIND_INCREMENTAL: u8 = 1;
const MODE_PLAIN: u8 = 0;
const MODE_KEY: u8 = 1;
const MODE_PASSPHRASE: u8 = 2;
const FLAG_PUT: u8 = 0;
const FLAG_DELETE: u8 = 1;
/// Longest LEB128 encoding of a u64.
const VARINT_MAX: usize = 10;
/// Preferred size of one flash access of the partition adapters.
const IO_UNIT: u32 = 256;

/// Whether a backup holds everything or only what changed since its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupKind {
    /// Every live record up to `end_seq`.
    Full,
    /// Every change (puts and deletions) with `base_seq < seq <= end_seq`.
    Incremental,
}

/// How a stream is protected, as recorded in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// CRC-32C only: no secrecy, detects damage but not deliberate modification.
    Plain,
    /// Encrypted and authenticated under a raw key (for example the database's own).
    Key,
    /// Encrypted and authenticated under a key derived from a passphrase (PBKDF2).
    Passphrase {
        /// PBKDF2 salt.
        salt: [u8; SALT_LEN],
        /// PBKDF2 iteration count.
        iterations: u32,
    },
}

/// The key a stream is written or read with.
#[derive(Clone, Copy)]
pub enum BackupKey<'a> {
    /// No key: CRC-32C checksums only.
    Plain,
    /// A sealer: the database's own (then the backup is under the database key) or one made
    /// with [`Sealer::with_key`] for a separate backup key. A plain sealer means [`Self::Plain`].
    Sealer(&'a Sealer),
    /// A passphrase. Writing derives the key with this `salt` and `iterations` (the salt should
    /// be random). Reading takes salt and count from the stream's header; `salt` is ignored
    /// and `iterations` is the most the reader will spend: a header asking for more is
    /// refused with [`Error::BadBackup`], so a hostile stream cannot stall the device.
    Passphrase {
        /// The passphrase (not empty).
        pass: &'a [u8],
        /// PBKDF2 salt used when writing.
        salt: [u8; SALT_LEN],
        /// PBKDF2 iterations when writing; the ceiling when reading.
        iterations: u32,
    },
}

impl fmt::Debug for BackupKey<'_> {
    // Never prints key material or the passphrase.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackupKey::Plain => f.write_str("Plain"),
            BackupKey::Sealer(s) => write!(f, "Sealer({s:?})"),
            BackupKey::Passphrase { iterations, .. } => {
                write!(f, "Passphrase(.., iterations: {iterations})")
            }
        }
    }
}

/// The backup an incremental continues: its `end_seq` and `backup_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupBase {
    /// The parent's `end_seq`: the incremental holds changes after it.
    pub seq: u64,
    /// The parent's `backup_id` ([`check_chain`] refuses an incremental naming another).
    pub id: [u8; ID_LEN],
}

/// What the caller tells the writer about the backup it is about to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupParams {
    /// The database's identity; every backup of a chain must carry the same.
    pub db_id: [u8; ID_LEN],
    /// `None` for a full backup, the parent for an incremental.
    pub base: Option<BackupBase>,
    /// The highest sequence number the backup covers; every record's seq must be at most this.
    pub end_seq: u64,
    /// Creation time on the caller's clock (opaque to the codec).
    pub created: u64,
    /// Caller entropy mixed into the backup's identity. Two streams with identical parameters
    /// and entropy get the same `backup_id`; give random bytes (or at least a counter) so a
    /// stream written over an older one on the same partition can never be mixed with it.
    pub entropy: [u8; 16],
    /// Chunk plaintext size, [`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`]: the RAM both sides need.
    pub chunk_size: u16,
}

impl BackupParams {
    /// Parameters of a full backup of `db_id` up to `end_seq` (time and entropy zero, default
    /// chunk size: set the fields to change them).
    pub fn full(db_id: [u8; ID_LEN], end_seq: u64) -> Self {
        BackupParams {
            db_id,
            base: None,
            end_seq,
            created: 0,
            entropy: [0; 16],
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }

    /// Parameters of an incremental backup continuing `parent`, up to `end_seq`.
    pub fn incremental(parent: &BackupHeader, end_seq: u64) -> Self {
        BackupParams {
            base: Some(parent.as_base()),
            ..Self::full(parent.db_id, end_seq)
        }
    }
}

/// The authenticated header of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupHeader {
    /// Full or incremental.
    pub kind: BackupKind,
    /// How the stream is protected.
    pub key_mode: KeyMode,
    /// [`Sealer::key_check`] of the backup key (zero for plain streams).
    pub key_check: [u8; CHECK_LEN],
    /// The database's identity.
    pub db_id: [u8; ID_LEN],
    /// This stream's identity (bound into every chunk).
    pub backup_id: [u8; ID_LEN],
    /// The parent's `backup_id` (zero for a full backup).
    pub parent_id: [u8; ID_LEN],
    /// The parent's `end_seq` (0 for a full backup).
    pub base_seq: u64,
    /// The highest sequence number covered.
    pub end_seq: u64,
    /// Creation time on the writer's clock.
    pub created: u64,
    /// Chunk plaintext size.
    pub chunk_size: u16,
}

impl BackupHeader {
    /// What an incremental continuing this backup must name as its base.
    pub fn as_base(&self) -> BackupBase {
        BackupBase {
            seq: self.end_seq,
            id: self.backup_id,
        }
    }
}

impl AsRef<BackupHeader> for BackupHeader {
    fn as_ref(&self) -> &BackupHeader {
        self
    }
}

/// A complete, verified stream: its header and its totals from the trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupInfo {
    /// The header.
    pub header: BackupHeader,
    /// Records in the stream.
    pub records: u64,
    /// Data chunks in the stream.
    pub chunks: u64,
    /// Highest record sequence number (0 when there are no records).
    pub max_seq: u64,
    /// Length of the stream in bytes, header to trailer.
    pub stream_len: u64,
}

impl AsRef<BackupHeader> for BackupInfo {
    fn as_ref(&self) -> &BackupHeader {
        &self.header
    }
}

/// One record of a stream, borrowed from the reader until its next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The key (strictly greater than the previous record's).
    pub key: &'a [u8],
    /// The sequence number of the write this record comes from.
    pub seq: u64,
    /// The value, or `None` for a deletion.
    pub value: Option<&'a [u8]>,
}

/// Where a backup stream goes.
pub trait BackupSink {
    /// Appends all of `data` to the stream, or fails.
    fn write(&mut self, data: &[u8]) -> Result<()>;
    /// Called once after the last byte: push out anything buffered and make it durable.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Where a backup stream comes from.
pub trait BackupSource {
    /// Reads up to `buf.len()` bytes into `buf`; returns how many, 0 only at the end.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize>;
}

impl<T: BackupSink + ?Sized> BackupSink for &mut T {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        (**self).write(data)
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
}

impl<T: BackupSource + ?Sized> BackupSource for &mut T {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        (**self).read(buf)
    }
}

/// Appends to the vector; fails with `NoMemory` when it cannot grow.
impl BackupSink for Vec<u8> {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.try_reserve(data.len()).map_err(|_| Error::NoMemory)?;
        self.extend_from_slice(data);
        Ok(())
    }
}

/// Reads from the front of the slice, advancing it.
impl BackupSource for &[u8] {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = buf.len().min(self.len());
        let (head, tail) = self.split_at(n);
        for (d, s) in buf.iter_mut().zip(head) {
            *d = *s;
        }
        *self = tail;
        Ok(n)
    }
}

/// A sink over any `std::io::Write` (a host file, a socket).
#[cfg(feature = "std")]
pub struct IoSink<W: std::io::Write>(pub W);

#[cfg(feature = "std")]
impl<W: std::io::Write> BackupSink for IoSink<W> {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.0.write_all(data).map_err(|_| Error::Io)
    }
    fn flush(&mut self) -> Result<()> {
        self.0.flush().map_err(|_| Error::Io)
    }
}

/// A source over any `std::io::Read` (a host file, a socket).
#[cfg(feature = "std")]
pub struct IoSource<R: std::io::Read>(pub R);

#[cfg(feature = "std")]
impl<R: std::io::Read> BackupSource for IoSource<R> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            match self.0.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Error::Io),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Header

/// Encodes the fixed header (without its tag).
fn encode_header(h: &BackupHeader) -> [u8; HEADER_LEN] {
    let (mode, iterations, salt) = match h.key_mode {
        KeyMode::Plain => (MODE_PLAIN, 0u32, [0u8; SALT_LEN]),
        KeyMode::Key => (MODE_KEY, 0, [0; SALT_LEN]),
        KeyMode::Passphrase { salt, iterations } => (MODE_PASSPHRASE, iterations, salt),
    };
    let kind = match h.kind {
        BackupKind::Full => KIND_FULL,
        BackupKind::Incremental => KIND_INCREMENTAL,
    };
    let parts: [&[u8]; 15] = [
        &MAGIC,
        &VERSION.to_le_bytes(),
        &[kind],
        &[mode],
        &iterations.to_le_bytes(),
        &salt,
        &h.key_check,
        &h.db_id,
        &h.backup_id,
        &h.parent_id,
        &h.base_seq.to_le_bytes(),
        &h.end_seq.to_le_bytes(),
        &h.created.to_le_bytes(),
        &h.chunk_size.to_le_bytes(),
        &[0u8; 6],
    ];
    let mut out = [0u8; HEADER_LEN];
    for (d, s) in out.iter_mut().zip(parts.iter().flat_map(|p| p.iter())) {
        *d = *s;
    }
    out
}

/// Parses and checks the fixed header without authenticating it: [`Error::BadBackup`] for
/// anything malformed, [`Error::Unsupported`] for another format version.
fn decode_header(b: &[u8; HEADER_LEN]) -> Result<BackupHeader> {
    let bad = |_| Error::BadBackup;
    let mut r = Reader::new(b);
    if r.array::<8>().map_err(bad)? != MAGIC {
        return Err(Error::BadBackup);
    }
    if u16::from_le_bytes(r.array().map_err(bad)?) != VERSION {
        return Err(Error::Unsupported);
    }
    let kind = match r.u8().map_err(bad)? {
        KIND_FULL => BackupKind::Full,
        KIND_INCREMENTAL => BackupKind::Incremental,
        _ => return Err(Error::BadBackup),
    };
    let mode = r.u8().map_err(bad)?;
    let iterations = u32::from_le_bytes(r.array().map_err(bad)?);
    let salt: [u8; SALT_LEN] = r.array().map_err(bad)?;
    let key_mode = match mode {
        MODE_PLAIN | MODE_KEY if iterations != 0 || salt != [0; SALT_LEN] => {
            return Err(Error::BadBackup)
        }
        MODE_PLAIN => KeyMode::Plain,
        MODE_KEY => KeyMode::Key,
        MODE_PASSPHRASE if iterations != 0 => KeyMode::Passphrase { salt, iterations },
        _ => return Err(Error::BadBackup),
    };
    let h = BackupHeader {
        kind,
        key_mode,
        key_check: r.array().map_err(bad)?,
        db_id: r.array().map_err(bad)?,
        backup_id: r.array().map_err(bad)?,
        parent_id: r.array().map_err(bad)?,
        base_seq: u64::from_le_bytes(r.array().map_err(bad)?),
        end_seq: u64::from_le_bytes(r.array().map_err(bad)?),
        created: u64::from_le_bytes(r.array().map_err(bad)?),
        chunk_size: u16::from_le_bytes(r.array().map_err(bad)?),
    };
    let reserved: [u8; 6] = r.array().map_err(bad)?;
    let full_ok = h.kind == BackupKind::Incremental || (h.base_seq == 0 && h.parent_id == [0; 16]);
    if reserved != [0; 6]
        || !full_ok
        || h.base_seq > h.end_seq
        || !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&h.chunk_size)
        || (h.key_mode == KeyMode::Plain && h.key_check != [0; CHECK_LEN])
    {
        return Err(Error::BadBackup);
    }
    Ok(h)
}

/// Parses the fixed header at the start of `stream` **without authenticating it**, for tools
/// that must know the key mode (say, whether to ask for a passphrase) before opening.
/// Nothing it returns can be trusted until [`BackupReader::open`] succeeds.
pub fn peek_header(stream: &[u8]) -> Result<BackupHeader> {
    let b: &[u8; HEADER_LEN] = stream
        .get(..HEADER_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::BadBackup)?;
    decode_header(b)
}

/// The associated data sealing frame `index` of backup `id`.
fn frame_aad(id: &[u8; ID_LEN], index: u64, frame: &[u8; FRAME_HEADER]) -> [u8; AAD_LEN] {
    let idx = index.to_le_bytes();
    let mut aad = [0u8; AAD_LEN];
    let src = AAD_LABEL.iter().chain(id).chain(&idx).chain(frame);
    for (d, s) in aad.iter_mut().zip(src) {
        *d = *s;
    }
    aad
}

/// Appends `v` as LEB128 to `out` at `*at`; `out` must have room for [`VARINT_MAX`] bytes.
fn put_varint(out: &mut [u8], at: &mut usize, mut v: u64) {
    for slot in out.iter_mut().skip(*at) {
        *at += 1;
        if v < 0x80 {
            *slot = v as u8;
            return;
        }
        *slot = (v as u8) | 0x80;
        v >>= 7;
    }
}

fn allocate(len: usize) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::NoMemory)?;
    v.resize(len, 0);
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// Writer

/// Writes one backup stream; see the module docs.
pub struct BackupWriter<S: BackupSink> {
    sink: S,
    sealer: Sealer,
    header: BackupHeader,
    /// Frame header, chunk plaintext, room for the tag.
    buf: Vec<u8>,
    /// Plaintext bytes in the current chunk.
    fill: usize,
    chunks: u64,
    records: u64,
    max_seq: u64,
    written: u64,
    prev: Vec<u8>,
    have_prev: bool,
    /// The first sink or sealing error: the stream is broken and every later call returns it.
    failed: Option<Error>,
}

impl<S: BackupSink> BackupWriter<S> {
    /// Starts a stream: writes its header to `sink`.
    ///
    /// Errors: [`Error::InvalidArgument`] for a chunk size out of range, an incremental whose
    /// base is past `end_seq`, or an empty passphrase or zero iterations; `NoMemory`; whatever
    /// the sink returns.
    pub fn new(mut sink: S, key: &BackupKey<'_>, params: &BackupParams) -> Result<Self> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&params.chunk_size)
            || params.base.is_some_and(|b| b.seq > params.end_seq)
        {
            return Err(Error::InvalidArgument);
        }
        let (sealer, key_mode) = match *key {
            BackupKey::Sealer(s) if s.is_encrypted() => (s.clone(), KeyMode::Key),
            BackupKey::Plain | BackupKey::Sealer(_) => (Sealer::plain(), KeyMode::Plain),
            BackupKey::Passphrase {
                pass,
                salt,
                iterations,
            } => {
                let master = crypto::derive_from_passphrase(pass, &salt, iterations)?;
                (
                    Sealer::with_key(&master),
                    KeyMode::Passphrase { salt, iterations },
                )
            }
        };
        let (kind, base) = match params.base {
            None => (
                BackupKind::Full,
                BackupBase {
                    seq: 0,
                    id: [0; 16],
                },
            ),
            Some(b) => (BackupKind::Incremental, b),
        };
        let mut header = BackupHeader {
            kind,
            key_mode,
            key_check: sealer.key_check(),
            db_id: params.db_id,
            backup_id: [0; ID_LEN],
            parent_id: base.id,
            base_seq: base.seq,
            end_seq: params.end_seq,
            created: params.created,
            chunk_size: params.chunk_size,
        };
        // The identity hashes every header field and the entropy, so distinct parameters
        // always give distinct identities even without entropy.
        let mut h = Sha256::new();
        h.update(ID_LABEL);
        h.update(encode_header(&header));
        h.update(params.entropy);
        for (d, s) in header.backup_id.iter_mut().zip(h.finalize().iter()) {
            *d = *s;
        }
        let bytes = encode_header(&header);
        let mut tag = [0u8; TAG_LEN];
        let tag_len = sealer.seal(&bytes, &mut tag, 0)?;
        let buf_len = FRAME_HEADER + usize::from(params.chunk_size) + sealer.overhead();
        let buf = allocate(buf_len)?;
        sink.write(&bytes)?;
        sink.write(tag.get(..tag_len).ok_or(Error::InvalidArgument)?)?;
        Ok(BackupWriter {
            sink,
            sealer,
            header,
            buf,
            fill: 0,
            chunks: 0,
            records: 0,
            max_seq: 0,
            written: (HEADER_LEN + tag_len) as u64,
            prev: Vec::new(),
            have_prev: false,
            failed: None,
        })
    }

    /// The header written (its `backup_id` names the stream before it is finished).
    pub fn header(&self) -> &BackupHeader {
        &self.header
    }

    /// Appends one record. Keys must be strictly increasing; `value == None` is a deletion.
    ///
    /// Errors, which leave the stream as it was: [`Error::TooLarge`] for a key longer than
    /// [`MAX_KEY_LEN`] or a value longer than [`MAX_VALUE_LEN`]; [`Error::InvalidArgument`] for
    /// a key not after the previous one or a `seq` outside the backup's range (above
    /// `end_seq`, or at most `base_seq` for an incremental). A sink error breaks the stream.
    pub fn push(&mut self, key: &[u8], seq: u64, value: Option<&[u8]>) -> Result<()> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if key.len() > MAX_KEY_LEN || value.is_some_and(|v| v.len() > MAX_VALUE_LEN) {
            return Err(Error::TooLarge);
        }
        let h = &self.header;
        let seq_ok = seq <= h.end_seq && (h.kind == BackupKind::Full || seq > h.base_seq);
        if !seq_ok || (self.have_prev && key <= self.prev.as_slice()) {
            return Err(Error::InvalidArgument);
        }
        let records = self.records.checked_add(1).ok_or(Error::TooLarge)?;
        // Reserve before clearing, so a failure leaves the previous key in place.
        self.prev
            .try_reserve(key.len().saturating_sub(self.prev.len()))
            .map_err(|_| Error::NoMemory)?;
        self.prev.clear();
        self.prev.extend_from_slice(key);
        self.have_prev = true;
        let r = self.encode(key, seq, value);
        if let Err(e) = r {
            self.failed = Some(e);
            return Err(e);
        }
        self.records = records;
        self.max_seq = self.max_seq.max(seq);
        Ok(())
    }

    fn encode(&mut self, key: &[u8], seq: u64, value: Option<&[u8]>) -> Result<()> {
        let mut head = [0u8; VARINT_MAX];
        let mut n = 0;
        put_varint(&mut head, &mut n, key.len() as u64);
        self.put(head.get(..n).unwrap_or_default())?;
        self.put(key)?;
        let mut mid = [0u8; 2 * VARINT_MAX + 1];
        let mut n = 0;
        put_varint(&mut mid, &mut n, seq);
        if let Some(slot) = mid.get_mut(n) {
            *slot = if value.is_some() {
                FLAG_PUT
            } else {
                FLAG_DELETE
            };
            n += 1;
        }
        if let Some(v) = value {
            put_varint(&mut mid, &mut n, v.len() as u64);
        }
        self.put(mid.get(..n).unwrap_or_default())?;
        self.put(value.unwrap_or_default())
    }

    /// Copies `data` into the current chunk, sealing and writing each chunk that fills up.
    fn put(&mut self, mut data: &[u8]) -> Result<()> {
        let size = usize::from(self.header.chunk_size);
        while !data.is_empty() {
            let room = size.saturating_sub(self.fill);
            let (now, rest) = data.split_at(room.min(data.len()));
            let start = FRAME_HEADER + self.fill;
            let dst = self
                .buf
                .get_mut(start..start + now.len())
                .ok_or(Error::InvalidArgument)?;
            dst.copy_from_slice(now);
            self.fill += now.len();
            data = rest;
            if self.fill >= size {
                self.emit(FRAME_DATA)?;
            }
        }
        Ok(())
    }

    /// Seals `buf[FRAME_HEADER..][..fill]` as a frame of type `kind` and writes it.
    fn emit(&mut self, kind: u8) -> Result<()> {
        let len = u16::try_from(self.fill).map_err(|_| Error::InvalidArgument)?;
        let [lo, hi] = len.to_le_bytes();
        let frame = [kind, lo, hi];
        let aad = frame_aad(&self.header.backup_id, self.chunks, &frame);
        let (head, body) = self
            .buf
            .split_at_mut_checked(FRAME_HEADER)
            .ok_or(Error::InvalidArgument)?;
        head.copy_from_slice(&frame);
        let env = self.sealer.seal(&aad, body, self.fill)?;
        let total = FRAME_HEADER + env;
        self.sink
            .write(self.buf.get(..total).ok_or(Error::InvalidArgument)?)?;
        self.written = self.written.saturating_add(total as u64);
        self.fill = 0;
        if kind == FRAME_DATA {
            self.chunks = self.chunks.checked_add(1).ok_or(Error::TooLarge)?;
        }
        Ok(())
    }

    /// Writes the last chunk and the trailer, flushes the sink and returns the totals.
    /// A stream that is dropped without `finish` has no trailer and never verifies.
    pub fn finish(mut self) -> Result<BackupInfo> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.fill > 0 {
            self.emit(FRAME_DATA)?;
        }
        let trailer = [self.records, self.chunks, self.max_seq];
        let dst = self
            .buf
            .get_mut(FRAME_HEADER..FRAME_HEADER + TRAILER_LEN)
            .ok_or(Error::InvalidArgument)?;
        for (d, s) in dst
            .iter_mut()
            .zip(trailer.iter().flat_map(|v| v.to_le_bytes()))
        {
            *d = s;
        }
        self.fill = TRAILER_LEN;
        self.emit(FRAME_TRAILER)?;
        self.sink.flush()?;
        Ok(BackupInfo {
            header: self.header,
            records: self.records,
            chunks: self.chunks,
            max_seq: self.max_seq,
            stream_len: self.written,
        })
    }
}

impl<S: BackupSink> Drop for BackupWriter<S> {
    // The chunk buffer and previous key hold database plaintext.
    fn drop(&mut self) {
        self.buf.as_mut_slice().zeroize();
        self.prev.as_mut_slice().zeroize();
    }
}

// ---------------------------------------------------------------------------------------------
// Reader

enum State {
    Reading,
    Done(BackupInfo),
    Failed(Error),
}

/// Reads and checks one backup stream; see the module docs.
pub struct BackupReader<S: BackupSource> {
    source: S,
    sealer: Sealer,
    header: BackupHeader,
    /// The current frame's envelope, opened in place: plaintext is `buf[..len]`.
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    chunks: u64,
    records: u64,
    max_seq: u64,
    consumed: u64,
    /// The current record: key then value.
    rec: Vec<u8>,
    key_len: usize,
    seq: u64,
    has_value: bool,
    prev: Vec<u8>,
    have_prev: bool,
    state: State,
}

impl<S: BackupSource> BackupReader<S> {
    /// Reads and authenticates the header.
    ///
    /// Errors: [`Error::BadBackup`] (not a backup, damaged or tampered header, passphrase
    /// iterations above the caller's ceiling), [`Error::Unsupported`] (another format
    /// version), [`Error::KeyMismatch`] (a plain key for an encrypted stream, a key for a
    /// plain one, or a passphrase for a stream under a raw key), [`Error::WrongKey`], or the
    /// source's error.
    pub fn open(mut source: S, key: &BackupKey<'_>) -> Result<Self> {
        let mut bytes = [0u8; HEADER_LEN];
        read_exact(&mut source, &mut bytes)?;
        let header = decode_header(&bytes)?;
        let sealer = match (*key, header.key_mode) {
            (BackupKey::Plain, KeyMode::Plain) => Sealer::plain(),
            (BackupKey::Sealer(s), KeyMode::Plain) if !s.is_encrypted() => Sealer::plain(),
            (BackupKey::Sealer(s), KeyMode::Key | KeyMode::Passphrase { .. })
                if s.is_encrypted() =>
            {
                s.clone()
            }
            (
                BackupKey::Passphrase {
                    pass,
                    iterations: ceiling,
                    ..
                },
                KeyMode::Passphrase { salt, iterations },
            ) => {
                if iterations > ceiling {
                    return Err(Error::BadBackup);
                }
                Sealer::with_key(&crypto::derive_from_passphrase(pass, &salt, iterations)?)
            }
            _ => return Err(Error::KeyMismatch),
        };
        if !crypto::ct_eq(&sealer.key_check(), &header.key_check) {
            return Err(Error::WrongKey);
        }
        let mut tag = [0u8; TAG_LEN];
        let tag = tag
            .get_mut(..sealer.overhead())
            .ok_or(Error::InvalidArgument)?;
        read_exact(&mut source, tag)?;
        sealer.open(&bytes, tag).map_err(|_| Error::BadBackup)?;
        let buf_len = usize::from(header.chunk_size) + sealer.overhead();
        let buf = allocate(buf_len.max(TRAILER_LEN + sealer.overhead()))?;
        Ok(BackupReader {
            source,
            consumed: (HEADER_LEN + sealer.overhead()) as u64,
            sealer,
            header,
            buf,
            pos: 0,
            len: 0,
            chunks: 0,
            records: 0,
            max_seq: 0,
            rec: Vec::new(),
            key_len: 0,
            seq: 0,
            has_value: false,
            prev: Vec::new(),
            have_prev: false,
            state: State::Reading,
        })
    }

    /// The authenticated header.
    pub fn header(&self) -> &BackupHeader {
        &self.header
    }

    /// The totals, once [`BackupReader::next`] has returned `None` (the trailer checked).
    pub fn info(&self) -> Option<BackupInfo> {
        match self.state {
            State::Done(info) => Some(info),
            _ => None,
        }
    }

    /// The next record, or `None` after the last one once the trailer has been checked.
    ///
    /// Errors: [`Error::BadBackup`] for anything tampered, truncated, reordered or malformed,
    /// the source's error, or `NoMemory`. After an error every call returns it again.
    #[allow(clippy::should_implement_trait)] // a lending iterator: the record borrows `self`
    pub fn next(&mut self) -> Result<Option<Record<'_>>> {
        match self.state {
            State::Done(_) => return Ok(None),
            State::Failed(e) => return Err(e),
            State::Reading => {}
        }
        match self.decode() {
            Ok(true) => {
                let (key, value) = self.rec.split_at(self.key_len.min(self.rec.len()));
                Ok(Some(Record {
                    key,
                    seq: self.seq,
                    value: self.has_value.then_some(value),
                }))
            }
            Ok(false) => Ok(None),
            Err(e) => {
                let e = if e == Error::Corrupt {
                    Error::BadBackup
                } else {
                    e
                };
                self.state = State::Failed(e);
                self.rec.as_mut_slice().zeroize();
                Err(e)
            }
        }
    }

    /// Reads every remaining record and returns the totals: the whole stream checked.
    pub fn finish(mut self) -> Result<BackupInfo> {
        while self.next()?.is_some() {}
        self.info().ok_or(Error::BadBackup)
    }

    /// Decodes the next record into `rec`; `false` at the verified end.
    fn decode(&mut self) -> Result<bool> {
        if !self.fill()? {
            return Ok(false);
        }
        self.rec.clear();
        let key_len = self.varint()?;
        let key_len = usize::try_from(key_len)
            .ok()
            .filter(|&n| n <= MAX_KEY_LEN)
            .ok_or(Error::BadBackup)?;
        self.take(key_len)?;
        let seq = self.varint()?;
        let has_value = match self.byte()? {
            FLAG_PUT => true,
            FLAG_DELETE => false,
            _ => return Err(Error::BadBackup),
        };
        if has_value {
            let value_len = usize::try_from(self.varint()?)
                .ok()
                .filter(|&n| n <= MAX_VALUE_LEN)
                .ok_or(Error::BadBackup)?;
            self.take(value_len)?;
        }
        let key = self.rec.get(..key_len).ok_or(Error::BadBackup)?;
        let h = &self.header;
        let seq_ok = seq <= h.end_seq && (h.kind == BackupKind::Full || seq > h.base_seq);
        if !seq_ok || (self.have_prev && key <= self.prev.as_slice()) {
            return Err(Error::BadBackup);
        }
        self.prev.clear();
        self.prev
            .try_reserve(key.len())
            .map_err(|_| Error::NoMemory)?;
        self.prev.extend_from_slice(key);
        self.have_prev = true;
        self.records = self.records.checked_add(1).ok_or(Error::BadBackup)?;
        self.max_seq = self.max_seq.max(seq);
        self.key_len = key_len;
        self.seq = seq;
        self.has_value = has_value;
        Ok(true)
    }

    /// Makes at least one plaintext byte available; `false` when the next frame is the
    /// trailer, which is then checked against what was read (and the state set to done).
    fn fill(&mut self) -> Result<bool> {
        if self.pos < self.len {
            return Ok(true);
        }
        let mut frame = [0u8; FRAME_HEADER];
        self.read(&mut frame)?;
        let [kind, lo, hi] = frame;
        let len = usize::from(u16::from_le_bytes([lo, hi]));
        let ok = match kind {
            FRAME_DATA => (1..=usize::from(self.header.chunk_size)).contains(&len),
            FRAME_TRAILER => len == TRAILER_LEN,
            _ => false,
        };
        if !ok {
            return Err(Error::BadBackup);
        }
        let env_len = len + self.sealer.overhead();
        let mut env = core::mem::take(&mut self.buf);
        let r = match env.get_mut(..env_len) {
            Some(e) => self.read(e),
            None => Err(Error::BadBackup),
        };
        self.buf = env;
        r?;
        let aad = frame_aad(&self.header.backup_id, self.chunks, &frame);
        let env = self.buf.get_mut(..env_len).ok_or(Error::BadBackup)?;
        let n = self.sealer.open(&aad, env).map_err(|_| Error::BadBackup)?;
        if kind == FRAME_DATA {
            self.chunks = self.chunks.checked_add(1).ok_or(Error::BadBackup)?;
            self.pos = 0;
            self.len = n;
            return Ok(true);
        }
        let t = self.buf.get(..TRAILER_LEN).ok_or(Error::BadBackup)?;
        let mut r = Reader::new(t);
        let mut field = || {
            r.array()
                .map(u64::from_le_bytes)
                .map_err(|_| Error::BadBackup)
        };
        let (records, chunks, max_seq) = (field()?, field()?, field()?);
        if records != self.records || chunks != self.chunks || max_seq != self.max_seq {
            return Err(Error::BadBackup);
        }
        self.pos = 0;
        self.len = 0;
        self.state = State::Done(BackupInfo {
            header: self.header,
            records,
            chunks,
            max_seq,
            stream_len: self.consumed,
        });
        Ok(false)
    }

    /// Fills `dst` from the source; a short stream is [`Error::BadBackup`].
    fn read(&mut self, dst: &mut [u8]) -> Result<()> {
        read_exact(&mut self.source, dst)?;
        self.consumed = self.consumed.saturating_add(dst.len() as u64);
        Ok(())
    }

    /// The next plaintext byte inside a record (the trailer here means a cut record).
    fn byte(&mut self) -> Result<u8> {
        if !self.fill()? {
            return Err(Error::BadBackup);
        }
        let b = *self.buf.get(self.pos).ok_or(Error::BadBackup)?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    return Err(Error::BadBackup);
                }
                return Ok(v);
            }
        }
        Err(Error::BadBackup)
    }

    /// Appends the next `n` plaintext bytes to `rec`, across chunk boundaries.
    fn take(&mut self, mut n: usize) -> Result<()> {
        while n > 0 {
            if !self.fill()? {
                return Err(Error::BadBackup);
            }
            let avail = self.buf.get(self.pos..self.len).ok_or(Error::BadBackup)?;
            let k = n.min(avail.len());
            let part = avail.get(..k).ok_or(Error::BadBackup)?;
            self.rec.try_reserve(k).map_err(|_| Error::NoMemory)?;
            self.rec.extend_from_slice(part);
            self.pos += k;
            n -= k;
        }
        Ok(())
    }
}

impl<S: BackupSource> Drop for BackupReader<S> {
    // The buffers hold database plaintext.
    fn drop(&mut self) {
        self.buf.as_mut_slice().zeroize();
        self.rec.as_mut_slice().zeroize();
        self.prev.as_mut_slice().zeroize();
    }
}

fn read_exact<S: BackupSource + ?Sized>(source: &mut S, mut dst: &mut [u8]) -> Result<()> {
    while !dst.is_empty() {
        let n = source.read(dst)?;
        if n == 0 {
            return Err(Error::BadBackup);
        }
        // A source claiming more than it was asked for is broken.
        dst = core::mem::take(&mut dst).get_mut(n..).ok_or(Error::Io)?;
    }
    Ok(())
}

/// Reads and checks a whole stream, keeping nothing: header, every chunk, every record's
/// order and range, and the trailer. Same errors as [`BackupReader::open`] and
/// [`BackupReader::next`].
pub fn verify<S: BackupSource>(source: S, key: &BackupKey<'_>) -> Result<BackupInfo> {
    BackupReader::open(source, key)?.finish()
}

/// Checks that `next` continues `prev`: an incremental of the same database whose base is
/// `prev`'s end and identity. Else [`Error::BackupChain`].
pub fn check_link(prev: &BackupHeader, next: &BackupHeader) -> Result<()> {
    if next.kind == BackupKind::Incremental
        && next.db_id == prev.db_id
        && next.base_seq == prev.end_seq
        && next.parent_id == prev.backup_id
    {
        Ok(())
    } else {
        Err(Error::BackupChain)
    }
}

/// Checks a restore chain: a full backup first, then incrementals each continuing the one
/// before ([`check_link`]). An empty chain, or one not starting with a full backup, is
/// [`Error::BackupChain`].
pub fn check_chain<H: AsRef<BackupHeader>>(chain: &[H]) -> Result<()> {
    let first = chain.first().ok_or(Error::BackupChain)?.as_ref();
    if first.kind != BackupKind::Full {
        return Err(Error::BackupChain);
    }
    chain.windows(2).try_for_each(|w| match w {
        [a, b] => check_link(a.as_ref(), b.as_ref()),
        _ => Err(Error::BackupChain),
    })
}

// ---------------------------------------------------------------------------------------------
// Raw partitions

/// Checks a partition of `count` blocks from `first` on a device of geometry `g`.
fn partition_ok(g: &Geometry, first: u32, count: u32) -> bool {
    g.read_size != 0
        && g.prog_size != 0
        && g.block_size != 0
        && g.block_size % g.read_size == 0
        && g.block_size % g.prog_size == 0
        && count != 0
        && first
            .checked_add(count)
            .is_some_and(|end| end <= g.block_count)
}

/// The buffer size of a partition adapter: a multiple of `unit` near [`IO_UNIT`].
fn io_len(unit: u32, block_size: u32) -> usize {
    let n = unit.saturating_mul((IO_UNIT / unit.max(1)).max(1));
    usize::try_from(n.min(block_size)).unwrap_or(0)
}

/// Writes a stream onto a raw partition: blocks `first..first + count` of a device.
///
/// Each block is erased just before its first byte is programmed; bytes are buffered to whole
/// program units, and the last unit is padded with 0xFF at [`BackupSink::flush`], which also
/// syncs the device. Bytes after the stream keep whatever the partition held: the reader stops
/// at the trailer, and a stream cut short by a power loss fails to verify (the old bytes that
/// follow belong to another backup identity). Read it back with [`DeviceSource`] and
/// [`verify`]. Flash errors are [`Error::Io`]; a stream longer than the partition is
/// [`Error::NoSpace`].
pub struct DeviceSink<D: BlockDevice> {
    dev: D,
    first: u32,
    count: u32,
    block_size: u32,
    prog_size: u32,
    /// Block (relative to `first`) and offset where `buf` goes.
    block: u32,
    off: u32,
    erased: bool,
    buf: Vec<u8>,
    unit: usize,
    done: bool,
}

impl<D: BlockDevice> DeviceSink<D> {
    /// A sink over `count` blocks from `first`. [`Error::InvalidArgument`] for a range off
    /// the device or an unusable geometry.
    pub fn new(dev: D, first: u32, count: u32) -> Result<Self> {
        let g = dev.geometry();
        if !partition_ok(&g, first, count) {
            return Err(Error::InvalidArgument);
        }
        let unit = io_len(g.prog_size, g.block_size);
        if unit == 0 {
            return Err(Error::InvalidArgument);
        }
        let mut buf = Vec::new();
        buf.try_reserve_exact(unit).map_err(|_| Error::NoMemory)?;
        Ok(DeviceSink {
            dev,
            first,
            count,
            block_size: g.block_size,
            prog_size: g.prog_size,
            block: 0,
            off: 0,
            erased: false,
            buf,
            unit,
            done: false,
        })
    }

    /// The device back.
    pub fn into_inner(self) -> D {
        self.dev
    }

    /// Bytes the buffer may hold before it must be programmed.
    fn room(&self) -> usize {
        let left = usize::try_from(self.block_size.saturating_sub(self.off)).unwrap_or(0);
        self.unit.min(left)
    }

    /// Programs `buf` (a whole number of program units) at the current position.
    fn program(&mut self) -> Result<()> {
        let block = self.first.checked_add(self.block).ok_or(Error::NoSpace)?;
        if self.block >= self.count {
            return Err(Error::NoSpace);
        }
        if !self.erased {
            self.dev.erase(block).map_err(|_| Error::Io)?;
            self.erased = true;
        }
        self.dev
            .prog(block, self.off, &self.buf)
            .map_err(|_| Error::Io)?;
        let len = u32::try_from(self.buf.len()).map_err(|_| Error::Io)?;
        self.off = self.off.saturating_add(len);
        self.buf.clear();
        if self.off >= self.block_size {
            self.block = self.block.saturating_add(1);
            self.off = 0;
            self.erased = false;
        }
        Ok(())
    }
}

impl<D: BlockDevice> BackupSink for DeviceSink<D> {
    fn write(&mut self, mut data: &[u8]) -> Result<()> {
        if self.done {
            return Err(Error::InvalidArgument);
        }
        while !data.is_empty() {
            if self.block >= self.count {
                return Err(Error::NoSpace);
            }
            let room = self.room();
            let k = room.saturating_sub(self.buf.len()).min(data.len());
            let (now, rest) = data.split_at(k);
            self.buf.extend_from_slice(now);
            data = rest;
            if self.buf.len() >= room {
                self.program()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.done {
            return Ok(());
        }
        if !self.buf.is_empty() {
            let prog = usize::try_from(self.prog_size).map_err(|_| Error::Io)?;
            let padded = self.buf.len().div_ceil(prog).saturating_mul(prog);
            self.buf.resize(padded, 0xFF);
            self.program()?;
        }
        self.dev.sync().map_err(|_| Error::Io)?;
        self.done = true;
        Ok(())
    }
}

/// Reads a stream back from a raw partition written by [`DeviceSink`]; the end of the
/// partition is the end of the source.
pub struct DeviceSource<D: BlockDevice> {
    dev: D,
    first: u32,
    count: u32,
    block_size: u32,
    block: u32,
    off: u32,
    buf: Vec<u8>,
    pos: usize,
    unit: usize,
}

impl<D: BlockDevice> DeviceSource<D> {
    /// A source over `count` blocks from `first`. [`Error::InvalidArgument`] for a range off
    /// the device or an unusable geometry.
    pub fn new(dev: D, first: u32, count: u32) -> Result<Self> {
        let g = dev.geometry();
        if !partition_ok(&g, first, count) {
            return Err(Error::InvalidArgument);
        }
        let unit = io_len(g.read_size, g.block_size);
        if unit == 0 {
            return Err(Error::InvalidArgument);
        }
        let mut buf = Vec::new();
        buf.try_reserve_exact(unit).map_err(|_| Error::NoMemory)?;
        Ok(DeviceSource {
            dev,
            first,
            count,
            block_size: g.block_size,
            block: 0,
            off: 0,
            buf,
            pos: 0,
            unit,
        })
    }

    /// The device back.
    pub fn into_inner(self) -> D {
        self.dev
    }
}

impl<D: BlockDevice> BackupSource for DeviceSource<D> {
    fn read(&mut self, out: &mut [u8]) -> Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.buf.len() {
            if self.block >= self.count {
                return Ok(0);
            }
            let left = usize::try_from(self.block_size.saturating_sub(self.off)).unwrap_or(0);
            let n = self.unit.min(left);
            self.buf.clear();
            self.buf.resize(n, 0);
            let block = self.first.checked_add(self.block).ok_or(Error::Io)?;
            self.dev
                .read(block, self.off, &mut self.buf)
                .map_err(|_| Error::Io)?;
            self.pos = 0;
            let n32 = u32::try_from(n).map_err(|_| Error::Io)?;
            self.off = self.off.saturating_add(n32);
            if self.off >= self.block_size {
                self.block = self.block.saturating_add(1);
                self.off = 0;
            }
        }
        let avail = self.buf.get(self.pos..).unwrap_or_default();
        let k = avail.len().min(out.len());
        for (d, s) in out.iter_mut().zip(avail) {
            *d = *s;
        }
        self.pos += k;
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use crate::flash::SimFlash;
    use alloc::vec;

    fn header() -> BackupHeader {
        BackupHeader {
            kind: BackupKind::Incremental,
            key_mode: KeyMode::Passphrase {
                salt: [3; SALT_LEN],
                iterations: 7,
            },
            key_check: [4; CHECK_LEN],
            db_id: [5; ID_LEN],
            backup_id: [6; ID_LEN],
            parent_id: [7; ID_LEN],
            base_seq: 10,
            end_seq: 20,
            created: 0x1122_3344_5566_7788,
            chunk_size: 100,
        }
    }

    #[test]
    fn header_round_trip_and_layout() {
        let h = header();
        let b = encode_header(&h);
        assert_eq!(&b[..8], b"CAIRNBK\x01");
        assert_eq!(&b[8..10], &[1, 0]);
        assert_eq!(b[10], KIND_INCREMENTAL);
        assert_eq!(b[11], MODE_PASSPHRASE);
        assert_eq!(&b[12..16], &7u32.to_le_bytes());
        assert_eq!(&b[96..104], &10u64.to_le_bytes());
        assert_eq!(&b[112..120], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(&b[120..122], &100u16.to_le_bytes());
        assert_eq!(&b[122..], &[0; 6]);
        assert_eq!(decode_header(&b), Ok(h));
        assert_eq!(peek_header(&b), Ok(h));
        assert_eq!(peek_header(&b[..127]), Err(Error::BadBackup));
    }

    #[test]
    fn header_rejects_malformed_fields() {
        let good = encode_header(&header());
        let cases: [(usize, u8, Error); 8] = [
            (0, b'X', Error::BadBackup),   // magic
            (8, 2, Error::Unsupported),    // version
            (10, 2, Error::BadBackup),     // kind
            (11, 3, Error::BadBackup),     // mode
            (120, 10, Error::BadBackup),   // chunk size below the minimum
            (121, 0x20, Error::BadBackup), // chunk size above the maximum
            (125, 1, Error::BadBackup),    // reserved
            (103, 1, Error::BadBackup),    // base_seq past end_seq
        ];
        for (at, v, e) in cases {
            let mut b = good;
            b[at] = v;
            assert_eq!(decode_header(&b), Err(e), "byte {at}");
        }
        // Passphrase mode with zero iterations; key mode with a salt; full with a parent.
        let mut b = good;
        b[12..16].fill(0);
        assert_eq!(decode_header(&b), Err(Error::BadBackup));
        let mut h = header();
        h.key_mode = KeyMode::Key;
        let mut b = encode_header(&h);
        b[20] = 1;
        assert_eq!(decode_header(&b), Err(Error::BadBackup));
        h.kind = BackupKind::Full;
        assert_eq!(decode_header(&encode_header(&h)), Err(Error::BadBackup));
        h.parent_id = [0; ID_LEN];
        h.base_seq = 0;
        assert!(decode_header(&encode_header(&h)).is_ok());
        h.key_mode = KeyMode::Plain;
        assert_eq!(decode_header(&encode_header(&h)), Err(Error::BadBackup));
        h.key_check = [0; CHECK_LEN];
        assert!(decode_header(&encode_header(&h)).is_ok());
    }

    #[test]
    fn varints_encode_as_leb128() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut buf = [0u8; VARINT_MAX];
            let mut n = 0;
            put_varint(&mut buf, &mut n, v);
            let mut expect = Vec::new();
            crate::format::put_varint(&mut expect, v);
            assert_eq!(&buf[..n], &expect[..]);
        }
    }

    #[test]
    fn frame_aad_layout() {
        let aad = frame_aad(&[9; ID_LEN], 0x0102, &[FRAME_TRAILER, 24, 0]);
        assert_eq!(&aad[..4], b"cbk1");
        assert_eq!(&aad[4..20], &[9; ID_LEN]);
        assert_eq!(&aad[20..28], &0x0102u64.to_le_bytes());
        assert_eq!(&aad[28..], &[2, 24, 0]);
    }

    fn stream(key: &BackupKey<'_>, n: usize, chunk: u16) -> (Vec<u8>, BackupInfo) {
        let mut out = Vec::new();
        let mut p = BackupParams::full([1; ID_LEN], 1000);
        p.chunk_size = chunk;
        let mut w = BackupWriter::new(&mut out, key, &p).unwrap();
        for i in 0..n {
            let k = (i as u32).to_be_bytes();
            let v = vec![i as u8; i % 150];
            w.push(&k, i as u64, (i % 7 != 3).then_some(&v[..]))
                .unwrap();
        }
        let info = w.finish().unwrap();
        (out, info)
    }

    #[test]
    fn empty_stream_is_header_and_trailer() {
        let sealer = Sealer::with_key(&MasterKey::from_bytes(&[8; 32]));
        for (key, over) in [(BackupKey::Plain, 4usize), (BackupKey::Sealer(&sealer), 16)] {
            let (s, info) = stream(&key, 0, DEFAULT_CHUNK_SIZE);
            assert_eq!(
                s.len(),
                HEADER_LEN + over + FRAME_HEADER + TRAILER_LEN + over
            );
            assert_eq!(info.stream_len, s.len() as u64);
            assert_eq!((info.records, info.chunks, info.max_seq), (0, 0, 0));
            let mut r = BackupReader::open(&s[..], &key).unwrap();
            assert_eq!(r.info(), None);
            assert_eq!(r.next(), Ok(None));
            assert_eq!(r.info(), Some(info));
        }
    }

    #[test]
    fn chunks_are_full_except_the_last() {
        let sealer = Sealer::with_key(&MasterKey::from_bytes(&[8; 32]));
        let key = BackupKey::Sealer(&sealer);
        let (s, info) = stream(&key, 60, 64);
        assert!(info.chunks > 10);
        let mut at = HEADER_LEN + TAG_LEN;
        let mut lens = Vec::new();
        while at < s.len() {
            let len = u16::from_le_bytes([s[at + 1], s[at + 2]]) as usize;
            lens.push((s[at], len));
            at += FRAME_HEADER + len + TAG_LEN;
        }
        assert_eq!(at, s.len());
        assert_eq!(lens.len() as u64, info.chunks + 1);
        let (last, body) = lens.split_last().unwrap();
        assert_eq!(*last, (FRAME_TRAILER, TRAILER_LEN));
        let (final_data, full) = body.split_last().unwrap();
        assert!(full.iter().all(|&f| f == (FRAME_DATA, 64)));
        assert!(final_data.0 == FRAME_DATA && (1..=64).contains(&final_data.1));
        assert_eq!(verify(&s[..], &key), Ok(info));
    }

    #[test]
    fn writer_refuses_bad_records_without_breaking_the_stream() {
        let mut out = Vec::new();
        let p = BackupParams::full([1; ID_LEN], 50);
        let mut w = BackupWriter::new(&mut out, &BackupKey::Plain, &p).unwrap();
        w.push(b"b", 5, Some(b"x")).unwrap();
        assert_eq!(w.push(b"b", 5, None), Err(Error::InvalidArgument));
        assert_eq!(w.push(b"a", 5, None), Err(Error::InvalidArgument));
        assert_eq!(w.push(b"c", 51, None), Err(Error::InvalidArgument));
        let long = vec![0u8; MAX_KEY_LEN + 1];
        assert_eq!(w.push(&long, 1, None), Err(Error::TooLarge));
        let big = vec![0u8; MAX_VALUE_LEN + 1];
        assert_eq!(w.push(b"d", 1, Some(&big)), Err(Error::TooLarge));
        w.push(b"c", 50, None).unwrap();
        let info = w.finish().unwrap();
        assert_eq!((info.records, info.max_seq), (2, 50));
        let mut r = BackupReader::open(&out[..], &BackupKey::Plain).unwrap();
        assert_eq!(
            r.next().unwrap(),
            Some(Record {
                key: b"b",
                seq: 5,
                value: Some(b"x")
            })
        );
        assert_eq!(
            r.next().unwrap(),
            Some(Record {
                key: b"c",
                seq: 50,
                value: None
            })
        );
        assert_eq!(r.next(), Ok(None));
        assert_eq!(r.next(), Ok(None));
    }

    #[test]
    fn writer_parameter_checks() {
        let mut p = BackupParams::full([1; ID_LEN], 5);
        for size in [0, MIN_CHUNK_SIZE - 1, MAX_CHUNK_SIZE + 1] {
            p.chunk_size = size;
            let r = BackupWriter::new(Vec::new(), &BackupKey::Plain, &p);
            assert_eq!(r.err(), Some(Error::InvalidArgument));
        }
        p.chunk_size = DEFAULT_CHUNK_SIZE;
        p.base = Some(BackupBase {
            seq: 6,
            id: [2; 16],
        });
        let r = BackupWriter::new(Vec::new(), &BackupKey::Plain, &p);
        assert_eq!(r.err(), Some(Error::InvalidArgument));
        let bad_pass = BackupKey::Passphrase {
            pass: b"",
            salt: [0; SALT_LEN],
            iterations: 1,
        };
        p.base = None;
        let r = BackupWriter::new(Vec::new(), &bad_pass, &p);
        assert_eq!(r.err(), Some(Error::InvalidArgument));
    }

    #[test]
    fn incremental_seq_range_is_enforced() {
        let (_, full) = stream(&BackupKey::Plain, 3, DEFAULT_CHUNK_SIZE);
        let p = BackupParams::incremental(&full.header, 1010);
        assert_eq!(
            p.base,
            Some(BackupBase {
                seq: 1000,
                id: full.header.backup_id
            })
        );
        let mut out = Vec::new();
        let mut w = BackupWriter::new(&mut out, &BackupKey::Plain, &p).unwrap();
        assert_eq!(w.push(b"a", 1000, None), Err(Error::InvalidArgument));
        w.push(b"a", 1001, None).unwrap();
        w.push(b"b", 1010, Some(b"")).unwrap();
        let info = w.finish().unwrap();
        assert_eq!(info.header.kind, BackupKind::Incremental);
        assert_eq!(check_chain(&[full, info]), Ok(()));
        assert_eq!(verify(&out[..], &BackupKey::Plain), Ok(info));
    }

    #[test]
    fn debug_hides_secrets() {
        let k = BackupKey::Passphrase {
            pass: b"hunter2",
            salt: [1; SALT_LEN],
            iterations: 3,
        };
        let s = alloc::format!("{k:?}");
        assert!(!s.contains("hunter2") && !s.contains("[1,"), "{s}");
    }

    type Frames = Vec<(u8, Vec<u8>)>;

    /// A plain stream built by hand: any frames, each sealed as a correct writer would
    /// (index = data chunks before it), so only the reader's own checks can refuse it.
    fn forge(h: &BackupHeader, frames: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let s = Sealer::plain();
        let hb = encode_header(h);
        let mut out = hb.to_vec();
        let mut tag = [0u8; 4];
        s.seal(&hb, &mut tag, 0).unwrap();
        out.extend_from_slice(&tag);
        let mut index = 0u64;
        for (kind, pt) in frames {
            let frame = [*kind, pt.len() as u8, (pt.len() >> 8) as u8];
            let mut env = pt.clone();
            env.extend_from_slice(&[0; 4]);
            s.seal(&frame_aad(&h.backup_id, index, &frame), &mut env, pt.len())
                .unwrap();
            out.extend_from_slice(&frame);
            out.extend_from_slice(&env);
            if *kind == FRAME_DATA {
                index += 1;
            }
        }
        out
    }

    fn plain_header(kind: BackupKind, base_seq: u64, end_seq: u64) -> BackupHeader {
        BackupHeader {
            kind,
            key_mode: KeyMode::Plain,
            key_check: [0; CHECK_LEN],
            parent_id: if kind == BackupKind::Full {
                [0; 16]
            } else {
                [7; 16]
            },
            base_seq,
            end_seq,
            chunk_size: 64,
            ..header()
        }
    }

    fn rec(key: &[u8], seq: u64, value: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        crate::format::put_blob(&mut out, key);
        crate::format::put_varint(&mut out, seq);
        match value {
            Some(v) => {
                out.push(FLAG_PUT);
                crate::format::put_blob(&mut out, v);
            }
            None => out.push(FLAG_DELETE),
        }
        out
    }

    fn trailer(records: u64, chunks: u64, max_seq: u64) -> (u8, Vec<u8>) {
        let t = [records, chunks, max_seq];
        (
            FRAME_TRAILER,
            t.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    }

    #[test]
    fn forged_streams_are_checked_record_by_record() {
        let full = plain_header(BackupKind::Full, 0, 50);
        let inc = plain_header(BackupKind::Incremental, 10, 50);
        let data = |parts: &[Vec<u8>]| (FRAME_DATA, parts.concat());
        let ab = data(&[rec(b"a", 5, Some(b"1")), rec(b"b", 6, None)]);
        // The forge itself is right: a well-formed stream verifies.
        let good = forge(&full, &[ab.clone(), trailer(2, 1, 6)]);
        assert_eq!(
            verify(&good[..], &BackupKey::Plain).map(|i| i.records),
            Ok(2)
        );
        // A record split across chunks at any byte is fine.
        let joined = ab.1.clone();
        for cut in 1..joined.len() {
            let s = forge(
                &full,
                &[
                    (FRAME_DATA, joined[..cut].to_vec()),
                    (FRAME_DATA, joined[cut..].to_vec()),
                    trailer(2, 2, 6),
                ],
            );
            assert_eq!(verify(&s[..], &BackupKey::Plain).map(|i| i.records), Ok(2));
        }
        let long_key = rec(&[1; MAX_KEY_LEN + 1], 1, None);
        let mut bad_flag = rec(b"a", 1, None);
        *bad_flag.last_mut().unwrap() = 2;
        let mut overlong_varint = vec![1, b'a'];
        overlong_varint.extend_from_slice(&[0xFF; 9]);
        overlong_varint.push(0x02);
        let cases: [(&str, &BackupHeader, Frames); 14] = [
            (
                "keys out of order",
                &full,
                vec![
                    data(&[rec(b"b", 1, None), rec(b"a", 2, None)]),
                    trailer(2, 1, 2),
                ],
            ),
            (
                "key repeated",
                &full,
                vec![
                    data(&[rec(b"a", 1, None), rec(b"a", 2, None)]),
                    trailer(2, 1, 2),
                ],
            ),
            (
                "seq past end",
                &full,
                vec![data(&[rec(b"a", 51, None)]), trailer(1, 1, 51)],
            ),
            (
                "seq at base",
                &inc,
                vec![data(&[rec(b"a", 10, None)]), trailer(1, 1, 10)],
            ),
            (
                "key too long",
                &full,
                vec![data(&[long_key]), trailer(1, 1, 1)],
            ),
            (
                "unknown flag",
                &full,
                vec![data(&[bad_flag]), trailer(1, 1, 1)],
            ),
            (
                "varint overflow",
                &full,
                vec![data(&[overlong_varint]), trailer(1, 1, 0)],
            ),
            (
                "record cut by trailer",
                &full,
                vec![(FRAME_DATA, ab.1[..4].to_vec()), trailer(0, 1, 0)],
            ),
            ("record count", &full, vec![ab.clone(), trailer(3, 1, 6)]),
            ("chunk count", &full, vec![ab.clone(), trailer(2, 2, 6)]),
            ("max seq", &full, vec![ab.clone(), trailer(2, 1, 5)]),
            (
                "empty chunk",
                &full,
                vec![(FRAME_DATA, vec![]), ab.clone(), trailer(2, 2, 6)],
            ),
            (
                "chunk over size",
                &full,
                vec![
                    (FRAME_DATA, [ab.1.clone(), vec![0; 64]].concat()),
                    trailer(2, 1, 6),
                ],
            ),
            (
                "unknown frame",
                &full,
                vec![(3, ab.1.clone()), trailer(2, 1, 6)],
            ),
        ];
        for (what, h, frames) in cases {
            let s = forge(h, &frames);
            assert_eq!(
                verify(&s[..], &BackupKey::Plain),
                Err(Error::BadBackup),
                "{what}"
            );
        }
        let short_trailer = forge(&full, &[ab, (FRAME_TRAILER, vec![0; 16])]);
        assert_eq!(
            verify(&short_trailer[..], &BackupKey::Plain),
            Err(Error::BadBackup)
        );
    }

    #[test]
    fn partition_checks() {
        let g = Geometry {
            read_size: 4,
            prog_size: 8,
            block_size: 256,
            block_count: 4,
        };
        let mut dev = SimFlash::new(g).unwrap();
        assert!(DeviceSink::new(&mut dev, 0, 0).is_err());
        assert!(DeviceSink::new(&mut dev, 3, 2).is_err());
        assert!(DeviceSink::new(&mut dev, u32::MAX, 2).is_err());
        assert!(DeviceSource::new(&mut dev, 4, 1).is_err());
        assert!(DeviceSink::new(&mut dev, 3, 1).is_ok());
        assert_eq!(io_len(8, 256), 256);
        assert_eq!(io_len(24, 480), 240);
        assert_eq!(io_len(512, 4096), 512);
        assert_eq!(io_len(8, 64), 64);
    }
}
