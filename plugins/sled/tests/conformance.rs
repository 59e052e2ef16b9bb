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

/// Every sort key in both directions, whole listings and pages of 3 through markers,
/// against the model over `all`.
fn lists_like_the_model(db: &SledDriver, all: &[Image], when: &str) {
    use tank_sdk::image::query::{ListQuery, SortDir, SortKey, Viewer};
    let keys = [
        SortKey::Id,
        SortKey::Name,
        SortKey::Status,
        SortKey::DiskFormat,
        SortKey::ContainerFormat,
        SortKey::Size,
        SortKey::CreatedAt,
        SortKey::UpdatedAt,
    ];
    for key in keys {
        for dir in [SortDir::Asc, SortDir::Desc] {
            let mut q = ListQuery { sort_key: key, sort_dir: dir, limit: 3, ..ListQuery::new(Viewer::admin()) };
            loop {
                let marker = q.marker.map(|m| all.iter().find(|i| i.id == m).unwrap().clone());
                let want = q.page(all.to_vec(), marker.as_ref());
                assert_eq!(db.list(&q).unwrap(), want, "{when}: {q:?}");
                match want.last() {
                    Some(last) if want.len() == 3 => q.marker = Some(last.id),
                    _ => break,
                }
            }
        }
    }
}

#[test]
fn a_database_from_before_the_indexes_is_indexed_on_open_and_indexes_follow_writes() {
    use tank_sdk::image::{DiskFormat, Status};
    let tmp = tempfile::tempdir().unwrap();
    let mut all: Vec<Image> = (0..30)
        .map(|n| {
            let mut i = Image::new(ImageId::random(), Timestamp::from_unix_micros(n / 3));
            i.name = Some(format!("image-{}", n % 4));
            i.status = if n % 5 == 0 { Status::Saving } else { Status::Active };
            i.size = (n % 6) as u64;
            i.disk_format = (n % 2 == 0).then_some(DiskFormat::Raw);
            i.updated_at = Timestamp::from_unix_micros(100 - n % 7);
            i
        })
        .collect();
    {
        // Records as the driver wrote them before it had indexes: the default tree only.
        let raw = sled::open(tmp.path().join("registry")).unwrap();
        for i in &all {
            let record = serde_json::json!({ "revision": 1, "image": i });
            raw.insert(i.id.as_bytes(), serde_json::to_vec(&record).unwrap()).unwrap();
        }
        raw.flush().unwrap();
    }
    let db = SledDriver::open(&ctx(tmp.path(), "registry")).unwrap();
    lists_like_the_model(&db, &all, "after indexing on open");
    let mut saving: Vec<ImageId> = db.with_status(&[Status::Saving]).unwrap().into_iter().map(|i| i.id).collect();
    saving.sort();
    let mut want: Vec<ImageId> = all.iter().filter(|i| i.status == Status::Saving).map(|i| i.id).collect();
    want.sort();
    assert_eq!(saving, want);

    // Writes that move images in every index, then a reopen (which must not need to
    // rebuild to stay right).
    for (n, i) in all.iter_mut().enumerate().filter(|(n, _)| n % 3 == 0) {
        i.name = Some(format!("renamed-{}", n % 5));
        i.size += 100;
        i.status = Status::Queued;
        i.disk_format = None;
        i.updated_at = Timestamp::from_unix_micros(n as i64);
        db.update(i, 1).unwrap();
    }
    let gone = all.remove(1);
    db.remove(gone.id).unwrap();
    lists_like_the_model(&db, &all, "after updates and a remove");
    assert!(db.with_status(&[Status::Saving]).unwrap().iter().all(|i| i.id.to_string() != gone.id.to_string()));
    drop(db);
    let db = SledDriver::open(&ctx(tmp.path(), "registry")).unwrap();
    lists_like_the_model(&db, &all, "after a reopen");
}

/// Copies `from` (a sled database directory) to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn a_database_written_before_the_images_service_reads_back_migrated_with_usage_figures() {
    use tank_sdk::image::{MemberStatus, Status, Visibility};
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sled-v1");
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture.join("registry"), &tmp.path().join("registry"));
    let db = SledDriver::open(&ctx(tmp.path(), "registry")).unwrap();
    let all = db.with_status(&Status::KNOWN).unwrap();
    assert_eq!(all.len(), 8);
    let by_name = |n: &str| all.iter().find(|i| i.name.as_deref() == Some(n)).unwrap().clone();
    let private = by_name("priv");
    assert_eq!(private.visibility, Visibility::Shared);
    assert_eq!(
        private.members.iter().map(|m| (m.member_id.as_str(), m.can_share, m.status)).collect::<Vec<_>>(),
        [("friend", true, MemberStatus::Accepted), ("guest", false, MemberStatus::Accepted)]
    );
    assert_eq!(private.locations.len(), 1);
    assert_eq!(private.locations[0].store.as_deref(), Some("fs"));
    assert_eq!(by_name("pub").visibility, Visibility::Public);
    assert!(!by_name("external").locations[0].owned(), "registered by URL");
    let interrupted = by_name("interrupted").upload.expect("the upload in progress");
    assert_eq!(interrupted.store, "fs");
    // The figures were built from the records: acme's active 100000 bytes (its
    // pending_delete image counts nothing), beta's reservation nothing.
    assert_eq!((db.usage("acme").unwrap(), db.usage("beta").unwrap()), (100_000, 0));
    // Once rewritten, a record is today's schema and the figures follow.
    let record = db.get(private.id).unwrap();
    let mut changed = record.value.clone();
    changed.size = 250;
    db.update(&changed, record.revision).unwrap();
    assert_eq!(db.usage("acme").unwrap(), 250);
    drop(db);
    let db = SledDriver::open(&ctx(tmp.path(), "registry")).unwrap();
    assert_eq!(db.get(private.id).unwrap().value, changed, "rewritten and read back");
    assert_eq!(db.usage("acme").unwrap(), 250, "the figures are not rebuilt at every open");
}
