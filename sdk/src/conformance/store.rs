//! The store suite: what the host relies on from every store, checked through the same ABI
//! objects the host holds after loading a plugin.
//!
//! # What a store must do to pass
//! - `finish` returns a location whose scheme is one the manifest lists; `get`, `size` and
//!   `delete` accept it; the data reads back byte for byte, whole or in ranges, with any
//!   reader buffer size.
//! - A location that names nothing (never written, or deleted) is `NOT_FOUND` for `get`,
//!   `size` and `delete`.
//! - A second `add` of an image id whose data was finished is refused with `DUPLICATE`, at
//!   `add` or at the latest at `finish`, and never overwrites the first data. A store whose
//!   backend cannot detect this is not a Tank store: the host relies on it to never lose an
//!   image's data to a retried upload.
//! - Aborting or dropping a writer leaves nothing behind: a new `add` of the same id
//!   succeeds, and `discard` of any id (unknown, aborted or finished) succeeds without
//!   touching finished data.
//! - Uploads of different images in parallel do not mix.
//!
//! "Nothing behind" is checked through the store's own API everywhere, and additionally
//! through the backend itself when the caller passes a `leftovers` function (see
//! [`run_with`]): the suite then requires an empty backend after every case.

use std::{ops::Range, path::Path};

use abi_stable::std_types::{RBox, ROption, RResult};

use super::pattern;
use crate::{
    abi::{PluginError, ReaderV1_TO, StoreV1_TO, WriterV1_TO},
    export::{open_store_in_process, Meta},
    image::ImageId,
    Error, ErrorKind, Store,
};

type WriterObj = WriterV1_TO<'static, RBox<()>>;
type ReaderObj = ReaderV1_TO<'static, RBox<()>>;

/// What the backend holds that the suite did not leave there on purpose: a function that
/// lists the backend's objects (file names, keys, ...), for [`run_with`] and
/// [`run_object`].
pub type Leftovers<'a> = &'a dyn Fn() -> Vec<String>;

/// Runs every store case against plugin type `S`, opened as the host would open it with
/// `config` (its `[store.<name>]` table as JSON) and `config_dir`. `schemes` are the URI
/// schemes its manifest lists: every location it returns must use one of them.
///
/// # Panics
/// On the first case that fails, naming it: ``store conformance case `<case>`: <what>``.
pub fn run<S: Store + Meta>(config: serde_json::Value, config_dir: &Path, schemes: &[&str]) {
    let store = open::<S>(&config, config_dir);
    run_object(&store, schemes, None);
}

/// [`run`], and after every case (and right after each abort and dropped writer) asks
/// `leftovers` what the backend still holds, which must be nothing. The backend must be
/// empty when the suite starts.
///
/// This is how a store proves that aborted uploads really leave nothing behind, which its
/// own API cannot show: a `.partial` file or an unfinished multipart upload is invisible to
/// `get` but still costs space.
///
/// # Panics
/// As [`run`].
pub fn run_with<S: Store + Meta>(
    config: serde_json::Value,
    config_dir: &Path,
    schemes: &[&str],
    leftovers: impl Fn() -> Vec<String>,
) {
    let store = open::<S>(&config, config_dir);
    run_object(&store, schemes, Some(&leftovers));
}

/// Runs every case against a store object that is already open, for example one the
/// host's loader opened from a built library.
///
/// # Panics
/// As [`run`].
pub fn run_object<'a>(
    store: &'a StoreV1_TO<'static, RBox<()>>,
    schemes: &'a [&'a str],
    leftovers: Option<Leftovers<'a>>,
) {
    let s = Suite { store, schemes, leftovers };
    s.clean("setup", "before the first case");
    let cases: [(&str, Case<'a>); 12] = [
        ("round_trip", Suite::round_trip),
        ("large_image_in_uneven_chunks", Suite::large_image_in_uneven_chunks),
        ("ranged_reads", Suite::ranged_reads),
        ("empty_image", Suite::empty_image),
        ("unknown_location_is_not_found", Suite::unknown_location_is_not_found),
        ("delete_then_not_found", Suite::delete_then_not_found),
        ("duplicate_id_is_refused", Suite::duplicate_id_is_refused),
        ("abort_leaves_nothing", Suite::abort_leaves_nothing),
        ("drop_leaves_nothing", Suite::drop_leaves_nothing),
        ("discard_of_unknown_id_is_ok", Suite::discard_of_unknown_id_is_ok),
        ("discard_keeps_finished_data", Suite::discard_keeps_finished_data),
        ("parallel_uploads_do_not_mix", Suite::parallel_uploads_do_not_mix),
    ];
    for (case, f) in cases {
        f(&s, case);
        s.clean(case, "after the case");
    }
}

fn open<S: Store + Meta>(config: &serde_json::Value, config_dir: &Path) -> StoreV1_TO<'static, RBox<()>> {
    open_store_in_process::<S>(S::NAME, config, config_dir)
        .unwrap_or_else(|e| panic!("store conformance: opening {} failed: {} ({})", S::NAME, e.message, e.kind))
}

/// One case: it runs against the suite's object and fails with the name it is given.
type Case<'a> = fn(&Suite<'a>, &str);

struct Suite<'a> {
    store: &'a StoreV1_TO<'static, RBox<()>>,
    schemes: &'a [&'a str],
    leftovers: Option<Leftovers<'a>>,
}

fn fail(case: &str, what: impl std::fmt::Display) -> ! {
    panic!("store conformance case `{case}`: {what}")
}

fn ok<T>(case: &str, step: &str, r: RResult<T, PluginError>) -> T {
    r.into_result().unwrap_or_else(|e| fail(case, format!("{step} failed: {} ({:?})", e.message, e.kind)))
}

fn kind_of<T>(r: RResult<T, PluginError>) -> Option<ErrorKind> {
    r.into_result().err().map(|e| Error::from(e).kind)
}

fn new_id() -> String {
    ImageId::random().to_string()
}

/// Chunk sizes for writes, cycled: tiny, odd, block-sized and larger than any sane
/// internal buffer, so that a store's own buffering meets every boundary case.
const UNEVEN_CHUNKS: [usize; 6] = [1, 65_537, 4 << 20, 3, 1_000_003, (4 << 20) + 1];

impl Suite<'_> {
    /// Fails `case` if the backend holds anything `when` (only when the caller can tell).
    fn clean(&self, case: &str, when: &str) {
        if let Some(leftovers) = self.leftovers {
            let left = leftovers();
            if !left.is_empty() {
                fail(case, format!("{when}, the backend still holds {left:?}; it must be empty"));
            }
        }
    }

    fn add(&self, case: &str, id: &str, size: Option<u64>) -> WriterObj {
        ok(case, "add", self.store.add(id.into(), ROption::from(size)))
    }

    fn finish(&self, case: &str, w: WriterObj) -> String {
        let loc = ok(case, "finish", w.finish()).into_string();
        let scheme = loc.split_once("://").map_or("", |(s, _)| s);
        if !self.schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
            fail(case, format!("location {loc:?} does not use one of the manifest's schemes {:?}", self.schemes));
        }
        loc
    }

    /// Writes `data` as image `id`, in chunks cycling through `chunks`.
    fn put_chunked(&self, case: &str, id: &str, data: &[u8], chunks: &[usize]) -> String {
        let mut w = self.add(case, id, Some(data.len() as u64));
        let (mut at, mut i) = (0, 0);
        while at < data.len() {
            let end = (at + chunks[i % chunks.len()].max(1)).min(data.len());
            ok(case, "write", w.write(data[at..end].into()));
            at = end;
            i += 1;
        }
        self.finish(case, w)
    }

    fn put(&self, case: &str, id: &str, data: &[u8]) -> String {
        self.put_chunked(case, id, data, &[65_536])
    }

    fn get(&self, case: &str, loc: &str, offset: u64, length: Option<u64>) -> ReaderObj {
        ok(case, "get", self.store.get(loc.into(), offset, ROption::from(length)))
    }

    fn delete(&self, case: &str, loc: &str) {
        ok(case, "delete", self.store.delete(loc.into()));
    }

    /// Reads `r` to its end with a `buf_size` buffer and checks, as the bytes arrive, that
    /// they are exactly `want`. Streaming the comparison names the first differing offset,
    /// which a checksum of the whole could not.
    fn expect_read(&self, case: &str, what: &str, mut r: ReaderObj, want: &[u8], buf_size: usize) {
        let mut buf = vec![0u8; buf_size];
        let mut at = 0usize;
        loop {
            let n = ok(case, "read", r.read(buf.as_mut_slice().into()));
            if n == 0 {
                break;
            }
            let Some(expected) = want.get(at..at + n) else {
                fail(case, format!("{what}: read past the {} bytes expected (to byte {})", want.len(), at + n));
            };
            if let Some(i) = buf[..n].iter().zip(expected).position(|(a, b)| a != b) {
                fail(case, format!("{what}: byte {} differs from the data written", at + i));
            }
            at += n;
        }
        if at != want.len() {
            fail(case, format!("{what}: the reader ended after {at} of {} bytes", want.len()));
        }
    }

    fn expect_kind<T>(&self, case: &str, what: &str, r: RResult<T, PluginError>, want: ErrorKind) {
        let got = kind_of(r);
        if got != Some(want) {
            let got = got.map_or_else(|| "success".to_owned(), |k| format!("{k:?}"));
            fail(case, format!("{what} gave {got}, not {want:?}"));
        }
    }

    fn round_trip(&self, case: &str) {
        let data = pattern(300_000, 1);
        let loc = self.put(case, &new_id(), &data);
        self.expect_read(case, "the whole image", self.get(case, &loc, 0, None), &data, 1 << 20);
        let size = ok(case, "size", self.store.size(loc.as_str().into()));
        if size != data.len() as u64 {
            fail(case, format!("size says {size}, {} bytes were written", data.len()));
        }
        self.delete(case, &loc);
    }

    fn large_image_in_uneven_chunks(&self, case: &str) {
        // Larger than every chunk and buffer size involved, and not a multiple of any.
        let data = pattern(20 * 1024 * 1024 + 17, 2);
        let loc = self.put_chunked(case, &new_id(), &data, &UNEVEN_CHUNKS);
        let size = ok(case, "size", self.store.size(loc.as_str().into()));
        if size != data.len() as u64 {
            fail(case, format!("size says {size}, {} bytes were written", data.len()));
        }
        // Small reads: the reader must cope with buffers far smaller than its own chunks.
        self.expect_read(case, "the whole image in 4093-byte reads", self.get(case, &loc, 0, None), &data, 4093);
        let from = 7 * 1024 * 1024 + 5;
        let range = self.get(case, &loc, from as u64, Some(5 << 20));
        self.expect_read(case, "5 MiB from offset 7 MiB + 5", range, &data[from..from + (5 << 20)], 65_536);
        self.delete(case, &loc);
    }

    fn ranged_reads(&self, case: &str) {
        let data = pattern(10_000, 3);
        let len = data.len() as u64;
        let loc = self.put(case, &new_id(), &data);
        let ranges: [(u64, Option<u64>, Range<usize>); 8] = [
            (5, Some(10), 5..15),
            (0, Some(1), 0..1),
            (0, Some(0), 0..0),
            (9_997, None, 9_997..10_000),
            (9_990, Some(100), 9_990..10_000),
            (len, None, 0..0),
            (len + 20_000, None, 0..0),
            (len + 1, Some(5), 0..0),
        ];
        for (offset, length, want) in ranges {
            let what = format!("offset {offset}, length {length:?} (image of {len} bytes)");
            for buf_size in [1, 3, 64 << 10] {
                self.expect_read(case, &what, self.get(case, &loc, offset, length), &data[want.clone()], buf_size);
            }
        }
        self.delete(case, &loc);
    }

    fn empty_image(&self, case: &str) {
        let loc = self.put(case, &new_id(), b"");
        if ok(case, "size", self.store.size(loc.as_str().into())) != 0 {
            fail(case, "an empty image must have size 0");
        }
        self.expect_read(case, "an empty image", self.get(case, &loc, 0, None), b"", 64);
        self.delete(case, &loc);
    }

    fn unknown_location_is_not_found(&self, case: &str) {
        // Locations are the store's own business, so the suite makes an unknown one from a
        // real one: the same location with another image's id, where the id shows in it.
        let id = new_id();
        let loc = self.put(case, &id, b"known");
        if loc.contains(&id) {
            let unknown = loc.replace(&id, &new_id());
            self.expect_kind(
                case,
                "get of a never-written location",
                self.store.get(unknown.as_str().into(), 0, ROption::RNone),
                ErrorKind::NOT_FOUND,
            );
            self.expect_kind(
                case,
                "size of a never-written location",
                self.store.size(unknown.as_str().into()),
                ErrorKind::NOT_FOUND,
            );
            self.expect_kind(
                case,
                "delete of a never-written location",
                self.store.delete(unknown.as_str().into()),
                ErrorKind::NOT_FOUND,
            );
        }
        self.expect_read(case, "the known image", self.get(case, &loc, 0, None), b"known", 64);
        self.delete(case, &loc);
    }

    fn delete_then_not_found(&self, case: &str) {
        let loc = self.put(case, &new_id(), b"short-lived");
        self.delete(case, &loc);
        let l = loc.as_str();
        self.expect_kind(
            case,
            "get of a deleted location",
            self.store.get(l.into(), 0, ROption::RNone),
            ErrorKind::NOT_FOUND,
        );
        self.expect_kind(case, "size of a deleted location", self.store.size(l.into()), ErrorKind::NOT_FOUND);
        self.expect_kind(case, "a second delete", self.store.delete(l.into()), ErrorKind::NOT_FOUND);
    }

    fn duplicate_id_is_refused(&self, case: &str) {
        let id = new_id();
        let loc = self.put(case, &id, b"first");
        // Refused at add, or at the latest at finish; never a silent overwrite.
        let refused = match self.store.add(id.as_str().into(), ROption::RNone).into_result() {
            Err(e) => Some(Error::from(e).kind),
            Ok(mut w) => {
                ok(case, "write of the second upload", w.write(b"second"[..].into()));
                kind_of(w.finish())
            }
        };
        if refused != Some(ErrorKind::DUPLICATE) {
            let got = refused.map_or_else(|| "success".to_owned(), |k| format!("{k:?}"));
            fail(case, format!("a second add of a finished image id gave {got}, not {:?}", ErrorKind::DUPLICATE));
        }
        self.expect_read(case, "the first image after the refused second", self.get(case, &loc, 0, None), b"first", 64);
        self.delete(case, &loc);
    }

    fn abort_leaves_nothing(&self, case: &str) {
        let id = new_id();
        let mut w = self.add(case, &id, Some(200_000));
        ok(case, "write", w.write(pattern(100_000, 4).as_slice().into()));
        ok(case, "abort", w.abort());
        self.clean(case, "right after the abort");
        ok(case, "discard after abort", self.store.discard(id.as_str().into()));
        // Nothing of the aborted write may show through a new write of the same image.
        let loc = self.put(case, &id, b"fresh");
        self.expect_read(case, "the image written after an abort", self.get(case, &loc, 0, None), b"fresh", 64);
        self.delete(case, &loc);
    }

    fn drop_leaves_nothing(&self, case: &str) {
        let id = new_id();
        let mut w = self.add(case, &id, None);
        ok(case, "write", w.write(pattern(50_000, 5).as_slice().into()));
        // What the host does when a client disconnects mid-upload.
        drop(w);
        self.clean(case, "right after the drop");
        let loc = self.put(case, &id, b"after drop");
        self.expect_read(case, "the image written after a drop", self.get(case, &loc, 0, None), b"after drop", 64);
        self.delete(case, &loc);
    }

    fn discard_of_unknown_id_is_ok(&self, case: &str) {
        ok(case, "discard", self.store.discard(new_id().as_str().into()));
    }

    fn discard_keeps_finished_data(&self, case: &str) {
        // The host discards ids it finds `saving` at start; a finish that raced the crash
        // must not lose data that a later recovery could still use.
        let id = new_id();
        let loc = self.put(case, &id, b"finished");
        ok(case, "discard", self.store.discard(id.as_str().into()));
        self.expect_read(case, "a finished image after discard", self.get(case, &loc, 0, None), b"finished", 64);
        self.delete(case, &loc);
    }

    fn parallel_uploads_do_not_mix(&self, case: &str) {
        let images: Vec<(String, Vec<u8>)> =
            (0..4).map(|n| (new_id(), pattern(1_000_000 + n * 4_099, 10 + n as u64))).collect();
        // Each thread gets its own suite without the leftovers function, which need not be
        // Sync.
        let (store, schemes) = (self.store, self.schemes);
        let locations: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = images
                .iter()
                .map(|(id, data)| {
                    scope.spawn(move || {
                        Suite { store, schemes, leftovers: None }.put_chunked(case, id, data, &[8_191, 65_536, 100_003])
                    })
                })
                .collect();
            // Re-raise a thread's own panic, so its message names the case.
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        for ((_, data), loc) in images.iter().zip(&locations) {
            self.expect_read(case, "an image uploaded in parallel", self.get(case, loc, 0, None), data, 1 << 20);
        }
        for loc in &locations {
            self.delete(case, loc);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The suite against a small in-memory store with one fault at a time: each fault must
    //! make the case meant to catch it fail.

    use std::{
        collections::{BTreeMap, BTreeSet},
        io::Cursor,
        panic::{catch_unwind, AssertUnwindSafe},
        sync::{Arc, Mutex},
    };

    use abi_stable::sabi_trait::TD_Opaque;

    use super::*;
    use crate::{store::StoreAdapter, OpenContext, Reader, Result, Writer};

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Fault {
        None,
        DeleteKeepsData,
        AbortKeepsPartial,
        DuplicatesOverwrite,
        IgnoresOffset,
        PanicsInSize,
        ForeignScheme,
    }

    #[derive(Default)]
    struct Backend {
        images: BTreeMap<String, Vec<u8>>,
        partial: BTreeSet<String>,
    }

    struct Mem {
        backend: Arc<Mutex<Backend>>,
        fault: Fault,
    }

    impl Meta for Mem {
        const NAME: &'static str = "mem";
        const VERSION: &'static str = "0.0.0";
    }

    impl Mem {
        fn id_of<'a>(&self, location: &'a str) -> Result<&'a str> {
            location.strip_prefix("mem://").ok_or_else(|| Error::invalid_input(format!("{location:?} is not mem://")))
        }

        fn data(&self, location: &str) -> Result<Vec<u8>> {
            let id = self.id_of(location)?;
            let b = self.backend.lock().unwrap();
            b.images.get(id).cloned().ok_or_else(|| Error::not_found(format!("nothing at {location}")))
        }
    }

    impl Store for Mem {
        fn open(_ctx: &OpenContext) -> Result<Self> {
            Ok(Mem { backend: Default::default(), fault: Fault::None })
        }

        fn add(&self, image_id: &str, _size: Option<u64>) -> Result<Box<dyn Writer>> {
            let mut b = self.backend.lock().unwrap();
            if b.images.contains_key(image_id) && self.fault != Fault::DuplicatesOverwrite {
                return Err(Error::duplicate(image_id));
            }
            b.partial.insert(image_id.to_owned());
            Ok(Box::new(MemWriter {
                id: image_id.to_owned(),
                data: Vec::new(),
                backend: self.backend.clone(),
                fault: self.fault,
            }))
        }

        fn get(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Box<dyn Reader>> {
            let data = self.data(location)?;
            let start = if self.fault == Fault::IgnoresOffset { 0 } else { (offset as usize).min(data.len()) };
            let end = length.map_or(data.len(), |n| (start + n as usize).min(data.len()));
            Ok(Box::new(Cursor::new(data[start..end].to_vec())))
        }

        fn size(&self, location: &str) -> Result<u64> {
            assert!(self.fault != Fault::PanicsInSize, "size is broken");
            Ok(self.data(location)?.len() as u64)
        }

        fn delete(&self, location: &str) -> Result<()> {
            let id = self.id_of(location)?;
            let mut b = self.backend.lock().unwrap();
            if !b.images.contains_key(id) {
                return Err(Error::not_found(location));
            }
            if self.fault != Fault::DeleteKeepsData {
                b.images.remove(id);
            }
            Ok(())
        }

        fn discard(&self, image_id: &str) -> Result<()> {
            self.backend.lock().unwrap().partial.remove(image_id);
            Ok(())
        }
    }

    struct MemWriter {
        id: String,
        data: Vec<u8>,
        backend: Arc<Mutex<Backend>>,
        fault: Fault,
    }

    impl Writer for MemWriter {
        fn write(&mut self, data: &[u8]) -> Result<()> {
            self.data.extend_from_slice(data);
            Ok(())
        }

        fn finish(self: Box<Self>) -> Result<String> {
            let mut b = self.backend.lock().unwrap();
            b.partial.remove(&self.id);
            if b.images.contains_key(&self.id) && self.fault != Fault::DuplicatesOverwrite {
                return Err(Error::duplicate(&self.id));
            }
            b.images.insert(self.id.clone(), self.data);
            let scheme = if self.fault == Fault::ForeignScheme { "other" } else { "mem" };
            Ok(format!("{scheme}://{}", self.id))
        }

        fn abort(self: Box<Self>) -> Result<()> {
            if self.fault != Fault::AbortKeepsPartial {
                self.backend.lock().unwrap().partial.remove(&self.id);
            }
            Ok(())
        }
    }

    /// Runs the suite on a fresh store with `fault`, through the ABI object; returns the
    /// panic message, if it panicked.
    fn suite_with(fault: Fault) -> Option<String> {
        let backend: Arc<Mutex<Backend>> = Default::default();
        let store = StoreV1_TO::from_value(StoreAdapter(Mem { backend: backend.clone(), fault }), TD_Opaque);
        let leftovers = || {
            let b = backend.lock().unwrap();
            b.images.keys().chain(&b.partial).cloned().collect::<Vec<_>>()
        };
        let r = catch_unwind(AssertUnwindSafe(|| run_object(&store, &["mem"], Some(&leftovers))));
        r.err().map(|p| p.downcast_ref::<String>().cloned().unwrap_or_else(|| "a non-text panic".into()))
    }

    fn assert_caught(fault: Fault, case: &str, detail: &str) {
        let msg = suite_with(fault).unwrap_or_else(|| panic!("the suite passed a store with fault {fault:?}"));
        assert!(msg.starts_with(&format!("store conformance case `{case}`: ")), "{fault:?}: {msg}");
        assert!(msg.contains(detail), "{fault:?}: {msg}");
    }

    #[test]
    fn a_correct_store_passes_with_and_without_a_leftovers_check() {
        assert_eq!(suite_with(Fault::None), None);
        run::<Mem>(serde_json::json!({}), Path::new("/"), &["mem"]);
    }

    #[test]
    fn each_fault_fails_the_case_meant_to_catch_it() {
        assert_caught(Fault::DeleteKeepsData, "round_trip", "after the case, the backend still holds");
        assert_caught(
            Fault::AbortKeepsPartial,
            "abort_leaves_nothing",
            "right after the abort, the backend still holds",
        );
        assert_caught(
            Fault::DuplicatesOverwrite,
            "duplicate_id_is_refused",
            "finished image id gave success, not duplicate",
        );
        assert_caught(Fault::IgnoresOffset, "large_image_in_uneven_chunks", "5 MiB from offset");
        assert_caught(Fault::PanicsInSize, "round_trip", "the plugin panicked: size is broken");
        assert_caught(Fault::ForeignScheme, "round_trip", "does not use one of the manifest's schemes");
    }

    #[test]
    fn without_a_leftovers_check_a_kept_delete_is_still_caught() {
        let store = StoreV1_TO::from_value(
            StoreAdapter(Mem { backend: Default::default(), fault: Fault::DeleteKeepsData }),
            TD_Opaque,
        );
        let msg = catch_unwind(AssertUnwindSafe(|| run_object(&store, &["mem"], None))).unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(msg.starts_with("store conformance case `delete_then_not_found`: get of a deleted location"), "{msg}");
    }
}
