//! The fs store against the sdk's store conformance suite, on a real directory, plus the
//! fs-specific promises: no `.partial` file outlives its upload, and no location escapes
//! the datadir.

use tank_plugin_fs::FsStore;
use tank_sdk::{ErrorKind, OpenContext, Store};

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn passes_the_store_conformance_suite_and_leaves_the_datadir_empty() {
    let tmp = tempfile::tempdir().unwrap();
    tank_sdk::conformance::store::run::<FsStore>(
        serde_json::json!({"datadir": "images"}),
        tmp.path(),
        &["file", "filesystem"],
    );
    assert!(files(&tmp.path().join("images")).is_empty(), "left behind: {:?}", files(&tmp.path().join("images")));
}

fn open(dir: &std::path::Path) -> FsStore {
    FsStore::open(&OpenContext {
        name: "filesystem".into(),
        config: serde_json::json!({"datadir": "images"}),
        config_dir: dir.to_path_buf(),
    })
    .unwrap()
}

#[test]
fn discard_removes_the_partial_file_of_a_crashed_upload() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let id = "0b7c3a2e-8f4b-4a9e-9d3c-2f1e5b6a7c8d";
    let mut w = store.add(id, None).unwrap();
    w.write(b"half an image").unwrap();
    // A crash: the writer is never finished nor aborted.
    std::mem::forget(w);
    assert_eq!(files(&tmp.path().join("images")), [format!("{id}.partial")]);
    store.discard(id).unwrap();
    assert!(files(&tmp.path().join("images")).is_empty());
}

#[test]
fn locations_outside_the_datadir_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("secret"), b"not an image").unwrap();
    let store = open(tmp.path());
    let datadir = tmp.path().join("images").canonicalize().unwrap();
    let outside = [
        format!("file://{}/secret", tmp.path().canonicalize().unwrap().display()),
        format!("file://{}/../secret", datadir.display()),
        "file:///etc/passwd".to_owned(),
        format!("s3://{}/x", datadir.display()),
    ];
    for loc in outside {
        assert_eq!(store.size(&loc).unwrap_err().kind, ErrorKind::INVALID_INPUT, "{loc}");
        assert_eq!(store.delete(&loc).unwrap_err().kind, ErrorKind::INVALID_INPUT, "{loc}");
    }
    assert!(tmp.path().join("secret").exists());
    assert_eq!(store.add("../secret", None).err().map(|e| e.kind), Some(ErrorKind::INVALID_INPUT));
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

#[test]
fn passes_the_suite_with_direct_io_too() {
    let tmp = tempfile::tempdir().unwrap();
    tank_sdk::conformance::store::run::<FsStore>(
        serde_json::json!({"datadir": "images", "direct_io": true}),
        tmp.path(),
        &["file", "filesystem"],
    );
    assert!(files(&tmp.path().join("images")).is_empty());
}
