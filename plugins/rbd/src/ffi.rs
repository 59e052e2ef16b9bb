//! The few functions of librados and librbd the store calls, opened at run time with
//! `libloading`, and safe handles around them.
//!
//! No maintained Rust crate covers librbd (docs/plugins.md; the `ceph-rbd` crate needs
//! librbd's headers and libclang at build time), so the plugin declares the C signatures
//! it uses itself, from librados.h and librbd.h of Ceph 16. Opening the libraries at run
//! time rather than linking them means Tank builds without Ceph installed, and a host
//! without librbd1 loads the plugin and gets an error naming the package instead of a
//! `dlopen` failure of the whole plugin.
//!
//! The libraries are opened once per process and never closed: librados starts threads
//! that must not outlive its code.

use std::{
    ffi::{c_char, c_int, c_void, CStr, CString},
    fmt,
    sync::{Arc, OnceLock},
};

use libloading::Library;

/// The libraries' names, as Debian's librados2 and librbd1 install them.
pub const LIBRADOS: &str = "librados.so.2";
pub const LIBRBD: &str = "librbd.so.1";

/// `RBD_FEATURE_LAYERING`: the one feature the store asks for. Protected snapshots and
/// clones need it, and every kernel client since 3.10 supports it.
pub const FEATURE_LAYERING: u64 = 1;

type Rados = *mut c_void;
type IoCtxT = *mut c_void;
type ImageT = *mut c_void;
type CompletionT = *mut c_void;

/// The entry points, copied out of the libraries, which stay open for good.
pub struct Api {
    rados_create: unsafe extern "C" fn(*mut Rados, *const c_char) -> c_int,
    rados_conf_read_file: unsafe extern "C" fn(Rados, *const c_char) -> c_int,
    rados_conf_set: unsafe extern "C" fn(Rados, *const c_char, *const c_char) -> c_int,
    rados_connect: unsafe extern "C" fn(Rados) -> c_int,
    rados_shutdown: unsafe extern "C" fn(Rados),
    rados_cluster_fsid: unsafe extern "C" fn(Rados, *mut c_char, usize) -> c_int,
    rados_ioctx_create: unsafe extern "C" fn(Rados, *const c_char, *mut IoCtxT) -> c_int,
    rados_ioctx_destroy: unsafe extern "C" fn(IoCtxT),
    rbd_create2: unsafe extern "C" fn(IoCtxT, *const c_char, u64, u64, *mut c_int) -> c_int,
    rbd_open: unsafe extern "C" fn(IoCtxT, *const c_char, *mut ImageT, *const c_char) -> c_int,
    rbd_close: unsafe extern "C" fn(ImageT) -> c_int,
    rbd_remove: unsafe extern "C" fn(IoCtxT, *const c_char) -> c_int,
    rbd_get_size: unsafe extern "C" fn(ImageT, *mut u64) -> c_int,
    rbd_resize: unsafe extern "C" fn(ImageT, u64) -> c_int,
    rbd_flush: unsafe extern "C" fn(ImageT) -> c_int,
    rbd_aio_create_completion: unsafe extern "C" fn(*mut c_void, *const c_void, *mut CompletionT) -> c_int,
    rbd_aio_write: unsafe extern "C" fn(ImageT, u64, usize, *const c_char, CompletionT) -> c_int,
    rbd_aio_read: unsafe extern "C" fn(ImageT, u64, usize, *mut c_char, CompletionT) -> c_int,
    rbd_aio_wait_for_complete: unsafe extern "C" fn(CompletionT) -> c_int,
    rbd_aio_get_return_value: unsafe extern "C" fn(CompletionT) -> isize,
    rbd_aio_release: unsafe extern "C" fn(CompletionT),
    rbd_snap_create: unsafe extern "C" fn(ImageT, *const c_char) -> c_int,
    rbd_snap_protect: unsafe extern "C" fn(ImageT, *const c_char) -> c_int,
    rbd_snap_unprotect: unsafe extern "C" fn(ImageT, *const c_char) -> c_int,
    rbd_snap_is_protected: unsafe extern "C" fn(ImageT, *const c_char, *mut c_int) -> c_int,
    rbd_snap_remove: unsafe extern "C" fn(ImageT, *const c_char) -> c_int,
    _libraries: [Library; 2],
}

/// Opens the system's librados and librbd, once per process.
///
/// # Errors
/// A message naming the library that is missing (or lacks a function) and the Debian
/// package that provides it.
pub fn api() -> Result<&'static Api, String> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(|| Api::load(LIBRADOS, LIBRBD)).as_ref().map_err(Clone::clone)
}

impl Api {
    /// Opens the libraries `rados` and `rbd` (file names, looked up as `dlopen` does).
    pub fn load(rados: &str, rbd: &str) -> Result<Api, String> {
        let open = |name: &str, package: &str| {
            // SAFETY: loading runs the library's initialisers. librados and librbd are
            // ordinary C++ shared libraries whose initialisers only set up their own state.
            unsafe { Library::new(name) }.map_err(|e| {
                format!(
                    "{name} could not be loaded ({e}); the rbd store needs Ceph's client libraries: \
                     install Debian's {package} package (apt-get install librbd1, which brings librados2)"
                )
            })
        };
        let rados_lib = open(rados, "librados2")?;
        let rbd_lib = open(rbd, "librbd1")?;

        macro_rules! symbols {
            ($($lib:ident in $lib_name:ident => $($name:ident),+;)+) => {
                Api {
                    $($($name: {
                        // SAFETY: the field's type is the function's C signature in
                        // librados.h / librbd.h of Ceph 16 (and every release since 10,
                        // which kept these functions unchanged); the pointer is used only
                        // while the library stays loaded, which is forever.
                        *unsafe { $lib.get(concat!(stringify!($name), "\0").as_bytes()) }.map_err(|e| {
                            format!(
                                "{} lacks {} ({e}); install a Ceph release of 10 (jewel) or later",
                                $lib_name,
                                stringify!($name)
                            )
                        })?
                    },)+)+
                    _libraries: [rados_lib, rbd_lib],
                }
            };
        }
        Ok(symbols! {
            rados_lib in rados => rados_create, rados_conf_read_file, rados_conf_set, rados_connect, rados_shutdown,
                rados_cluster_fsid, rados_ioctx_create, rados_ioctx_destroy;
            rbd_lib in rbd => rbd_create2, rbd_open, rbd_close, rbd_remove, rbd_get_size, rbd_resize,
                rbd_flush, rbd_aio_create_completion, rbd_aio_write, rbd_aio_read, rbd_aio_wait_for_complete,
                rbd_aio_get_return_value, rbd_aio_release, rbd_snap_create, rbd_snap_protect, rbd_snap_unprotect,
                rbd_snap_is_protected, rbd_snap_remove;
        })
    }
}

/// A failed call: the positive errno librados or librbd returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const ENOENT: Errno = Errno(2);
    pub const EINVAL: Errno = Errno(22);
    pub const EBUSY: Errno = Errno(16);
    pub const EEXIST: Errno = Errno(17);
    pub const ENOTEMPTY: Errno = Errno(39);
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = std::io::Error::from_raw_os_error(self.0).to_string();
        // "No such file or directory (os error 2)" -> "No such file or directory (errno 2)"
        let text = text.split(" (os error").next().unwrap_or_default();
        write!(f, "{text} (errno {})", self.0)
    }
}

pub type Result<T, E = Errno> = std::result::Result<T, E>;

/// A return value of librados or librbd: negative errno on failure.
fn check(ret: c_int) -> Result<c_int> {
    if ret < 0 {
        Err(Errno(-ret))
    } else {
        Ok(ret)
    }
}

/// `text` as a C string; a NUL inside is EINVAL (names are checked before they get here).
fn c(text: &str) -> Result<CString> {
    CString::new(text).map_err(|_| Errno::EINVAL)
}

/// A cluster handle (`rados_t`): created, configured, connected, shut down on drop.
pub struct Cluster {
    api: &'static Api,
    handle: Rados,
}

// SAFETY: librados documents a `rados_t` as safe to share between threads once connected
// ("the cluster handle is thread-safe"); configuration calls happen before it is shared.
unsafe impl Send for Cluster {}
// SAFETY: as above.
unsafe impl Sync for Cluster {}

impl Cluster {
    /// A new handle for user `id` (`admin`, not `client.admin`); `None` lets librados
    /// choose (client.admin, or what `CEPH_ARGS` says).
    pub fn create(api: &'static Api, id: Option<&str>) -> Result<Cluster> {
        let id = id.map(c).transpose()?;
        let mut handle: Rados = std::ptr::null_mut();
        // SAFETY: `handle` is a valid out-pointer; `id` is NULL or a C string that lives
        // through the call.
        check(unsafe { (api.rados_create)(&mut handle, id.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())) })?;
        Ok(Cluster { api, handle })
    }

    /// Reads a `ceph.conf`.
    pub fn read_conf(&self, path: &str) -> Result<()> {
        let path = c(path)?;
        // SAFETY: a live, not yet connected handle and a C string.
        check(unsafe { (self.api.rados_conf_read_file)(self.handle, path.as_ptr()) }).map(drop)
    }

    /// Sets one configuration option (`client_mount_timeout`, `keyring`, ...).
    pub fn set(&self, option: &str, value: &str) -> Result<()> {
        let (option, value) = (c(option)?, c(value)?);
        // SAFETY: a live handle and two C strings.
        check(unsafe { (self.api.rados_conf_set)(self.handle, option.as_ptr(), value.as_ptr()) }).map(drop)
    }

    /// Connects to the monitors and authenticates; within `client_mount_timeout`.
    pub fn connect(&self) -> Result<()> {
        // SAFETY: a live handle, configured and not yet connected.
        check(unsafe { (self.api.rados_connect)(self.handle) }).map(drop)
    }

    /// The cluster's fsid, in lower case.
    pub fn fsid(&self) -> Result<String> {
        // An fsid is a 36-character UUID; librados wants room for its NUL.
        let mut buf = [0u8; 64];
        // SAFETY: a connected handle and a buffer of the length given.
        check(unsafe { (self.api.rados_cluster_fsid)(self.handle, buf.as_mut_ptr().cast(), buf.len()) })?;
        let fsid = CStr::from_bytes_until_nul(&buf).map_err(|_| Errno::EINVAL)?;
        Ok(fsid.to_string_lossy().to_ascii_lowercase())
    }

    /// An I/O context on `pool`.
    pub fn ioctx(self: &Arc<Cluster>, pool: &str) -> Result<IoCtx> {
        let pool_c = c(pool)?;
        let mut handle: IoCtxT = std::ptr::null_mut();
        // SAFETY: a connected handle, a C string and a valid out-pointer.
        check(unsafe { (self.api.rados_ioctx_create)(self.handle, pool_c.as_ptr(), &mut handle) })?;
        Ok(IoCtx { cluster: Arc::clone(self), handle })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SAFETY: the handle is live, and every IoCtx holds an Arc of this Cluster, so none
        // outlives it.
        unsafe { (self.api.rados_shutdown)(self.handle) }
    }
}

/// An I/O context on one pool (`rados_ioctx_t`), used by one transfer at a time.
pub struct IoCtx {
    cluster: Arc<Cluster>,
    handle: IoCtxT,
}

// SAFETY: the context is used by one thread at a time (it is not Sync); librados allows a
// context to move between threads.
unsafe impl Send for IoCtx {}

impl IoCtx {
    /// Creates RBD image `name` of `size` bytes with `features` and objects of 2^`order`
    /// bytes (format 2).
    pub fn create_image(&self, name: &str, size: u64, features: u64, order: u32) -> Result<()> {
        let name = c(name)?;
        let mut order = order as c_int;
        // SAFETY: a live context, a C string and a valid in/out pointer for the order.
        check(unsafe { (self.api().rbd_create2)(self.handle, name.as_ptr(), size, features, &mut order) }).map(drop)
    }

    /// Opens image `name`, at snapshot `snap` (read-only) or its head.
    pub fn open(self, name: &str, snap: Option<&str>) -> Result<Image, (IoCtx, Errno)> {
        let (name_c, snap_c) = match (c(name), snap.map(c).transpose()) {
            (Ok(n), Ok(s)) => (n, s),
            _ => return Err((self, Errno::EINVAL)),
        };
        let mut handle: ImageT = std::ptr::null_mut();
        // SAFETY: a live context, C strings (the snapshot's may be NULL) and a valid
        // out-pointer.
        let ret = unsafe {
            (self.api().rbd_open)(
                self.handle,
                name_c.as_ptr(),
                &mut handle,
                snap_c.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            )
        };
        match check(ret) {
            Ok(_) => Ok(Image { handle, io: Some(self) }),
            Err(e) => Err((self, e)),
        }
    }

    /// Removes image `name` (it must have no snapshots and no one may have it open).
    pub fn remove(&self, name: &str) -> Result<()> {
        let name = c(name)?;
        // SAFETY: a live context and a C string.
        check(unsafe { (self.api().rbd_remove)(self.handle, name.as_ptr()) }).map(drop)
    }

    fn api(&self) -> &'static Api {
        self.cluster.api
    }
}

impl Drop for IoCtx {
    fn drop(&mut self) {
        // SAFETY: the handle is live, no image opened through it is still open (an Image
        // owns its IoCtx and closes first), and the cluster outlives it (the Arc).
        unsafe { (self.api().rados_ioctx_destroy)(self.handle) }
    }
}

/// An open RBD image (`rbd_image_t`), closed on drop or by [`Image::close`].
pub struct Image {
    handle: ImageT,
    /// Always `Some` until the image is closed.
    io: Option<IoCtx>,
}

// SAFETY: an image handle is used by one thread at a time (it is not Sync); librbd allows
// a handle to move between threads.
unsafe impl Send for Image {}

impl Image {
    fn api(&self) -> &'static Api {
        self.io.as_ref().expect("an open image has its context").api()
    }

    /// The image's size (the snapshot's, when opened at one).
    pub fn size(&self) -> Result<u64> {
        let mut size = 0u64;
        // SAFETY: an open image and a valid out-pointer.
        check(unsafe { (self.api().rbd_get_size)(self.handle, &mut size) })?;
        Ok(size)
    }

    /// Grows or shrinks the image to `size` bytes.
    pub fn resize(&self, size: u64) -> Result<()> {
        // SAFETY: an open image.
        check(unsafe { (self.api().rbd_resize)(self.handle, size) }).map(drop)
    }

    /// Starts writing `data` at `offset` (inside the image) and returns at once; the write
    /// owns `data` until it is waited for.
    pub fn aio_write(&self, offset: u64, data: Vec<u8>) -> Result<Aio, (Vec<u8>, Errno)> {
        self.aio(offset, data, false)
    }

    /// Starts reading `buf.len()` bytes at `offset` into `buf` and returns at once; the read
    /// owns `buf` until it is waited for, and its result is the count read.
    pub fn aio_read(&self, offset: u64, buf: Vec<u8>) -> Result<Aio, (Vec<u8>, Errno)> {
        self.aio(offset, buf, true)
    }

    fn aio(&self, offset: u64, mut data: Vec<u8>, read: bool) -> Result<Aio, (Vec<u8>, Errno)> {
        let api = self.api();
        let mut completion: CompletionT = std::ptr::null_mut();
        // SAFETY: no callback (NULL) and a valid out-pointer.
        if let Err(e) =
            check(unsafe { (api.rbd_aio_create_completion)(std::ptr::null_mut(), std::ptr::null(), &mut completion) })
        {
            return Err((data, e));
        }
        // SAFETY: an open image, and a buffer of the length given that stays alive and
        // untouched until the completion is waited for: Aio owns both, and waits before it
        // lets go of either (in `wait` and in its Drop). Moving the Vec does not move its
        // heap buffer.
        let ret = unsafe {
            if read {
                (api.rbd_aio_read)(self.handle, offset, data.len(), data.as_mut_ptr().cast(), completion)
            } else {
                (api.rbd_aio_write)(self.handle, offset, data.len(), data.as_ptr().cast(), completion)
            }
        };
        if let Err(e) = check(ret) {
            // SAFETY: the completion was created above and never handed to a request.
            unsafe { (api.rbd_aio_release)(completion) };
            return Err((data, e));
        }
        Ok(Aio { api, completion, data: Some(data) })
    }

    /// Waits until every write is on the OSDs.
    pub fn flush(&self) -> Result<()> {
        // SAFETY: an open image.
        check(unsafe { (self.api().rbd_flush)(self.handle) }).map(drop)
    }

    /// Creates snapshot `name`.
    pub fn snap_create(&self, name: &str) -> Result<()> {
        let name = c(name)?;
        // SAFETY: an open image and a C string.
        check(unsafe { (self.api().rbd_snap_create)(self.handle, name.as_ptr()) }).map(drop)
    }

    /// Protects snapshot `name`, so clones can be made of it and it cannot be removed.
    pub fn snap_protect(&self, name: &str) -> Result<()> {
        let name = c(name)?;
        // SAFETY: an open image and a C string.
        check(unsafe { (self.api().rbd_snap_protect)(self.handle, name.as_ptr()) }).map(drop)
    }

    /// Unprotects snapshot `name`; EBUSY while clones of it exist, EINVAL when it is not
    /// protected.
    pub fn snap_unprotect(&self, name: &str) -> Result<()> {
        let name = c(name)?;
        // SAFETY: an open image and a C string.
        check(unsafe { (self.api().rbd_snap_unprotect)(self.handle, name.as_ptr()) }).map(drop)
    }

    /// Whether snapshot `name` is protected; ENOENT when there is no such snapshot.
    pub fn snap_is_protected(&self, name: &str) -> Result<bool> {
        let name = c(name)?;
        let mut protected: c_int = 0;
        // SAFETY: an open image, a C string and a valid out-pointer.
        check(unsafe { (self.api().rbd_snap_is_protected)(self.handle, name.as_ptr(), &mut protected) })?;
        Ok(protected != 0)
    }

    /// Removes snapshot `name` (it must not be protected).
    pub fn snap_remove(&self, name: &str) -> Result<()> {
        let name = c(name)?;
        // SAFETY: an open image and a C string.
        check(unsafe { (self.api().rbd_snap_remove)(self.handle, name.as_ptr()) }).map(drop)
    }

    /// Closes the image and gives its context back.
    pub fn close(mut self) -> Result<IoCtx, (IoCtx, Errno)> {
        let ret = self.close_handle();
        let io = self.io.take().expect("an open image has its context");
        match ret {
            Ok(()) => Ok(io),
            Err(e) => Err((io, e)),
        }
    }

    fn close_handle(&mut self) -> Result<()> {
        let Some(io) = &self.io else { return Ok(()) };
        // SAFETY: the image is open (io is Some until this runs once).
        check(unsafe { (io.api().rbd_close)(self.handle) }).map(drop)
    }
}

/// A read or write in flight; waited for by [`Aio::wait`] or, at the latest, when dropped.
pub struct Aio {
    api: &'static Api,
    completion: CompletionT,
    /// The bytes being written or read into: `Some` until waited for.
    data: Option<Vec<u8>>,
}

// SAFETY: a completion may be waited for from any thread; the buffer is an owned Vec.
unsafe impl Send for Aio {}

impl Aio {
    /// Waits for the request; returns its buffer and librbd's result (the count for a
    /// read; 0 for a write that succeeded, not a byte count).
    pub fn wait(mut self) -> (Vec<u8>, Result<usize>) {
        let n = self.finish();
        (self.data.take().expect("waited once"), n)
    }

    fn finish(&mut self) -> Result<usize> {
        // SAFETY: a live completion of a submitted write. After the wait the write no
        // longer reads the buffer, and the completion is released exactly once (data is
        // taken by `wait` or dropped with self, and Drop only waits when data is Some).
        unsafe {
            (self.api.rbd_aio_wait_for_complete)(self.completion);
            let n = (self.api.rbd_aio_get_return_value)(self.completion);
            (self.api.rbd_aio_release)(self.completion);
            if n < 0 {
                Err(Errno(-(n as i32)))
            } else {
                Ok(n as usize)
            }
        }
    }
}

impl Drop for Aio {
    fn drop(&mut self) {
        // Not waited for: wait now, before the buffer is freed.
        if self.data.is_some() {
            let _ = self.finish();
        }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        if let Err(e) = self.close_handle() {
            tracing::warn!("closing an RBD image failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_named_with_its_package() {
        let e = Api::load("librados-not-there.so.2", LIBRBD).err().unwrap();
        assert!(e.starts_with("librados-not-there.so.2 could not be loaded"), "{e}");
        assert!(e.contains("librados2") && e.contains("apt-get install librbd1"), "{e}");
        let e = Api::load(LIBRADOS, "librbd-not-there.so.1").err().unwrap();
        assert!(e.starts_with("librbd-not-there.so.1 could not be loaded"), "{e}");
        assert!(e.contains("librbd1"), "{e}");
    }

    #[test]
    fn a_library_without_the_functions_is_refused_naming_one() {
        // libc loads everywhere and has none of Ceph's functions.
        let e = Api::load("libc.so.6", "libc.so.6").err().unwrap();
        assert!(e.contains("libc.so.6 lacks rados_create"), "{e}");
    }

    #[test]
    fn errnos_read_as_words() {
        assert_eq!(Errno::ENOENT.to_string(), "No such file or directory (errno 2)");
        assert_eq!(Errno(110).to_string(), "Connection timed out (errno 110)");
    }
}
