//! The sealed-record envelope: every byte cairndb writes to flash goes through [`Sealer`].
//!
//! Encrypted databases use a deterministic AEAD with a synthetic IV (SIV), built from
//! AES-256-CTR and HMAC-SHA256:
//!
//! ```text
//! SIV      = HMAC-SHA256(mac_key, u32_le(len(aad)) || aad || plaintext)[..16]
//! envelope = AES-256-CTR(enc_key, counter block = SIV, 128-bit big-endian counter)(plaintext) || SIV
//! ```
//!
//! The IV is a function of (key, aad, plaintext), so it can only repeat for an identical
//! (aad, plaintext) pair: no random source or persistent nonce counter is needed, and power
//! cuts, restores or an old image written back cannot cause an IV reuse with different data.
//!
//! Unencrypted databases still checksum every record: the envelope is
//! `plaintext || u32_le(CRC-32C(u32_le(len(aad)) || aad || plaintext))`.
//!
//! Subkeys are derived from the 32-byte master key with domain-separated labels:
//! `enc_key = HMAC-SHA256(master, "cairndb/v1/enc")`, `mac_key = HMAC-SHA256(master,
//! "cairndb/v1/mac")`. The key-check value stored in the root record is
//! `HMAC-SHA256(mac_key, "cairndb/v1/key-check")[..16]`.
//! docs/SPEC.md, section "Crypto envelope", is the normative description; known-answer
//! vectors come from the independent `tools/kat/envelope_kat.py`.

use alloc::boxed::Box;
use core::fmt;

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::digest::{FixedOutput, KeyInit};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};

/// Length of the master key and of each subkey, in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the PBKDF2 salt, in bytes.
pub const SALT_LEN: usize = 16;
/// Length of the synthetic IV that doubles as the authentication tag, in bytes.
pub const TAG_LEN: usize = 16;
/// Length of the key-check value stored in the root record, in bytes.
pub const CHECK_LEN: usize = 16;
/// Length of the CRC-32C trailer of a Plain envelope, in bytes.
pub const CRC_LEN: usize = 4;

const LABEL_ENC: &[u8] = b"cairndb/v1/enc";
const LABEL_MAC: &[u8] = b"cairndb/v1/mac";
const LABEL_KEY_CHECK: &[u8] = b"cairndb/v1/key-check";

/// SHA-256 block size: HMAC zero-pads shorter keys to it.
const HMAC_BLOCK: usize = 64;

type HmacSha256 = Hmac<Sha256>;
type Aes256Ctr = ctr::Ctr128BE<Aes256>;

/// The 256-bit master key of an encrypted database. Wiped from RAM when dropped.
pub struct MasterKey([u8; KEY_LEN]);

impl MasterKey {
    /// Wraps raw key bytes (e.g. from a secure element or a provisioning step).
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        MasterKey(*bytes)
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for MasterKey {}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Derives the master key from a passphrase with PBKDF2-HMAC-SHA256.
///
/// `iterations` is the only brute-force cost for a guessed passphrase; pick the largest the
/// device tolerates at open time. Errors with [`Error::InvalidArgument`] for zero iterations
/// or an empty passphrase (which would give a key anybody can derive).
pub fn derive_from_passphrase(
    pass: &[u8],
    salt: &[u8; SALT_LEN],
    iterations: u32,
) -> Result<MasterKey> {
    if iterations == 0 || pass.is_empty() {
        return Err(Error::InvalidArgument);
    }
    // Derive straight into the key's own storage so no extra copy is left to wipe.
    let mut key = MasterKey([0u8; KEY_LEN]);
    pbkdf2::pbkdf2::<HmacSha256>(pass, salt, iterations, &mut key.0)
        .map_err(|_| Error::InvalidArgument)?;
    Ok(key)
}

/// The two subkeys of an encrypted database. Wiped from RAM when dropped.
#[derive(Clone)]
pub struct Keys {
    enc: [u8; KEY_LEN],
    mac: [u8; KEY_LEN],
}

impl Keys {
    /// Derives the encryption and MAC subkeys from the master key (domain-separated HMACs).
    pub fn derive(master: &MasterKey) -> Box<Keys> {
        // Fill in place on the heap so no stack copy of the subkeys outlives this call.
        let mut keys = Box::new(Keys {
            enc: [0u8; KEY_LEN],
            mac: [0u8; KEY_LEN],
        });
        hmac_once(&master.0, &[LABEL_ENC], &mut keys.enc);
        hmac_once(&master.0, &[LABEL_MAC], &mut keys.mac);
        keys
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.enc.zeroize();
        self.mac.zeroize();
    }
}

impl ZeroizeOnDrop for Keys {}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// Seals and opens records: [`Sealer::Plain`] (CRC-32C only) or [`Sealer::Aead`] (SIV AEAD).
#[derive(Clone, Debug)]
pub enum Sealer {
    /// Unencrypted database: records carry a CRC-32C that also covers the AAD.
    Plain,
    /// Encrypted database: AES-256-CTR with a synthetic IV that is the HMAC-SHA256 tag.
    Aead(Box<Keys>),
}

impl Sealer {
    /// A sealer for an unencrypted database.
    pub fn plain() -> Self {
        Sealer::Plain
    }

    /// A sealer for an encrypted database; the master key can be dropped afterwards.
    pub fn with_key(master: &MasterKey) -> Self {
        Sealer::Aead(Keys::derive(master))
    }

    /// Whether records are encrypted.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, Sealer::Aead(_))
    }

    /// Bytes an envelope adds to its plaintext: [`TAG_LEN`] or [`CRC_LEN`].
    pub fn overhead(&self) -> usize {
        match self {
            Sealer::Plain => CRC_LEN,
            Sealer::Aead(_) => TAG_LEN,
        }
    }

    /// Seals `buf[..plain_len]` in place into the envelope `buf[..plain_len + overhead]` and
    /// returns the envelope length.
    ///
    /// `aad` is authenticated but not stored: the same bytes must be given to [`Sealer::open`].
    /// Errors with [`Error::InvalidArgument`] (leaving `buf` untouched) if `buf` is too short
    /// or `aad` is longer than `u32::MAX`.
    pub fn seal(&self, aad: &[u8], buf: &mut [u8], plain_len: usize) -> Result<usize> {
        let total = plain_len
            .checked_add(self.overhead())
            .ok_or(Error::InvalidArgument)?;
        let aad_len = aad_len_prefix(aad)?;
        let env = buf.get_mut(..total).ok_or(Error::InvalidArgument)?;
        let (body, tail) = env
            .split_at_mut_checked(plain_len)
            .ok_or(Error::InvalidArgument)?;
        match self {
            Sealer::Plain => {
                let tail: &mut [u8; CRC_LEN] =
                    tail.try_into().map_err(|_| Error::InvalidArgument)?;
                *tail = crc_of(&aad_len, aad, body).to_le_bytes();
            }
            Sealer::Aead(keys) => {
                let tail: &mut [u8; TAG_LEN] =
                    tail.try_into().map_err(|_| Error::InvalidArgument)?;
                let siv = synthetic_iv(&keys.mac, &aad_len, aad, body);
                ctr_apply(&keys.enc, &siv, body).map_err(|_| Error::InvalidArgument)?;
                *tail = siv;
            }
        }
        Ok(total)
    }

    /// Verifies and opens the envelope `buf` in place; returns the plaintext length `n`, the
    /// plaintext being `buf[..n]`.
    ///
    /// Any mismatch (wrong key, wrong aad, flipped bit, truncation) gives [`Error::Corrupt`]
    /// and leaves `buf` exactly as it was, so unauthenticated plaintext is never exposed.
    /// Errors with [`Error::InvalidArgument`] if `aad` is longer than `u32::MAX`.
    pub fn open(&self, aad: &[u8], buf: &mut [u8]) -> Result<usize> {
        let aad_len = aad_len_prefix(aad)?;
        let n = buf
            .len()
            .checked_sub(self.overhead())
            .ok_or(Error::Corrupt)?;
        let (body, tail) = buf.split_at_mut_checked(n).ok_or(Error::Corrupt)?;
        match self {
            Sealer::Plain => {
                let expect = crc_of(&aad_len, aad, body).to_le_bytes();
                if ct_eq(&expect, tail) {
                    Ok(n)
                } else {
                    Err(Error::Corrupt)
                }
            }
            Sealer::Aead(keys) => {
                let siv: [u8; TAG_LEN] = (&*tail).try_into().map_err(|_| Error::Corrupt)?;
                // SIV authenticates the plaintext, so decrypt first, then verify.
                ctr_apply(&keys.enc, &siv, body).map_err(|_| Error::Corrupt)?;
                let expect = synthetic_iv(&keys.mac, &aad_len, aad, body);
                if ct_eq(&expect, &siv) {
                    return Ok(n);
                }
                // Re-encrypting restores the envelope; wipe if that ever failed.
                if ctr_apply(&keys.enc, &siv, body).is_err() {
                    body.zeroize();
                }
                Err(Error::Corrupt)
            }
        }
    }

    /// The value stored in the root record to tell [`Error::WrongKey`] from [`Error::Corrupt`]:
    /// `HMAC-SHA256(mac_key, "cairndb/v1/key-check")[..16]`, or all zero for Plain.
    pub fn key_check(&self) -> [u8; CHECK_LEN] {
        let mut check = [0u8; CHECK_LEN];
        if let Sealer::Aead(keys) = self {
            let mut full = [0u8; 32];
            hmac_once(&keys.mac, &[LABEL_KEY_CHECK], &mut full);
            for (d, s) in check.iter_mut().zip(full.iter()) {
                *d = *s;
            }
        }
        check
    }
}

/// Compares two byte strings in time independent of their contents (lengths are public:
/// different lengths return `false` at once).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the optimiser from turning the fold into an early-exit comparison.
    core::hint::black_box(diff) == 0
}

/// The length prefix that makes the (aad, plaintext) split unambiguous.
fn aad_len_prefix(aad: &[u8]) -> Result<[u8; 4]> {
    u32::try_from(aad.len())
        .map(u32::to_le_bytes)
        .map_err(|_| Error::InvalidArgument)
}

/// HMAC-SHA256 keyed with a 32-byte key, constructed without a fallible call.
fn keyed_hmac(key: &[u8; KEY_LEN]) -> HmacSha256 {
    // HMAC zero-pads keys shorter than the block, so the padded key gives the same MAC and
    // lets us use the infallible `KeyInit::new`.
    let mut block = [0u8; HMAC_BLOCK];
    for (d, s) in block.iter_mut().zip(key.iter()) {
        *d = *s;
    }
    let mac = <HmacSha256 as KeyInit>::new((&block).into());
    block.zeroize();
    mac
}

/// `out = HMAC-SHA256(key, parts[0] || parts[1] || ...)`.
fn hmac_once(key: &[u8; KEY_LEN], parts: &[&[u8]], out: &mut [u8; 32]) {
    let mut mac = keyed_hmac(key);
    for p in parts {
        Mac::update(&mut mac, p);
    }
    FixedOutput::finalize_into(mac, out.into());
}

fn synthetic_iv(
    mac_key: &[u8; KEY_LEN],
    aad_len: &[u8; 4],
    aad: &[u8],
    pt: &[u8],
) -> [u8; TAG_LEN] {
    let mut full = [0u8; 32];
    hmac_once(mac_key, &[aad_len, aad, pt], &mut full);
    let mut siv = [0u8; TAG_LEN];
    for (d, s) in siv.iter_mut().zip(full.iter()) {
        *d = *s;
    }
    siv
}

/// AES-256-CTR with the whole 16-byte IV as a big-endian counter (wraps mod 2^128).
fn ctr_apply(enc_key: &[u8; KEY_LEN], iv: &[u8; TAG_LEN], data: &mut [u8]) -> Result<()> {
    let mut cipher = Aes256Ctr::new(enc_key.into(), iv.into());
    cipher.try_apply_keystream(data).map_err(|_| Error::Corrupt)
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), 4 bits at a time with a 64-byte
/// table: small code for microcontrollers, and the checksum is not a security mechanism.
struct Crc32c(u32);

const CRC32C_POLY: u32 = 0x82F6_3B78;
const CRC32C_NIBBLE: [u32; 16] = {
    let mut table = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 4 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ CRC32C_POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

impl Crc32c {
    fn new() -> Self {
        Crc32c(!0)
    }

    fn update(&mut self, data: &[u8]) {
        let mut crc = self.0;
        for &b in data {
            crc ^= u32::from(b);
            // `& 0xF` keeps the index in range, so the compiler drops the bounds check.
            crc = (crc >> 4) ^ CRC32C_NIBBLE[(crc & 0xF) as usize];
            crc = (crc >> 4) ^ CRC32C_NIBBLE[(crc & 0xF) as usize];
        }
        self.0 = crc;
    }

    fn finish(&self) -> u32 {
        !self.0
    }
}

fn crc_of(aad_len: &[u8; 4], aad: &[u8], pt: &[u8]) -> u32 {
    let mut crc = Crc32c::new();
    crc.update(aad_len);
    crc.update(aad);
    crc.update(pt);
    crc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    fn test_sealer() -> Sealer {
        let mut k = [0u8; KEY_LEN];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        Sealer::with_key(&MasterKey::from_bytes(&k))
    }

    fn sealers() -> [Sealer; 2] {
        [Sealer::plain(), test_sealer()]
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn seal_vec(s: &Sealer, aad: &[u8], pt: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; pt.len() + s.overhead()];
        buf[..pt.len()].copy_from_slice(pt);
        let n = s.seal(aad, &mut buf, pt.len()).unwrap();
        assert_eq!(n, buf.len());
        buf
    }

    #[test]
    fn crc32c_check_value() {
        let mut c = Crc32c::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xE306_9283);
        // Split updates give the same result.
        let mut c = Crc32c::new();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.finish(), 0xE306_9283);
    }

    // From tools/kat/envelope_kat.py: keystream under the enc subkey of the 00..1f master key,
    // starting at counter block ff..fe, so the 128-bit counter wraps to zero in block 3.
    const ENC_KEY: &str = "21249647cc20398e3cb18fd7adf29fea3c12a6e2fb1a9c0cbab41b5b4979b4b5";
    const MAC_KEY: &str = "612f05619e94326ece3536d712f6eee9bdce7ac4cc52dee8e33b61bda21cd902";
    const CTR_WRAP_IV: &str = "fffffffffffffffffffffffffffffffe";
    const CTR_WRAP_KEYSTREAM: &str = "cdb7d1c6db2569a8e2738c10103acf228afa827541595ac438641873602d88a552e56c43c13445d40fc45ccb90402788";

    #[test]
    fn subkeys_and_ctr_wrap_match_kat() {
        let key: [u8; 32] = unhex(ENC_KEY).try_into().unwrap();
        let iv: [u8; 16] = unhex(CTR_WRAP_IV).try_into().unwrap();
        let mut data = [0u8; 48];
        ctr_apply(&key, &iv, &mut data).unwrap();
        assert_eq!(data.to_vec(), unhex(CTR_WRAP_KEYSTREAM));
        match test_sealer() {
            Sealer::Aead(k) => {
                assert_eq!(k.enc.to_vec(), unhex(ENC_KEY));
                assert_eq!(k.mac.to_vec(), unhex(MAC_KEY));
            }
            Sealer::Plain => unreachable!(),
        }
    }

    #[test]
    fn ct_eq_basics() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(&[0x80], &[0x00]));
    }

    #[test]
    fn overhead_and_flags() {
        assert_eq!(Sealer::plain().overhead(), 4);
        assert_eq!(test_sealer().overhead(), TAG_LEN);
        assert!(!Sealer::plain().is_encrypted());
        assert!(test_sealer().is_encrypted());
        assert_eq!(Sealer::plain().key_check(), [0u8; CHECK_LEN]);
        assert_ne!(test_sealer().key_check(), [0u8; CHECK_LEN]);
    }

    #[test]
    fn round_trip_all_lengths() {
        for s in sealers() {
            for len in 0..300 {
                let pt = pattern(len, 7);
                let aad = pattern(len % 23, 99);
                let mut env = seal_vec(&s, &aad, &pt);
                if s.is_encrypted() && len >= 4 {
                    assert_ne!(&env[..len], &pt[..], "ciphertext equals plaintext");
                }
                let n = s.open(&aad, &mut env).unwrap();
                assert_eq!(&env[..n], &pt[..]);
            }
        }
    }

    #[test]
    fn seal_into_larger_buffer() {
        for s in sealers() {
            let pt = pattern(40, 1);
            let mut buf = vec![0xEEu8; 100];
            buf[..40].copy_from_slice(&pt);
            let n = s.seal(b"ctx", &mut buf, 40).unwrap();
            assert_eq!(n, 40 + s.overhead());
            assert!(
                buf[n..].iter().all(|&b| b == 0xEE),
                "wrote past the envelope"
            );
            assert_eq!(buf[..n], seal_vec(&s, b"ctx", &pt)[..]);
            let m = s.open(b"ctx", &mut buf[..n]).unwrap();
            assert_eq!(&buf[..m], &pt[..]);
        }
    }

    #[test]
    fn seal_rejects_short_buffer() {
        for s in sealers() {
            let mut buf = pattern(20, 3);
            let orig = buf.clone();
            let max = 20 - s.overhead();
            assert_eq!(s.seal(b"", &mut buf, max + 1), Err(Error::InvalidArgument));
            assert_eq!(s.seal(b"", &mut buf, 21), Err(Error::InvalidArgument));
            assert_eq!(
                s.seal(b"", &mut buf, usize::MAX),
                Err(Error::InvalidArgument)
            );
            assert_eq!(buf, orig, "failed seal modified the buffer");
            assert_eq!(s.seal(b"", &mut buf, max), Ok(20));
            let mut empty: [u8; 0] = [];
            assert_eq!(s.seal(b"", &mut empty, 0), Err(Error::InvalidArgument));
        }
    }

    #[test]
    fn wrong_key_is_corrupt() {
        let other = Sealer::with_key(&MasterKey::from_bytes(&[0x55; KEY_LEN]));
        let s = test_sealer();
        for len in [0, 1, 16, 77] {
            let pt = pattern(len, 5);
            let mut env = seal_vec(&s, b"aad", &pt);
            let orig = env.clone();
            assert_eq!(other.open(b"aad", &mut env), Err(Error::Corrupt));
            assert_eq!(env, orig, "failed open must leave the envelope as it was");
            assert_ne!(other.key_check(), s.key_check());
        }
    }

    #[test]
    fn mode_confusion_is_corrupt() {
        let aead = test_sealer();
        let plain = Sealer::plain();
        for len in [0, 5, 64] {
            let pt = pattern(len, 9);
            let mut env = seal_vec(&plain, b"x", &pt);
            assert_eq!(aead.open(b"x", &mut env), Err(Error::Corrupt));
            let mut env = seal_vec(&aead, b"x", &pt);
            assert_eq!(plain.open(b"x", &mut env), Err(Error::Corrupt));
        }
    }

    #[test]
    fn every_bit_flip_is_detected() {
        for s in sealers() {
            for len in [0usize, 1, 15, 16, 17, 40] {
                let pt = pattern(len, 11);
                let aad = pattern(9, 200);
                let env = seal_vec(&s, &aad, &pt);
                for bit in 0..env.len() * 8 {
                    let mut bad = env.clone();
                    bad[bit / 8] ^= 1 << (bit % 8);
                    let flipped = bad.clone();
                    assert_eq!(s.open(&aad, &mut bad), Err(Error::Corrupt), "bit {bit}");
                    assert_eq!(bad, flipped, "failed open changed the buffer");
                }
                for bit in 0..aad.len() * 8 {
                    let mut bad_aad = aad.clone();
                    bad_aad[bit / 8] ^= 1 << (bit % 8);
                    let mut e = env.clone();
                    assert_eq!(
                        s.open(&bad_aad, &mut e),
                        Err(Error::Corrupt),
                        "aad bit {bit}"
                    );
                }
                // Moving bytes between aad and plaintext is caught by the length prefix.
                let mut e = env.clone();
                assert_eq!(s.open(&aad[..8], &mut e), Err(Error::Corrupt));
                let mut longer = aad.clone();
                longer.push(0);
                let mut e = env.clone();
                assert_eq!(s.open(&longer, &mut e), Err(Error::Corrupt));
            }
        }
    }

    #[test]
    fn truncated_or_extended_is_corrupt() {
        for s in sealers() {
            for len in [0usize, 1, 16, 33] {
                let pt = pattern(len, 13);
                let env = seal_vec(&s, b"ctx", &pt);
                for cut in 0..env.len() {
                    let mut t = env[..cut].to_vec();
                    assert_eq!(s.open(b"ctx", &mut t), Err(Error::Corrupt), "cut {cut}");
                    let mut t = env[env.len() - cut..].to_vec();
                    assert_eq!(
                        s.open(b"ctx", &mut t),
                        Err(Error::Corrupt),
                        "head cut {cut}"
                    );
                }
                let mut ext = env.clone();
                ext.push(0);
                assert_eq!(s.open(b"ctx", &mut ext), Err(Error::Corrupt));
                let mut ext = vec![0u8];
                ext.extend_from_slice(&env);
                assert_eq!(s.open(b"ctx", &mut ext), Err(Error::Corrupt));
            }
        }
    }

    #[test]
    fn deterministic_and_aad_bound() {
        for s in sealers() {
            let pt = pattern(50, 17);
            let a = seal_vec(&s, b"file 1 @ 0", &pt);
            let b = seal_vec(&s, b"file 1 @ 0", &pt);
            assert_eq!(a, b, "sealing is deterministic");
            let c = seal_vec(&s, b"file 1 @ 64", &pt);
            assert_ne!(a[a.len() - s.overhead()..], c[c.len() - s.overhead()..]);
            if s.is_encrypted() {
                assert_ne!(a[..50], c[..50], "different aad must change the ciphertext");
            }
            // A record moved to another context does not open there.
            let mut moved = a.clone();
            assert_eq!(s.open(b"file 1 @ 64", &mut moved), Err(Error::Corrupt));
        }
    }

    #[test]
    fn passphrase_arguments() {
        let salt = [7u8; SALT_LEN];
        assert!(matches!(
            derive_from_passphrase(b"pw", &salt, 0),
            Err(Error::InvalidArgument)
        ));
        assert!(matches!(
            derive_from_passphrase(b"", &salt, 1),
            Err(Error::InvalidArgument)
        ));
        let a = Sealer::with_key(&derive_from_passphrase(b"pw", &salt, 2).unwrap());
        let b = Sealer::with_key(&derive_from_passphrase(b"pw", &salt, 3).unwrap());
        assert_ne!(a.key_check(), b.key_check());
    }

    #[test]
    fn debug_does_not_leak_keys() {
        assert_eq!(alloc::format!("{:?}", test_sealer()), "Aead(Keys(..))");
        assert_eq!(
            alloc::format!("{:?}", MasterKey::from_bytes(&[1; 32])),
            "MasterKey(..)"
        );
    }
}
