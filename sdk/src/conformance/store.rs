//! The store suite: what the host relies on from every store.

use std::path::Path;

use abi_stable::std_types::{RBox, ROption};

use super::pattern;
use crate::{
    abi::{ReaderV1_TO, StoreV1_TO, WriterV1_TO},
    export::{open_store_in_process, Meta},
    image::ImageId,
    Error, ErrorKind, Store,
};

type StoreObj = StoreV1_TO<'static, RBox<()>>;
type WriterObj = WriterV1_TO<'static, RBox<()>>;
type ReaderObj = ReaderV1_TO<'static, RBox<()>>;

/// Runs every store case against plugin type `S`, opened as the host would open it with
/// `config` (its `[store.<name>]` table as JSON) and `config_dir`. `schemes` are the URI
/// schemes its manifest lists: every location it returns must use one of them.
///
/// # Panics
/// On the first case that fails, naming it.
pub fn run<S: Store + Meta>(config: serde_json::Value, config_dir: &Path, schemes: &[&str]) {
    let store = open_store_in_process::<S>(S::NAME, &config, config_dir)
        .unwrap_or_else(|e| panic!("store conformance: open failed: {}", e.message));
    let s = Suite { store, schemes };
    s.round_trip();
    s.large_image_in_uneven_chunks();
    s.ranged_reads();
    s.delete_then_not_found();
    s.duplicate_id_is_refused();
    s.abort_leaves_nothing();
    s.drop_leaves_nothing();
    s.discard_of_unknown_id_is_ok();
    s.empty_image();
}

struct Suite<'a> {
    store: StoreObj,
    schemes: &'a [&'a str],
}

fn fail(case: &str, what: impl std::fmt::Display) -> ! {
    panic!("store conformance case `{case}`: {what}")
}

fn ok<T>(case: &str, step: &str, r: abi_stable::std_types::RResult<T, crate::abi::PluginError>) -> T {
    r.into_result().unwrap_or_else(|e| fail(case, format!("{step} failed: {:?} {}", e.kind, e.message)))
}

fn kind_of<T>(r: abi_stable::std_types::RResult<T, crate::abi::PluginError>) -> Option<ErrorKind> {
    r.into_result().err().map(|e| Error::from(e).kind)
}

impl Suite<'_> {
    fn add(&self, case: &str, id: &str, size: Option<u64>) -> WriterObj {
        ok(case, "add", self.store.add(id.into(), ROption::from(size)))
    }

    fn put(&self, case: &str, id: &str, data: &[u8], chunk: usize) -> String {
        let mut w = self.add(case, id, Some(data.len() as u64));
        for piece in data.chunks(chunk.max(1)) {
            ok(case, "write", w.write(piece.into()));
        }
        let loc = ok(case, "finish", w.finish()).into_string();
        let scheme = loc.split("://").next().unwrap_or("");
        if !self.schemes.contains(&scheme) {
            fail(case, format!("location scheme {scheme:?} is not one of the manifest's {:?}", self.schemes));
        }
        loc
    }

    fn get(&self, case: &str, loc: &str, offset: u64, length: Option<u64>) -> ReaderObj {
        ok(case, "get", self.store.get(loc.into(), offset, ROption::from(length)))
    }

    fn read_all(&self, case: &str, mut r: ReaderObj, buf_size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; buf_size];
        loop {
            let n = ok(case, "read", r.read(buf.as_mut_slice().into()));
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    fn round_trip(&self) {
        let case = "round_trip";
        let data = pattern(300_000, 1);
        let loc = self.put(case, &ImageId::random().to_string(), &data, 65_536);
        let back = self.read_all(case, self.get(case, &loc, 0, None), 1 << 20);
        if back != data {
            fail(case, format!("read back {} bytes that differ from the {} written", back.len(), data.len()));
        }
        let size = ok(case, "size", self.store.size(loc.as_str().into()));
        if size != data.len() as u64 {
            fail(case, format!("size says {size}, {} were written", data.len()));
        }
        ok(case, "delete", self.store.delete(loc.as_str().into()));
    }

    fn large_image_in_uneven_chunks(&self) {
        let case = "large_image_in_uneven_chunks";
        let data = pattern(20 * 1024 * 1024 + 17, 2);
        let loc = self.put(case, &ImageId::random().to_string(), &data, 1_000_003);
        // Small reads: the reader must cope with buffers far smaller than its chunks.
        let back = self.read_all(case, self.get(case, &loc, 0, None), 4093);
        if back != data {
            fail(case, "the data read back differs from the data written");
        }
        ok(case, "delete", self.store.delete(loc.as_str().into()));
    }

    fn ranged_reads(&self) {
        let case = "ranged_reads";
        let data = pattern(10_000, 3);
        let loc = self.put(case, &ImageId::random().to_string(), &data, 4096);
        let mid = self.read_all(case, self.get(case, &loc, 5, Some(10)), 3);
        if mid != data[5..15] {
            fail(case, "offset 5, length 10 returned other bytes");
        }
        let tail = self.read_all(case, self.get(case, &loc, 9_997, None), 64);
        if tail != data[9_997..] {
            fail(case, "offset 9997 to the end returned other bytes");
        }
        let past = self.read_all(case, self.get(case, &loc, 20_000, None), 64);
        if !past.is_empty() {
            fail(case, "an offset past the end must read nothing");
        }
        ok(case, "delete", self.store.delete(loc.as_str().into()));
    }

    fn delete_then_not_found(&self) {
        let case = "delete_then_not_found";
        let loc = self.put(case, &ImageId::random().to_string(), b"short-lived", 4);
        ok(case, "delete", self.store.delete(loc.as_str().into()));
        let checks = [
            ("get", kind_of(self.store.get(loc.as_str().into(), 0, ROption::RNone))),
            ("size", kind_of(self.store.size(loc.as_str().into()))),
            ("delete again", kind_of(self.store.delete(loc.as_str().into()))),
        ];
        for (what, kind) in checks {
            if kind != Some(ErrorKind::NOT_FOUND) {
                fail(case, format!("{what} of a deleted location gave {kind:?}, not NOT_FOUND"));
            }
        }
    }

    fn duplicate_id_is_refused(&self) {
        let case = "duplicate_id_is_refused";
        let id = ImageId::random().to_string();
        let loc = self.put(case, &id, b"first", 5);
        // Refused at add, or at the latest at finish; never a silent overwrite.
        let refused = match self.store.add(id.as_str().into(), ROption::RNone).into_result() {
            Err(e) => Some(Error::from(e).kind),
            Ok(mut w) => {
                ok(case, "write", w.write(b"second"[..].into()));
                kind_of(w.finish())
            }
        };
        if refused != Some(ErrorKind::DUPLICATE) {
            fail(case, format!("a second add of the same image id gave {refused:?}, not DUPLICATE"));
        }
        let back = self.read_all(case, self.get(case, &loc, 0, None), 64);
        if back != b"first" {
            fail(case, "the refused second write changed the first image's data");
        }
        ok(case, "delete", self.store.delete(loc.as_str().into()));
    }

    fn abort_leaves_nothing(&self) {
        let case = "abort_leaves_nothing";
        let id = ImageId::random().to_string();
        let mut w = self.add(case, &id, None);
        ok(case, "write", w.write(pattern(100_000, 4).as_slice().into()));
        ok(case, "abort", w.abort());
        // Nothing of the aborted write may show through a new write of the same image.
        let loc = self.put(case, &id, b"fresh", 2);
        if self.read_all(case, self.get(case, &loc, 0, None), 64) != b"fresh" {
            fail(case, "data of an aborted write survived");
        }
        ok(case, "discard after finish", self.store.discard(id.as_str().into()));
        ok(case, "delete", self.store.delete(loc.as_str().into()));
    }

    fn drop_leaves_nothing(&self) {
        let case = "drop_leaves_nothing";
        let id = ImageId::random().to_string();
        let mut w = self.add(case, &id, None);
        ok(case, "write", w.write(pattern(50_000, 5).as_slice().into()));
        drop(w);
        let loc = self.put(case, &id, b"after drop", 3);
        if self.read_all(case, self.get(case, &loc, 0, None), 64) != b"after drop" {
            fail(case, "data of a dropped write survived");
        }
        ok(case, "delete", self.store.delete(loc.as_str().into()));
    }

    fn discard_of_unknown_id_is_ok(&self) {
        let case = "discard_of_unknown_id_is_ok";
        let id = ImageId::random().to_string();
        ok(case, "discard", self.store.discard(id.as_str().into()));
    }

    fn empty_image(&self) {
        let case = "empty_image";
        let loc = self.put(case, &ImageId::random().to_string(), b"", 1);
        if ok(case, "size", self.store.size(loc.as_str().into())) != 0 {
            fail(case, "an empty image must have size 0");
        }
        if !self.read_all(case, self.get(case, &loc, 0, None), 64).is_empty() {
            fail(case, "an empty image must read nothing");
        }
        ok(case, "delete", self.store.delete(loc.as_str().into()));
    }
}
