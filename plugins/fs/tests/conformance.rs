//! The fs store against the sdk's store conformance suite, on a real directory, plus the
//! fs-specific promises: no `.partial` file outlives its upload, finished data is never
//! replaced, and no location or image id leads outside the datadir.

use std::path::{Path, PathBuf};

use tank_plugin_fs::FsStore;
use tank_sdk::{ErrorKind, OpenContext, Store};

/// Every entry of `dir`, sorted: what the store left there.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn suite(config: serde_json::Value) {
    let tmp = tempfile::tempdir().unwrap();
    let datadir = tmp.path().join("images");
    // The store creates the datadir when it opens; until then there is nothing to list.
    let leftovers = || if datadir.exists() { files(&datadir) } else { Vec::new() };
    tank_sdk::conformance::store::run_with::<FsStore>(config, tmp.path(), &["file", "filesystem"], leftovers);
}

#[test]
fn passes_the_store_conformance_suite_leaving_no_file_behind() {
    // Direct I/O, the default.
    suite(serde_json::json!({"datadir": "images"}));
}

#[test]
fn passes_the_suite_with_page_cache_writes_too() {
    suite(serde_json::json!({"datadir": "images", "direct_io": false}));
}

fn open(dir: &Path) -> FsStore {
    FsStore::open(&OpenContext {
        name: "filesystem".into(),
        config: serde_json::json!({"datadir": "images"}),
        config_dir: dir.to_path_buf(),
    })
    .unwrap()
}

fn datadir(tmp: &tempfile::TempDir) -> PathBuf {
    tmp.path().join("images").canonicalize().unwrap()
}

const ID: &str = "0b7c3a2e-8f4b-4a9e-9d3c-2f1e5b6a7c8d";

#[test]
fn an_upload_is_a_partial_file_until_finish_and_nothing_after_abort_or_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tank_sdk::__private::open_store_in_process::<FsStore>(
        "filesystem",
        &serde_json::json!({"datadir": "images"}),
        tmp.path(),
    )
    .unwrap();
    let dir = datadir(&tmp);
    let partial = [format!("{ID}.partial")];

    let mut w = store.add(ID.into(), None.into()).unwrap();
    w.write(b"some data"[..].into()).unwrap();
    assert_eq!(files(&dir), partial);
    w.abort().unwrap();
    assert!(files(&dir).is_empty(), "after abort: {:?}", files(&dir));

    let mut w = store.add(ID.into(), None.into()).unwrap();
    w.write(b"some data"[..].into()).unwrap();
    assert_eq!(files(&dir), partial);
    // The host drops a writer when its client goes away mid-upload.
    drop(w);
    assert!(files(&dir).is_empty(), "after drop: {:?}", files(&dir));

    let mut w = store.add(ID.into(), None.into()).unwrap();
    w.write(b"some data"[..].into()).unwrap();
    let location = w.finish().unwrap();
    assert_eq!(location.as_str(), format!("file://{}/{ID}", dir.display()));
    assert_eq!(files(&dir), [ID]);
}

#[test]
fn discard_removes_the_partial_file_of_a_crashed_upload() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let mut w = store.add(ID, None).unwrap();
    w.write(b"half an image").unwrap();
    // A crash: the writer is never finished nor aborted.
    std::mem::forget(w);
    assert_eq!(files(&datadir(&tmp)), [format!("{ID}.partial")]);
    store.discard(ID).unwrap();
    assert!(files(&datadir(&tmp)).is_empty());
    store.discard(ID).unwrap();
}

#[test]
fn data_that_appears_during_an_upload_is_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let mut w = store.add(ID, None).unwrap();
    w.write(b"second").unwrap();
    // Another writer finished first (the host never lets this happen; the store holds
    // even if it does).
    std::fs::write(datadir(&tmp).join(ID), b"first").unwrap();
    assert_eq!(w.finish().err().map(|e| e.kind), Some(ErrorKind::DUPLICATE));
    assert_eq!(std::fs::read(datadir(&tmp).join(ID)).unwrap(), b"first");
    assert_eq!(files(&datadir(&tmp)), [ID]);
}

#[test]
fn image_ids_are_uuids_in_their_canonical_form() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    for bad in ["../secret", "a/b", "", "------------------------------------", "0b7c3a2e"] {
        assert_eq!(store.add(bad, None).err().map(|e| e.kind), Some(ErrorKind::INVALID_INPUT), "{bad:?}");
        assert_eq!(store.discard(bad).err().map(|e| e.kind), Some(ErrorKind::INVALID_INPUT), "{bad:?}");
    }
    // Another spelling of a UUID names the same file as the canonical one.
    let w = store.add(&ID.to_uppercase(), None).unwrap();
    let location = w.finish().unwrap();
    assert_eq!(location, format!("file://{}/{ID}", datadir(&tmp).display()));
    assert_eq!(store.add(ID, None).err().map(|e| e.kind), Some(ErrorKind::DUPLICATE));
}

#[test]
fn locations_outside_the_datadir_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("secret"), b"not an image").unwrap();
    let store = open(tmp.path());
    let dir = datadir(&tmp);
    std::fs::write(dir.join(ID), b"an image").unwrap();
    let d = dir.display();
    let outside = [
        format!("file://{}/secret", tmp.path().canonicalize().unwrap().display()),
        format!("file://{d}/../secret"),
        format!("file://{d}/../images/{ID}"),
        format!("file://{d}/./{ID}"),
        format!("file://{d}//{ID}"),
        format!("file://{d}/{ID}/"),
        format!("file://{d}/{}", ID.to_uppercase()),
        format!("file://{d}/{ID}.partial"),
        format!("file://{}/images/{ID}", tmp.path().display()).replace("/images/", "/./images/"),
        "file:///etc/passwd".to_owned(),
        format!("s3://{d}/{ID}"),
        format!("{d}/{ID}"),
    ];
    for loc in outside {
        assert_eq!(store.size(&loc).err().map(|e| e.kind), Some(ErrorKind::INVALID_INPUT), "{loc}");
        assert_eq!(store.get(&loc, 0, None).err().map(|e| e.kind), Some(ErrorKind::INVALID_INPUT), "{loc}");
        assert_eq!(store.delete(&loc).err().map(|e| e.kind), Some(ErrorKind::INVALID_INPUT), "{loc}");
    }
    assert!(tmp.path().join("secret").exists());
    // Both schemes of the manifest name the same file.
    assert_eq!(store.size(&format!("file://{d}/{ID}")).unwrap(), 8);
    assert_eq!(store.size(&format!("FILESYSTEM://{d}/{ID}")).unwrap(), 8);
}

#[test]
fn links_and_directories_in_the_datadir_are_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("secret"), b"not an image").unwrap();
    let store = open(tmp.path());
    let dir = datadir(&tmp);
    // Someone with access to the datadir planted a link out of it, and a directory.
    std::os::unix::fs::symlink(tmp.path().join("secret"), dir.join(ID)).unwrap();
    let other = "5f0e0a4c-7a2b-4c1d-8e9f-0a1b2c3d4e5f";
    std::fs::create_dir(dir.join(other)).unwrap();
    for id in [ID, other] {
        let loc = format!("file://{}/{id}", dir.display());
        assert_eq!(store.get(&loc, 0, None).err().map(|e| e.kind), Some(ErrorKind::INVALID_INPUT), "{id}");
        let e = store.size(&loc).unwrap_err();
        assert_eq!(e.kind, ErrorKind::INVALID_INPUT, "{id}");
        assert!(e.message.contains("not a regular file"), "{}", e.message);
    }
    // Deleting the link removes the link, never its target.
    store.delete(&format!("file://{}/{ID}", dir.display())).unwrap();
    assert_eq!(std::fs::read(tmp.path().join("secret")).unwrap(), b"not an image");
}

#[test]
fn a_missing_datadir_is_created_and_a_bad_one_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    open(tmp.path());
    assert!(tmp.path().join("images").is_dir());
    std::fs::write(tmp.path().join("file"), b"").unwrap();
    let err = FsStore::open(&OpenContext {
        name: "filesystem".into(),
        config: serde_json::json!({"datadir": "file/images"}),
        config_dir: tmp.path().to_path_buf(),
    })
    .err()
    .unwrap();
    assert!(err.message.contains("file/images"), "{}", err.message);
}
