//! One upload into `<datadir>/<id>.partial`, made durable and renamed into place by
//! `finish`.
//!
//! By default writes go through the page cache, and writeback is started every
//! [`WRITEBACK_WINDOW`] bytes, so the disk works while the upload streams and `finish`'s
//! fsync has only the tail left instead of the whole image. With `direct_io = true` (and a
//! filesystem that allows it) blocks go from an aligned buffer straight to the disk with
//! `O_DIRECT`, skipping the page-cache copy; docs/benchmarks.md has the measurements that
//! made page-cache writes the default.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::{
        fd::AsRawFd,
        unix::{ffi::OsStrExt, fs::OpenOptionsExt},
    },
    path::{Path, PathBuf},
};

use tank_sdk::{Error, Result, Writer};

use crate::backend::sync_dir;

/// Alignment `O_DIRECT` needs for buffer addresses, lengths and file offsets.
const ALIGN: usize = 4096;
/// The size of the blocks written with `O_DIRECT`.
const BLOCK: usize = 4 << 20;
/// Page-cache mode: how much written data may wait before its writeback is started.
pub const WRITEBACK_WINDOW: u64 = 16 << 20;

/// A block-sized, `ALIGN`-aligned buffer carved out of a slightly larger `Vec`, so that no
/// unsafe allocation is needed.
struct Aligned {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new() -> Self {
        let storage = vec![0u8; BLOCK + ALIGN];
        let start = storage.as_ptr().align_offset(ALIGN);
        Aligned { storage, start, len: 0 }
    }

    fn block(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + BLOCK]
    }
}

enum Mode {
    Direct(Aligned),
    Buffered { flushed: u64 },
}

/// An open upload.
pub struct FsWriter {
    file: File,
    partial: PathBuf,
    target: PathBuf,
    datadir: PathBuf,
    mode: Mode,
    written: u64,
}

impl FsWriter {
    /// Creates `partial`, or replaces one an earlier attempt left: the host runs at most one
    /// upload per image at a time (moving an image to `saving` is a compare-and-swap in the
    /// registry), so an existing `.partial` belongs to an upload that is over.
    pub fn create(partial: PathBuf, target: PathBuf, datadir: PathBuf, direct_io: bool) -> Result<Self> {
        let open =
            |flags: i32| OpenOptions::new().write(true).create(true).truncate(true).custom_flags(flags).open(&partial);
        let creating = |e| Error::io(format!("creating {}", partial.display()), e);
        let (file, mode) = match direct_io.then(|| open(libc::O_DIRECT)) {
            Some(Ok(file)) => (file, Mode::Direct(Aligned::new())),
            Some(Err(e)) if e.raw_os_error() == Some(libc::EINVAL) => {
                tracing::debug!("the datadir's filesystem refuses O_DIRECT; writing through the page cache");
                (open(0).map_err(creating)?, Mode::Buffered { flushed: 0 })
            }
            Some(Err(e)) => return Err(creating(e)),
            None => (open(0).map_err(creating)?, Mode::Buffered { flushed: 0 }),
        };
        Ok(FsWriter { file, partial, target, datadir, mode, written: 0 })
    }

    fn io(&self, e: io::Error) -> Error {
        Error::io(format!("writing {}", self.partial.display()), e)
    }

    /// Writes the direct buffer's content, padded to `ALIGN`; returns the unpadded length.
    fn flush_direct(file: &mut File, buf: &mut Aligned) -> io::Result<usize> {
        let len = buf.len;
        let padded = len.div_ceil(ALIGN) * ALIGN;
        let block = buf.block();
        block[len..padded].fill(0);
        file.write_all(&block[..padded])?;
        buf.len = 0;
        Ok(len)
    }
}

impl Writer for FsWriter {
    fn write(&mut self, mut data: &[u8]) -> Result<()> {
        let total = data.len() as u64;
        match &mut self.mode {
            Mode::Direct(buf) => {
                while !data.is_empty() {
                    let n = (BLOCK - buf.len).min(data.len());
                    let at = buf.len;
                    buf.block()[at..at + n].copy_from_slice(&data[..n]);
                    buf.len += n;
                    data = &data[n..];
                    if buf.len == BLOCK {
                        let r = Self::flush_direct(&mut self.file, buf);
                        r.map_err(|e| Error::io(format!("writing {}", self.partial.display()), e))?;
                    }
                }
            }
            Mode::Buffered { flushed } => {
                self.file.write_all(data).map_err(|e| Error::io(format!("writing {}", self.partial.display()), e))?;
                let end = self.written + data.len() as u64;
                if end - *flushed >= WRITEBACK_WINDOW {
                    // SAFETY: a plain syscall on a descriptor this writer owns; it reads no
                    // memory. A failure only loses the head start: `finish` fsyncs anyway.
                    unsafe {
                        libc::sync_file_range(
                            self.file.as_raw_fd(),
                            *flushed as i64,
                            (end - *flushed) as i64,
                            libc::SYNC_FILE_RANGE_WRITE,
                        );
                    }
                    *flushed = end;
                }
                self.written = end;
                return Ok(());
            }
        }
        self.written += total;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<String> {
        let result = (|| {
            if let Mode::Direct(buf) = &mut self.mode {
                if buf.len > 0 {
                    // The last block is written padded to the alignment, then cut back.
                    Self::flush_direct(&mut self.file, buf).map_err(|e| self.io(e))?;
                    self.file.set_len(self.written).map_err(|e| self.io(e))?;
                }
            }
            self.file.sync_all().map_err(|e| Error::io(format!("syncing {}", self.partial.display()), e))?;
            rename_no_replace(&self.partial, &self.target).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    Error::duplicate(format!("image data {} appeared during the upload", self.target.display()))
                } else {
                    Error::io(format!("renaming {} into place", self.partial.display()), e)
                }
            })?;
            sync_dir(&self.datadir)
        })();
        match result {
            Ok(()) => Ok(format!("file://{}", self.target.display())),
            Err(e) => {
                let _ = fs::remove_file(&self.partial);
                Err(e)
            }
        }
    }

    fn abort(self: Box<Self>) -> Result<()> {
        drop(self.file);
        match fs::remove_file(&self.partial) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing {}", self.partial.display()), e)),
        }
    }
}

/// Renames `from` to `to` unless `to` exists, atomically where the filesystem can
/// (`renameat2` with `RENAME_NOREPLACE`), so that two uploads of one image can never
/// silently replace finished data. Filesystems without that flag get a check, then a plain
/// rename.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    let c_path = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (from_c, to_c) = (c_path(from)?, c_path(to)?);
    // SAFETY: both pointers are NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::renameat2(libc::AT_FDCWD, from_c.as_ptr(), libc::AT_FDCWD, to_c.as_ptr(), libc::RENAME_NOREPLACE)
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(from, to)
        }
        _ => Err(e),
    }
}
