//! One upload into `<datadir>/<id>.partial`, made durable and renamed into place by
//! `finish`.
//!
//! Two ways to write, chosen by `direct_io`:
//! - Direct (the default): blocks go from a small pool of aligned buffers straight to the
//!   disk with `O_DIRECT`, [`IN_FLIGHT`] at a time from the writer's own I/O threads. The
//!   page cache is not touched, so a large upload neither spends CPU filling it nor pushes
//!   other data out of it, and the disk works while the next blocks arrive.
//! - Buffered (`direct_io = false`, and wherever the filesystem refuses `O_DIRECT`): writes
//!   go through the page cache, and writeback is started every [`WRITEBACK_WINDOW`] bytes,
//!   so `finish`'s fsync has only the tail left instead of the whole image.
//!
//! docs/benchmarks.md has the measurements behind the choice.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::{
        fd::AsRawFd,
        unix::{
            ffi::OsStrExt,
            fs::{FileExt, OpenOptionsExt},
        },
    },
    path::{Path, PathBuf},
    sync::{
        mpsc::{self, Receiver, SyncSender},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    thread::JoinHandle,
};

use tank_sdk::{Error, Result, Writer};

use crate::backend::sync_dir;

/// Alignment `O_DIRECT` needs for buffer addresses, lengths and file offsets.
const ALIGN: usize = 4096;
/// The size of the blocks written with `O_DIRECT`.
const BLOCK: usize = 1 << 20;
/// How many direct writes may be on their way to the disk at once, while one more buffer
/// fills. The virtual disk of the benchmark machine needs about four to reach full speed.
pub const IN_FLIGHT: usize = 4;
/// Buffered mode: how much written data may wait before its writeback is started.
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

    /// The content, zero-padded up to the alignment.
    fn padded(&mut self) -> &[u8] {
        let len = self.len;
        let padded = len.div_ceil(ALIGN) * ALIGN;
        let block = self.block();
        block[len..padded].fill(0);
        &block[..padded]
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Direct mode: the buffer being filled, the pool of free ones, and the I/O threads that
/// write full buffers at their offsets and hand them back to the pool.
struct Direct {
    filling: Aligned,
    /// Where `filling` belongs in the file.
    offset: u64,
    pool: Receiver<Aligned>,
    jobs: Option<SyncSender<(Aligned, u64)>>,
    threads: Vec<JoinHandle<()>>,
    /// The first error an I/O thread met; blocks after it are dropped unwritten.
    failed: Arc<Mutex<Option<io::Error>>>,
}

impl Direct {
    fn start(file: &File) -> io::Result<Self> {
        let (to_pool, pool) = mpsc::sync_channel(IN_FLIGHT + 1);
        let (jobs, queue) = mpsc::sync_channel(IN_FLIGHT + 1);
        let queue = Arc::new(Mutex::new(queue));
        let failed = Arc::new(Mutex::new(None));
        for _ in 0..IN_FLIGHT {
            to_pool.send(Aligned::new()).expect("the pool has room for every buffer");
        }
        let mut direct = Direct { filling: Aligned::new(), offset: 0, pool, jobs: Some(jobs), threads: vec![], failed };
        for n in 0..IN_FLIGHT {
            let io = IoThread {
                file: file.try_clone()?,
                queue: queue.clone(),
                to_pool: to_pool.clone(),
                failed: direct.failed.clone(),
            };
            direct.threads.push(std::thread::Builder::new().name(format!("fs-write-{n}")).spawn(move || io.run())?);
        }
        Ok(direct)
    }

    /// The I/O threads' first error, if any, as a new error of the same kind.
    fn check(&self) -> io::Result<()> {
        match lock(&self.failed).as_ref() {
            None => Ok(()),
            Some(e) => Err(e
                .raw_os_error()
                .map_or_else(|| io::Error::new(e.kind(), e.to_string()), io::Error::from_raw_os_error)),
        }
    }

    /// Queues the filled buffer for writing and takes a free one, waiting while all are
    /// on their way to the disk.
    fn submit(&mut self) -> io::Result<()> {
        self.check()?;
        let stopped = || io::Error::other("the fs store's I/O threads stopped");
        let next = self.pool.recv().map_err(|_| stopped())?;
        let full = std::mem::replace(&mut self.filling, next);
        let len = full.len as u64;
        self.jobs.as_ref().ok_or_else(stopped)?.send((full, self.offset)).map_err(|_| stopped())?;
        self.offset += len;
        Ok(())
    }

    fn push(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let at = self.filling.len;
            let n = (BLOCK - at).min(data.len());
            self.filling.block()[at..at + n].copy_from_slice(&data[..n]);
            self.filling.len += n;
            data = &data[n..];
            if self.filling.len == BLOCK {
                self.submit()?;
            }
        }
        Ok(())
    }

    /// Writes what is left, waits for every write to reach the disk, and reports the first
    /// error.
    fn close(&mut self) -> io::Result<()> {
        if self.filling.len > 0 {
            self.submit()?;
        }
        self.stop();
        self.check()
    }

    fn stop(&mut self) {
        drop(self.jobs.take());
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                lock(&self.failed).get_or_insert_with(|| io::Error::other("an fs store I/O thread panicked"));
            }
        }
    }
}

impl Drop for Direct {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One of direct mode's I/O threads.
struct IoThread {
    file: File,
    queue: Arc<Mutex<Receiver<(Aligned, u64)>>>,
    to_pool: SyncSender<Aligned>,
    failed: Arc<Mutex<Option<io::Error>>>,
}

impl IoThread {
    fn run(self) {
        loop {
            // One thread at a time waits on the queue; the lock is gone before the write.
            let job = lock(&self.queue).recv();
            let Ok((mut buf, offset)) = job else { return };
            if lock(&self.failed).is_none() {
                if let Err(e) = self.file.write_all_at(buf.padded(), offset) {
                    lock(&self.failed).get_or_insert(e);
                }
            }
            buf.len = 0;
            if self.to_pool.send(buf).is_err() {
                return;
            }
        }
    }
}

enum Mode {
    Direct(Box<Direct>),
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
            Some(Ok(file)) => {
                let direct = Direct::start(&file).map_err(|e| Error::io("starting the fs store's I/O threads", e))?;
                (file, Mode::Direct(Box::new(direct)))
            }
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
}

impl Writer for FsWriter {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        let failed = |e| Error::io(format!("writing {}", self.partial.display()), e);
        let end = self.written + data.len() as u64;
        match &mut self.mode {
            Mode::Direct(direct) => direct.push(data).map_err(failed)?,
            Mode::Buffered { flushed } => {
                self.file.write_all(data).map_err(failed)?;
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
            }
        }
        self.written = end;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<String> {
        let result = (|| {
            if let Mode::Direct(direct) = &mut self.mode {
                let closed = direct.close();
                closed.map_err(|e| self.io(e))?;
                // The last block went out padded to the alignment: cut it back.
                if !self.written.is_multiple_of(ALIGN as u64) {
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
                drop(self.mode);
                let _ = fs::remove_file(&self.partial);
                Err(e)
            }
        }
    }

    fn abort(self: Box<Self>) -> Result<()> {
        // Dropping the mode stops direct mode's I/O threads before the file goes.
        drop(self.mode);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_on_an_io_thread_reaches_the_writer_with_its_errno() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, b"").unwrap();
        // Writes to a descriptor opened for reading fail with EBADF on the I/O threads.
        let read_only = File::open(&path).unwrap();
        let mut direct = Direct::start(&read_only).unwrap();
        let block = vec![7u8; BLOCK];
        let mut first_error = None;
        for _ in 0..(IN_FLIGHT + 3) {
            if let Err(e) = direct.push(&block) {
                first_error = Some(e);
                break;
            }
        }
        let e = first_error.or_else(|| direct.close().err()).expect("the failure is reported");
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e}");
        // Once failed, the writer stays failed, and stopping it twice is harmless.
        assert_eq!(direct.close().unwrap_err().raw_os_error(), Some(libc::EBADF));
        drop(direct);
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn direct_blocks_land_at_their_offsets_whatever_order_the_threads_finish_in() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let file = OpenOptions::new().write(true).create(true).truncate(true).open(&path).unwrap();
        let mut direct = Direct::start(&file).unwrap();
        // Blocks of different content, pushed in pieces that straddle block boundaries.
        let data: Vec<u8> = (0..(3 * BLOCK + 5000)).map(|i| (i / BLOCK * 31 + i % 251) as u8).collect();
        for piece in data.chunks(BLOCK / 3 + 17) {
            direct.push(piece).unwrap();
        }
        direct.close().unwrap();
        // The last block went out padded to the alignment.
        let on_disk = fs::read(&path).unwrap();
        assert_eq!(on_disk.len(), data.len().div_ceil(ALIGN) * ALIGN);
        assert_eq!(&on_disk[..data.len()], &data[..]);
        assert!(on_disk[data.len()..].iter().all(|&b| b == 0));
    }
}
