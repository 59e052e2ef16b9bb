//! The sled driver against the sdk's registry conformance suite, on a real database, plus
//! what is particular to sled: durability across a reopen, one process per database, and
//! errors that name the database and the record.

use std::path::Path;

use tank_plugin_sled::SledDriver;
use tank_sdk::{
    image::{Image, ImageId, Timestamp},
    ErrorKind, OpenContext, RegistryDriver,
};

fn ctx(dir: &Path, path: &str) -> OpenContext {
    OpenContext { name: "sled".into(), config: serde_json::json!({ "path": path }), config_dir: dir.to_path_buf() }
}

#[test]
fn passes_the_registry_conformance_suite() {
    let tmp = tempfile::tempdir().unwrap();
    tank_sdk::conformance::registry::run::<SledDriver>(serde_json::json!({"path": "registry"}), tmp.path());
}

#[test]
fn records_survive_a_reopen_and_a_second_opener_is_told_why_not() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path(), "registry");
    let mut image = Image::new(ImageId::random(), Timestamp::from_unix_micros(5));
    {
        let db = SledDriver::open(&ctx).unwrap();
        let r1 = db.create(&image).unwrap();
        image.name = Some("updated".into());
        db.update(&image, r1).unwrap();
        let second = SledDriver::open(&ctx).err().expect("sled allows one opener at a time");
        assert_eq!(second.kind, ErrorKind::BACKEND);
        let want = format!(
            "registry database {} is in use by another process; stop the other tank or point [registry.sled] path \
             elsewhere",
            tmp.path().join("registry").display()
        );
        assert_eq!(second.message, want);
    }
    let db = SledDriver::open(&ctx).unwrap();
    let back = db.get(image.id).unwrap();
    assert_eq!((back.revision, back.value), (2, image));
}

#[test]
fn a_stale_update_says_which_revision_it_met() {
    let tmp = tempfile::tempdir().unwrap();
    let db = SledDriver::open(&ctx(tmp.path(), "registry")).unwrap();
    let image = Image::new(ImageId::random(), Timestamp::from_unix_micros(5));
    let r1 = db.create(&image).unwrap();
    db.update(&image, r1).unwrap();
    let e = db.update(&image, r1).unwrap_err();
    assert_eq!(e.kind, ErrorKind::CONFLICT);
    assert!(e.message.contains("(revision 2, not 1)"), "{}", e.message);
}

#[test]
fn a_corrupt_record_is_named_and_an_unusable_path_too() {
    let tmp = tempfile::tempdir().unwrap();
    let id = ImageId::random();
    {
        // Something other than the driver wrote the database.
        let raw = sled::open(tmp.path().join("registry")).unwrap();
        raw.insert(id.as_bytes(), &b"not json"[..]).unwrap();
        raw.flush().unwrap();
    }
    let db = SledDriver::open(&ctx(tmp.path(), "registry")).unwrap();
    let e = db.get(id).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BACKEND);
    assert!(e.message.contains(&id.to_string()) && e.message.contains("corrupt"), "{}", e.message);
    assert!(e.message.contains(&tmp.path().join("registry").display().to_string()), "{}", e.message);

    std::fs::write(tmp.path().join("plain-file"), b"").unwrap();
    let e = SledDriver::open(&ctx(tmp.path(), "plain-file")).err().unwrap();
    assert!(e.message.starts_with("cannot open registry database "), "{}", e.message);
    assert!(e.message.contains("plain-file"), "{}", e.message);
}

/// Set in a child copy of this test binary: the database directory it writes to.
const CHILD_DIR: &str = "TANK_SLED_TEST_CHILD_DIR";

/// In the child: `create` two images, then `update` the first and `remove` the second, in
/// that order and stopping after the operation named by `last`, then leave the process at
/// once. `process::exit` runs no destructors, so the database is never dropped (which
/// would flush it) and sled's background flusher gets no time: only the driver's own
/// flush can have put the last write on disk.
fn child(dir: &Path, a: ImageId, b: ImageId, last: &str) -> ! {
    let db = SledDriver::open(&ctx(dir, "registry")).unwrap();
    let mut image = Image::new(a, Timestamp::from_unix_micros(5));
    db.create(&Image::new(b, Timestamp::from_unix_micros(6))).unwrap();
    let r1 = db.create(&image).unwrap();
    if last != "create" {
        image.name = Some("updated".into());
        db.update(&image, r1).unwrap();
        if last != "update" {
            db.remove(b).unwrap();
        }
    }
    std::process::exit(0)
}

#[test]
fn every_write_is_durable_when_it_returns() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let var = |k: &str| std::env::var(k).unwrap();
        child(Path::new(&dir), var("A").parse().unwrap(), var("B").parse().unwrap(), &var("LAST"));
    }
    for last in ["create", "update", "remove"] {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (ImageId::random(), ImageId::random());
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "every_write_is_durable_when_it_returns", "--nocapture"])
            .env(CHILD_DIR, tmp.path())
            .env("A", a.to_string())
            .env("B", b.to_string())
            .env("LAST", last)
            .status()
            .unwrap();
        assert!(status.success(), "the child writing up to {last} failed");
        let db = SledDriver::open(&ctx(tmp.path(), "registry")).unwrap();
        let got = db.get(a).unwrap_or_else(|e| panic!("after {last}: {}", e.message));
        let want_revision = if last == "create" { 1 } else { 2 };
        assert_eq!(got.revision, want_revision, "after {last}");
        let b_kind = db.get(b).err().map(|e| e.kind);
        assert_eq!(b_kind, (last == "remove").then_some(ErrorKind::NOT_FOUND), "after {last}");
    }
}
