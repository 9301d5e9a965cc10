//! `FileFlash`: a host image file as a block device (tools, host tests, images to flash).
//!
//! Bytes map one to one: block `b` starts at file offset `b * block_size`. Programs AND into
//! the existing bytes as NOR does, erases write 0xFF, `sync` is `File::sync_data`.

use super::check::{geometry_ok, locate};
use super::{BlockDevice, FlashError, Geometry};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::vec;

/// A flash image in a file; see the module docs.
#[derive(Debug)]
pub struct FileFlash {
    file: File,
    geometry: Geometry,
}

fn invalid_geometry() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "invalid flash geometry")
}

fn io_err(_: io::Error) -> FlashError {
    FlashError::Io
}

impl FileFlash {
    /// Creates (or truncates) `path` as an erased image of `geometry`: `capacity` bytes of 0xFF.
    pub fn create(path: impl AsRef<Path>, geometry: Geometry) -> io::Result<Self> {
        if !geometry_ok(&geometry) {
            return Err(invalid_geometry());
        }
        let block = usize::try_from(geometry.block_size).map_err(|_| invalid_geometry())?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let erased = vec![0xFF; block];
        for _ in 0..geometry.block_count {
            file.write_all(&erased)?;
        }
        file.sync_data()?;
        Ok(FileFlash { file, geometry })
    }

    /// Opens an existing image of `geometry`; fails with `InvalidData` if the file size is not
    /// exactly the geometry's capacity.
    pub fn open(path: impl AsRef<Path>, geometry: Geometry) -> io::Result<Self> {
        if !geometry_ok(&geometry) {
            return Err(invalid_geometry());
        }
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        if file.metadata()?.len() != geometry.capacity() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "image size does not match the flash geometry",
            ));
        }
        Ok(FileFlash { file, geometry })
    }

    /// Gives the file back.
    pub fn into_file(self) -> File {
        self.file
    }

    fn seek(&mut self, block: u32, off: u32, len: usize, align: u32) -> Result<(), FlashError> {
        let pos = locate(&self.geometry, block, off, len, align).ok_or(FlashError::Io)?;
        self.file.seek(SeekFrom::Start(pos)).map_err(io_err)?;
        Ok(())
    }
}

impl BlockDevice for FileFlash {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, block: u32, off: u32, buf: &mut [u8]) -> Result<(), FlashError> {
        self.seek(block, off, buf.len(), self.geometry.read_size)?;
        self.file.read_exact(buf).map_err(io_err)
    }

    fn prog(&mut self, block: u32, off: u32, data: &[u8]) -> Result<(), FlashError> {
        // Read-modify-write so programming only clears bits, like the real medium.
        self.seek(block, off, data.len(), self.geometry.prog_size)?;
        let mut cur = vec![0; data.len()];
        self.file.read_exact(&mut cur).map_err(io_err)?;
        for (c, d) in cur.iter_mut().zip(data) {
            *c &= *d;
        }
        self.seek(block, off, data.len(), self.geometry.prog_size)?;
        self.file.write_all(&cur).map_err(io_err)
    }

    fn erase(&mut self, block: u32) -> Result<(), FlashError> {
        let len = usize::try_from(self.geometry.block_size).map_err(|_| FlashError::Io)?;
        self.seek(block, 0, len, 1)?;
        self.file.write_all(&vec![0xFF; len]).map_err(io_err)
    }

    fn sync(&mut self) -> Result<(), FlashError> {
        self.file.sync_data().map_err(io_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    const G: Geometry = Geometry {
        read_size: 4,
        prog_size: 8,
        block_size: 128,
        block_count: 4,
    };

    /// A unique temp path, removed on drop even if the test fails.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(tag: &str) -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let name = std::format!("cairndb-fileflash-{}-{tag}-{n}.img", std::process::id());
            TempPath(std::env::temp_dir().join(name))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn round_trip_through_a_file() {
        let tmp = TempPath::new("rt");
        {
            let mut d = FileFlash::create(&tmp.0, G).unwrap();
            assert_eq!(d.geometry(), G);
            assert_eq!(std::fs::read(&tmp.0).unwrap(), vec![0xFF; 512]);
            d.prog(2, 16, &[0x0F; 16]).unwrap();
            // AND semantics: a second program can only clear more bits.
            d.prog(2, 16, &[0xF3; 8]).unwrap();
            let mut buf = [0u8; 24];
            d.read(2, 12, &mut buf).unwrap();
            assert_eq!(&buf[..4], &[0xFF; 4]);
            assert_eq!(&buf[4..12], &[0x03; 8]);
            assert_eq!(&buf[12..20], &[0x0F; 8]);
            d.prog(3, 120, &[0; 8]).unwrap();
            d.erase(1).unwrap();
            d.sync().unwrap();
        }
        let img = std::fs::read(&tmp.0).unwrap();
        assert_eq!(img.len(), 512);
        assert_eq!(&img[256 + 16..256 + 24], &[0x03; 8]);
        assert_eq!(&img[504..], &[0; 8]);
        // Reopen: the data persisted, and erase works on the reopened image.
        let mut d = FileFlash::open(&tmp.0, G).unwrap();
        let mut buf = [0u8; 8];
        d.read(3, 120, &mut buf).unwrap();
        assert_eq!(buf, [0; 8]);
        d.erase(3).unwrap();
        d.read(3, 120, &mut buf).unwrap();
        assert_eq!(buf, [0xFF; 8]);
        drop(d.into_file());
    }

    #[test]
    fn bad_arguments() {
        let tmp = TempPath::new("bad");
        assert_eq!(
            FileFlash::create(&tmp.0, Geometry { prog_size: 0, ..G })
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidInput
        );
        assert!(FileFlash::open(&tmp.0, G).is_err(), "missing file");
        let mut d = FileFlash::create(&tmp.0, G).unwrap();
        assert_eq!(
            FileFlash::open(
                &tmp.0,
                Geometry {
                    block_count: 5,
                    ..G
                }
            )
            .unwrap_err()
            .kind(),
            io::ErrorKind::InvalidData
        );
        assert_eq!(
            FileFlash::open(
                &tmp.0,
                Geometry {
                    block_size: 64,
                    ..G
                }
            )
            .unwrap_err()
            .kind(),
            io::ErrorKind::InvalidData
        );
        let mut buf = [0u8; 8];
        assert_eq!(d.read(4, 0, &mut buf), Err(FlashError::Io));
        assert_eq!(d.read(0, 2, &mut buf[..4]), Err(FlashError::Io));
        assert_eq!(d.read(0, 124, &mut buf), Err(FlashError::Io));
        assert_eq!(d.prog(0, 4, &[0; 8]), Err(FlashError::Io));
        assert_eq!(d.prog(0, 0, &[0; 4]), Err(FlashError::Io));
        assert_eq!(d.prog(u32::MAX, u32::MAX, &[0; 8]), Err(FlashError::Io));
        assert_eq!(d.erase(4), Err(FlashError::Io));
        assert_eq!(
            std::fs::read(&tmp.0).unwrap(),
            vec![0xFF; 512],
            "refused calls change nothing"
        );
    }
}
