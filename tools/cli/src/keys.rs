//! Keys from the command line: a raw 256-bit key (a file or hex) or a passphrase.

use crate::error::{io_err, CliError, Res};
use cairndb::db::{BackupKeySpec, Key};
use std::path::{Path, PathBuf};

/// PBKDF2 iterations for a new passphrase (the C API's default, so firmware and host agree).
pub const DEFAULT_KDF_ITERATIONS: u32 = 10_000;

/// Key material as given: none, 32 raw bytes, or passphrase bytes.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    None,
    Raw([u8; 32]),
    Pass(Vec<u8>),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key bytes.
        f.write_str(match self {
            KeyMaterial::None => "None",
            KeyMaterial::Raw(_) => "Raw(..)",
            KeyMaterial::Pass(_) => "Pass(..)",
        })
    }
}

impl KeyMaterial {
    /// The library's key; `salt` is used only when a database is created or rekeyed.
    pub fn key(&self, salt: [u8; 16], iterations: u32) -> Key<'_> {
        match self {
            KeyMaterial::None => Key::None,
            KeyMaterial::Raw(k) => Key::Raw(k),
            KeyMaterial::Pass(p) => Key::Passphrase {
                pass: p,
                salt,
                iterations,
            },
        }
    }

    /// The key as a backup key (`None` means the database's own key).
    pub fn backup_key(&self, salt: [u8; 16], iterations: u32) -> BackupKeySpec<'_> {
        match self {
            KeyMaterial::None => BackupKeySpec::Database,
            KeyMaterial::Raw(k) => BackupKeySpec::Raw(k),
            KeyMaterial::Pass(p) => BackupKeySpec::Passphrase {
                pass: p,
                salt,
                iterations,
            },
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            KeyMaterial::None => "no key",
            KeyMaterial::Raw(_) => "a raw key",
            KeyMaterial::Pass(_) => "a passphrase",
        }
    }
}

/// Parses 64 hex digits (spaces, newlines and a `0x` prefix allowed) into a key.
pub fn parse_hex_key(text: &str) -> Res<[u8; 32]> {
    let clean: String = text
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = parse_hex(&clean).map_err(|e| CliError::key(format!("key: {e}")))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        CliError::key(format!(
            "key: {} bytes given, a key is 32 bytes (64 hex digits)",
            b.len()
        ))
    })
}

/// Hex text to bytes (an even number of hex digits).
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 {
        return Err("odd number of hex digits".into());
    }
    let digit = |c: u8| -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("`{}` is not a hex digit", c as char)),
        }
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| match p {
            [h, l] => Ok(digit(*h)? << 4 | digit(*l)?),
            _ => Err("odd number of hex digits".into()),
        })
        .collect()
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A key file: exactly 32 raw bytes, or 64 hex digits as text.
pub fn read_key_file(path: &Path) -> Res<[u8; 32]> {
    let data = std::fs::read(path).map_err(|e| io_err(path, e).context("key file"))?;
    if data.len() == 32 {
        let mut k = [0u8; 32];
        k.copy_from_slice(&data);
        return Ok(k);
    }
    match std::str::from_utf8(&data) {
        Ok(text) => parse_hex_key(text).map_err(|e| e.context(path.display())),
        Err(_) => Err(CliError::key(format!(
            "{}: a key file holds 32 raw bytes or 64 hex digits ({} bytes found)",
            path.display(),
            data.len()
        ))),
    }
}

/// A passphrase file: its first line (the newline is not part of the passphrase).
pub fn read_passphrase_file(path: &Path) -> Res<Vec<u8>> {
    let data = std::fs::read(path).map_err(|e| io_err(path, e).context("passphrase file"))?;
    let line = data.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(CliError::key(format!(
            "{}: the passphrase is empty",
            path.display()
        )));
    }
    Ok(line.to_vec())
}

/// Resolves one group of key options (at most one of them is given: clap enforces it).
pub fn resolve(
    file: Option<&PathBuf>,
    hex: Option<&str>,
    pass: Option<&str>,
    pass_file: Option<&PathBuf>,
) -> Res<KeyMaterial> {
    if let Some(p) = file {
        return Ok(KeyMaterial::Raw(read_key_file(p)?));
    }
    if let Some(h) = hex {
        return Ok(KeyMaterial::Raw(parse_hex_key(h)?));
    }
    if let Some(p) = pass {
        if p.is_empty() {
            return Err(CliError::key("the passphrase is empty"));
        }
        return Ok(KeyMaterial::Pass(p.as_bytes().to_vec()));
    }
    if let Some(p) = pass_file {
        return Ok(KeyMaterial::Pass(read_passphrase_file(p)?));
    }
    Ok(KeyMaterial::None)
}

/// 16 random bytes for a salt.
pub fn random_salt() -> Res<[u8; 16]> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| CliError::failed(format!("no random source for the salt: {e}")))?;
    Ok(salt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys() {
        let k = parse_hex_key(&"ab".repeat(32)).unwrap();
        assert_eq!(k, [0xab; 32]);
        let spaced = format!("0x{} \n {}\n", "01".repeat(16), "02".repeat(16));
        let k = parse_hex_key(&spaced).unwrap();
        assert_eq!(k[0], 1);
        assert_eq!(k[31], 2);
        assert!(parse_hex_key("abc").is_err());
        assert!(parse_hex_key(&"ab".repeat(31)).is_err());
        assert!(parse_hex_key(&"zz".repeat(32)).is_err());
        assert_eq!(to_hex(&[0, 15, 255]), "000fff");
        assert_eq!(parse_hex("000fff").unwrap(), vec![0, 15, 255]);
    }
}
