//! The registry-driver suite: what the host relies on from every registry driver, checked
//! through the same ABI object (records as JSON) the host holds after loading a plugin.
//!
//! # What a driver must do to pass
//! - `create` then `get` gives back the image exactly, every field included; `create` of an
//!   existing id is `DUPLICATE`, `get` of an unknown id `NOT_FOUND`.
//! - `update` at the current revision succeeds and changes the revision; at any other
//!   revision it is `CONFLICT` and changes nothing; of an unknown id it is `NOT_FOUND`.
//!   Several threads that read, modify and update one image, retrying on `CONFLICT`, never
//!   lose a change.
//! - `list` answers every query exactly as [`ListQuery::page`] answers it over all records,
//!   page after page through markers; a marker naming no image is `INVALID_INPUT`.
//! - `with_status` returns exactly the images in those statuses, deleted ones included.
//! - `remove` forgets an image; removing it again is `NOT_FOUND`.
//!
//! The suite needs an **empty** database and leaves it empty when it passes.

use std::path::Path;

use abi_stable::std_types::{RBox, RResult};

use crate::{
    abi::{PluginError, RegistryV1_TO},
    export::{open_registry_in_process, Meta},
    image::{
        query::{ListQuery, SortDir, SortKey, Viewer},
        ContainerFormat, DiskFormat, Image, ImageId, Location, Member, Status, Timestamp,
    },
    Error, ErrorKind, RegistryDriver,
};

/// Runs every registry case against driver type `R`, opened as the host would open it
/// with `config` (its `[registry.<name>]` table as JSON, pointing at an **empty**
/// database) and `config_dir`.
///
/// # Panics
/// On the first case that fails, naming it: ``registry conformance case `<case>`: <what>``.
pub fn run<R: RegistryDriver + Meta>(config: serde_json::Value, config_dir: &Path) {
    let registry = open_registry_in_process::<R>(R::NAME, &config, config_dir)
        .unwrap_or_else(|e| panic!("registry conformance: opening {} failed: {} ({})", R::NAME, e.message, e.kind));
    run_object(&registry);
}

/// Runs every case against a registry-driver object that is already open, for example one
/// the host's loader opened from a built library. Its database must be empty.
///
/// # Panics
/// As [`run`].
pub fn run_object<'a>(registry: &'a RegistryV1_TO<'static, RBox<()>>) {
    let s = Suite { r: registry };
    let cases: [(&str, Case<'a>); 8] = [
        ("create_get_round_trip", Suite::create_get_round_trip),
        ("duplicates_and_unknown_ids", Suite::duplicates_and_unknown_ids),
        ("updates_are_compare_and_swap", Suite::updates_are_compare_and_swap),
        ("concurrent_updates_lose_nothing", Suite::concurrent_updates_lose_nothing),
        ("lists_answer_like_list_query_page", Suite::lists_answer_like_list_query_page),
        ("unknown_marker_is_invalid_input", Suite::unknown_marker_is_invalid_input),
        ("with_status_finds_exactly_those", Suite::with_status_finds_exactly_those),
        ("remove_forgets", Suite::remove_forgets),
    ];
    for (case, f) in cases {
        f(&s, case);
        let left = s.with_status(case, &Status::ALL);
        if !left.is_empty() {
            let ids: Vec<String> = left.iter().map(|i| i.id.to_string()).collect();
            fail(case, format!("after the case the database still holds {ids:?}; every case removes its images"));
        }
    }
}

/// One case: it runs against the suite's object and fails with the name it is given.
type Case<'a> = fn(&Suite<'a>, &str);

struct Suite<'a> {
    r: &'a RegistryV1_TO<'static, RBox<()>>,
}

fn fail(case: &str, what: impl std::fmt::Display) -> ! {
    panic!("registry conformance case `{case}`: {what}")
}

fn ok<T>(case: &str, step: &str, r: RResult<T, PluginError>) -> T {
    r.into_result().unwrap_or_else(|e| fail(case, format!("{step} failed: {} ({:?})", e.message, e.kind)))
}

fn kind_of<T>(r: RResult<T, PluginError>) -> Option<ErrorKind> {
    r.into_result().err().map(|e| Error::from(e).kind)
}

fn json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("the suite's own values encode")
}

fn at(n: i64) -> Timestamp {
    Timestamp::from_unix_micros(1_600_000_000_000_000 + n * 1_000)
}

/// Image number `n` of a varied set: names repeat (so sorts need their tie-breakers),
/// sizes, statuses, visibility, owners and properties differ, and some images are hidden
/// from default lists (killed, deleted).
fn image(n: i64) -> Image {
    let mut i = Image::new(ImageId::random(), at(n));
    i.name = Some(format!("image-{:02}", (n * 7) % 23));
    i.size = (n as u64 * 1_000_003) % 50_000;
    i.status = match n % 11 {
        0 => Status::Queued,
        3 => Status::Killed,
        _ => Status::Active,
    };
    if n % 13 == 4 {
        i.status = Status::Deleted;
        i.deleted = true;
        i.deleted_at = Some(at(n + 500));
    }
    i.updated_at = at(1_000 - n);
    i.is_public = n % 2 == 0;
    i.owner = match n % 3 {
        0 => None,
        1 => Some("tenant-a".into()),
        _ => Some("tenant-b".into()),
    };
    if n % 4 == 1 {
        i.members.push(Member { member_id: "tenant-a".into(), can_share: false });
    }
    i.disk_format = Some(if n % 2 == 0 { DiskFormat::Qcow2 } else { DiskFormat::Raw });
    i.properties.insert("n".into(), n.to_string());
    i.properties.insert("parity".into(), if n % 2 == 0 { "even" } else { "odd" }.into());
    i
}

impl Suite<'_> {
    fn create(&self, case: &str, image: &Image) -> u64 {
        ok(case, "create", self.r.create(json(image).as_str().into()))
    }

    fn get(&self, case: &str, id: ImageId) -> (u64, Image) {
        let rec = ok(case, "get", self.r.get(id.to_string().as_str().into()));
        let image = serde_json::from_str(rec.json.as_str())
            .unwrap_or_else(|e| fail(case, format!("get returned a record that is not an image: {e}")));
        (rec.revision, image)
    }

    fn update(&self, image: &Image, revision: u64) -> RResult<u64, PluginError> {
        self.r.update(image.id.to_string().as_str().into(), revision, json(image).as_str().into())
    }

    fn remove(&self, case: &str, id: ImageId) {
        ok(case, "remove", self.r.remove(id.to_string().as_str().into()));
    }

    fn list(&self, case: &str, q: &ListQuery) -> Vec<Image> {
        let text = ok(case, "list", self.r.list(json(q).as_str().into()));
        serde_json::from_str(text.as_str()).unwrap_or_else(|e| fail(case, format!("list returned bad JSON: {e}")))
    }

    fn with_status(&self, case: &str, statuses: &[Status]) -> Vec<Image> {
        let text = ok(case, "with_status", self.r.with_status(json(statuses).as_str().into()));
        serde_json::from_str(text.as_str())
            .unwrap_or_else(|e| fail(case, format!("with_status returned bad JSON: {e}")))
    }

    fn expect_kind<T>(&self, case: &str, what: &str, r: RResult<T, PluginError>, want: ErrorKind) {
        let got = kind_of(r);
        if got != Some(want) {
            let got = got.map_or_else(|| "success".to_owned(), |k| format!("{k:?}"));
            fail(case, format!("{what} gave {got}, not {want:?}"));
        }
    }

    fn create_get_round_trip(&self, case: &str) {
        // Every field set away from its default, so a driver that drops one is caught.
        let mut img = image(1);
        img.status = Status::PendingDelete;
        img.size = u64::MAX / 3;
        img.container_format = Some(ContainerFormat::Bare);
        img.checksum = Some("0123456789abcdef0123456789abcdef".into());
        img.min_ram = 2048;
        img.min_disk = 20;
        img.protected = true;
        img.deleted_at = Some(at(77));
        img.deleted = true;
        img.properties.insert("kernel_id".into(), "a b/c ü \"quoted\"".into());
        img.members.push(Member { member_id: "tenant-c".into(), can_share: true });
        img.store = Some("filesystem".into());
        img.location = Some(Location::parse("file:///var/lib/tank/images/x").expect("a valid location"));
        self.create(case, &img);
        let (_, back) = self.get(case, img.id);
        if back != img {
            fail(case, format!("get returned\n{back:?}\nbut create was given\n{img:?}"));
        }
        self.remove(case, img.id);
    }

    fn duplicates_and_unknown_ids(&self, case: &str) {
        let img = image(2);
        self.create(case, &img);
        let mut again = img.clone();
        again.name = Some("impostor".into());
        self.expect_kind(
            case,
            "creating an existing id",
            self.r.create(json(&again).as_str().into()),
            ErrorKind::DUPLICATE,
        );
        if self.get(case, img.id).1 != img {
            fail(case, "the refused create changed the existing image");
        }
        let unknown = ImageId::random().to_string();
        self.expect_kind(case, "get of an unknown id", self.r.get(unknown.as_str().into()), ErrorKind::NOT_FOUND);
        self.remove(case, img.id);
    }

    fn updates_are_compare_and_swap(&self, case: &str) {
        let mut img = image(3);
        let r1 = self.create(case, &img);
        img.name = Some("renamed".into());
        let r2 = ok(case, "update", self.update(&img, r1));
        if r2 == r1 {
            fail(case, "an update must change the revision");
        }
        let (rev, back) = self.get(case, img.id);
        if rev != r2 || back != img {
            fail(case, format!("after an update get says revision {rev} and {back:?}, want {r2} and {img:?}"));
        }
        let mut stale = img.clone();
        stale.name = Some("stale".into());
        self.expect_kind(case, "an update at a stale revision", self.update(&stale, r1), ErrorKind::CONFLICT);
        self.expect_kind(case, "an update at a future revision", self.update(&stale, r2 + 1), ErrorKind::CONFLICT);
        let (rev, back) = self.get(case, img.id);
        if rev != r2 || back.name.as_deref() != Some("renamed") {
            fail(case, "a refused update changed the record");
        }
        img.name = Some("renamed again".into());
        let r3 = ok(case, "a second update", self.update(&img, r2));
        if r3 == r2 || r3 == r1 {
            fail(case, format!("revisions must not repeat: {r1}, {r2}, then {r3}"));
        }
        let ghost = image(4);
        self.expect_kind(case, "an update of an unknown id", self.update(&ghost, r1), ErrorKind::NOT_FOUND);
        self.remove(case, img.id);
    }

    fn concurrent_updates_lose_nothing(&self, case: &str) {
        let img = image(5);
        self.create(case, &img);
        let (threads, each) = (4, 25);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        for _ in 0..each {
                            loop {
                                let (rev, mut cur) = self.get(case, img.id);
                                let n: u64 = cur.properties.get("count").map_or(0, |c| c.parse().unwrap_or(0));
                                cur.properties.insert("count".into(), (n + 1).to_string());
                                match self.update(&cur, rev).into_result() {
                                    Ok(_) => break,
                                    Err(e) if e.kind == ErrorKind::CONFLICT => continue,
                                    Err(e) => fail(case, format!("update failed: {} ({:?})", e.message, e.kind)),
                                }
                            }
                        }
                    })
                })
                .collect();
            // Re-raise a thread's own panic, so its message names the case.
            for h in handles {
                h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            }
        });
        let (_, done) = self.get(case, img.id);
        let count = done.properties.get("count").cloned().unwrap_or_default();
        if count != (threads * each).to_string() {
            fail(case, format!("{} successful increments, but the record says {count:?}", threads * each));
        }
        self.remove(case, img.id);
    }

    fn lists_answer_like_list_query_page(&self, case: &str) {
        let all: Vec<Image> = (10..50).map(image).collect();
        for i in &all {
            self.create(case, i);
        }
        let admin = ListQuery::new(Viewer::admin());
        let tenant = ListQuery::new(Viewer { is_admin: false, tenant: Some("tenant-a".into()) });
        let mut queries = vec![admin.clone(), tenant.clone(), ListQuery { limit: 4, ..tenant.clone() }];
        let sorts = [
            (SortKey::Name, SortDir::Asc),
            (SortKey::Name, SortDir::Desc),
            (SortKey::Size, SortDir::Desc),
            (SortKey::Id, SortDir::Asc),
            (SortKey::Status, SortDir::Asc),
            (SortKey::DiskFormat, SortDir::Desc),
            (SortKey::CreatedAt, SortDir::Asc),
            (SortKey::UpdatedAt, SortDir::Asc),
        ];
        for (key, dir) in sorts {
            queries.push(ListQuery { sort_key: key, sort_dir: dir, limit: 7, ..admin.clone() });
        }
        let mut q = ListQuery { limit: 5, ..admin.clone() };
        q.filters.is_public = Some(true);
        q.filters.size_min = Some(10_000);
        queries.push(q);
        let mut q = ListQuery { limit: 100, ..admin.clone() };
        q.filters.status = Some(Status::Queued);
        queries.push(q);
        let mut q = ListQuery { limit: 3, ..admin.clone() };
        q.filters.properties.insert("parity".into(), "odd".into());
        q.filters.disk_format = Some(DiskFormat::Raw);
        queries.push(q);
        let mut q = ListQuery { limit: 100, ..admin.clone() };
        q.filters.name = all[0].name.clone();
        queries.push(q);
        let mut q = ListQuery { limit: 100, sort_key: SortKey::UpdatedAt, ..tenant.clone() };
        // Changed recently: includes deleted images, which lists otherwise hide.
        q.filters.changes_since = Some(at(1_000 - 30));
        queries.push(q);
        for mut q in queries {
            // Walk every page through markers, comparing each with the reference answer.
            let mut pages = 0;
            loop {
                let marker = q.marker.map(|m| all.iter().find(|i| i.id == m).expect("a marker from the set").clone());
                let want = q.page(all.clone(), marker.as_ref());
                let got = self.list(case, &q);
                if got != want {
                    let names = |v: &[Image]| v.iter().map(|i| i.name.clone().unwrap_or_default()).collect::<Vec<_>>();
                    fail(case, format!("page {pages} of {q:?}\n got {:?}\nwant {:?}", names(&got), names(&want)));
                }
                pages += 1;
                match got.last() {
                    Some(last) if got.len() == q.limit as usize => q.marker = Some(last.id),
                    _ => break,
                }
            }
        }
        for i in &all {
            self.remove(case, i.id);
        }
    }

    fn unknown_marker_is_invalid_input(&self, case: &str) {
        let img = image(6);
        self.create(case, &img);
        let q = ListQuery { marker: Some(ImageId::random()), ..ListQuery::new(Viewer::admin()) };
        self.expect_kind(
            case,
            "a list after an unknown marker",
            self.r.list(json(&q).as_str().into()),
            ErrorKind::INVALID_INPUT,
        );
        self.remove(case, img.id);
    }

    fn with_status_finds_exactly_those(&self, case: &str) {
        let mut saving = image(50);
        saving.status = Status::Saving;
        let mut deleted = image(51);
        deleted.status = Status::PendingDelete;
        deleted.deleted = true;
        let active = image(52);
        for i in [&saving, &deleted, &active] {
            self.create(case, i);
        }
        let mut ids: Vec<String> =
            self.with_status(case, &[Status::Saving, Status::PendingDelete]).iter().map(|i| i.id.to_string()).collect();
        ids.sort();
        let mut want = vec![saving.id.to_string(), deleted.id.to_string()];
        want.sort();
        if ids != want {
            fail(case, format!("with_status [saving, pending_delete] returned {ids:?}, want {want:?}"));
        }
        let got = self.with_status(case, &[Status::Saving]);
        if got != [saving.clone()] {
            fail(case, format!("with_status [saving] returned {got:?}, want exactly {saving:?}"));
        }
        if !self.with_status(case, &[]).is_empty() {
            fail(case, "with_status of no statuses must return nothing");
        }
        for i in [&saving, &deleted, &active] {
            self.remove(case, i.id);
        }
    }

    fn remove_forgets(&self, case: &str) {
        let img = image(60);
        let keep = image(61);
        self.create(case, &img);
        self.create(case, &keep);
        self.remove(case, img.id);
        let id = img.id.to_string();
        self.expect_kind(case, "get after remove", self.r.get(id.as_str().into()), ErrorKind::NOT_FOUND);
        self.expect_kind(case, "a second remove", self.r.remove(id.as_str().into()), ErrorKind::NOT_FOUND);
        if self.get(case, keep.id).1 != keep {
            fail(case, "removing one image changed another");
        }
        // A removed id is free again.
        self.create(case, &img);
        self.remove(case, img.id);
        self.remove(case, keep.id);
    }
}

#[cfg(test)]
mod tests {
    //! The suite against a small in-memory driver with one fault at a time: each fault must
    //! make the case meant to catch it fail.

    use std::{
        collections::BTreeMap,
        panic::{catch_unwind, AssertUnwindSafe},
        sync::Mutex,
    };

    use super::*;
    use crate::{OpenContext, Result, Revision, Revisioned};

    #[derive(Clone, Copy, PartialEq, Debug, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Fault {
        None,
        DropsMembers,
        DuplicatesOverwrite,
        NoRevisionCheck,
        IgnoresSortDir,
        UnknownMarkerStartsOver,
        WithStatusSkipsDeleted,
        RemoveKeepsRecord,
    }

    struct Mem {
        records: Mutex<BTreeMap<ImageId, (Revision, Image)>>,
        fault: Fault,
    }

    impl Meta for Mem {
        const NAME: &'static str = "mem";
        const VERSION: &'static str = "0.0.0";
    }

    #[derive(serde::Deserialize)]
    struct Config {
        fault: Fault,
    }

    impl RegistryDriver for Mem {
        fn open(ctx: &OpenContext) -> Result<Self> {
            Ok(Mem { records: Default::default(), fault: ctx.config::<Config>()?.fault })
        }

        fn create(&self, image: &Image) -> Result<Revision> {
            let mut image = image.clone();
            if self.fault == Fault::DropsMembers {
                image.members.clear();
            }
            let mut r = self.records.lock().unwrap();
            if r.contains_key(&image.id) && self.fault != Fault::DuplicatesOverwrite {
                return Err(Error::duplicate(image.id.to_string()));
            }
            r.insert(image.id, (1, image));
            Ok(1)
        }

        fn get(&self, id: ImageId) -> Result<Revisioned<Image>> {
            let r = self.records.lock().unwrap();
            let (revision, value) = r.get(&id).cloned().ok_or_else(|| Error::not_found(id.to_string()))?;
            Ok(Revisioned { revision, value })
        }

        fn update(&self, image: &Image, revision: Revision) -> Result<Revision> {
            let mut r = self.records.lock().unwrap();
            let (current, stored) = r.get_mut(&image.id).ok_or_else(|| Error::not_found(image.id.to_string()))?;
            if *current != revision && self.fault != Fault::NoRevisionCheck {
                return Err(Error::new(ErrorKind::CONFLICT, "stale"));
            }
            *current += 1;
            *stored = image.clone();
            Ok(*current)
        }

        fn remove(&self, id: ImageId) -> Result<()> {
            let mut r = self.records.lock().unwrap();
            if self.fault == Fault::RemoveKeepsRecord {
                return Ok(());
            }
            r.remove(&id).map(drop).ok_or_else(|| Error::not_found(id.to_string()))
        }

        fn list(&self, query: &ListQuery) -> Result<Vec<Image>> {
            let r = self.records.lock().unwrap();
            let marker = match query.marker {
                Some(m) if self.fault == Fault::UnknownMarkerStartsOver => r.get(&m).map(|(_, i)| i.clone()),
                Some(m) => {
                    Some(r.get(&m).ok_or_else(|| Error::invalid_input(format!("marker {m} not found")))?.1.clone())
                }
                None => None,
            };
            let mut q = query.clone();
            if self.fault == Fault::IgnoresSortDir {
                q.sort_dir = SortDir::Desc;
            }
            Ok(q.page(r.values().map(|(_, i)| i.clone()), marker.as_ref()))
        }

        fn with_status(&self, statuses: &[Status]) -> Result<Vec<Image>> {
            let r = self.records.lock().unwrap();
            let keep = |i: &&Image| {
                statuses.contains(&i.status) && !(self.fault == Fault::WithStatusSkipsDeleted && i.deleted)
            };
            Ok(r.values().map(|(_, i)| i).filter(keep).cloned().collect())
        }
    }

    /// Runs the suite on a fresh driver with `fault`; returns the panic message, if any.
    fn suite_with(fault: &str) -> Option<String> {
        let config = serde_json::json!({ "fault": fault });
        let r = catch_unwind(AssertUnwindSafe(|| run::<Mem>(config, Path::new("/"))));
        r.err().map(|p| p.downcast_ref::<String>().cloned().unwrap_or_else(|| "a non-text panic".into()))
    }

    #[test]
    fn a_correct_driver_passes() {
        assert_eq!(suite_with("none"), None);
    }

    #[test]
    fn each_fault_fails_the_case_meant_to_catch_it() {
        let faults = [
            ("drops_members", "create_get_round_trip", "but create was given"),
            ("duplicates_overwrite", "duplicates_and_unknown_ids", "existing id gave success, not duplicate"),
            ("no_revision_check", "updates_are_compare_and_swap", "stale revision gave success"),
            ("ignores_sort_dir", "lists_answer_like_list_query_page", "sort_dir: Asc"),
            ("unknown_marker_starts_over", "unknown_marker_is_invalid_input", "gave success, not invalid-input"),
            ("with_status_skips_deleted", "with_status_finds_exactly_those", "want"),
            ("remove_keeps_record", "create_get_round_trip", "the database still holds"),
        ];
        for (fault, case, detail) in faults {
            let msg = suite_with(fault).unwrap_or_else(|| panic!("the suite passed a driver with fault {fault}"));
            assert!(msg.starts_with(&format!("registry conformance case `{case}`: ")), "{fault}: {msg}");
            assert!(msg.contains(detail), "{fault}: {msg}");
        }
    }
}
