//! The registry-driver suite: what the host relies on from every registry driver, checked
//! through the same ABI object (records as JSON) the host holds after loading a plugin.
//!
//! # What a driver must do to pass
//! - `create` then `get` gives back the image exactly, every field included; `create` of an
//!   existing id is `DUPLICATE`, `get` of an unknown id `NOT_FOUND`.
//! - `update` at the current revision succeeds and changes the revision; at any other
//!   revision it is `CONFLICT` and changes nothing; of an unknown id it is `NOT_FOUND`.
//!   Several threads that read, modify and update one image, retrying on `CONFLICT`, never
//!   lose a change, and each revision has exactly one winner. Members are stored and
//!   returned with the image, through creates, updates and lists.
//! - `list` answers every query exactly as [`ListQuery::page`] (the model) answers it over
//!   all records: every filter of [`Filters`], every [`SortKey`] in both directions with
//!   ties on the sort value, every viewer (admin, owner, member, stranger, anonymous).
//!   Walking a listing page by page through markers gives the model's full order with no
//!   gap and no repeat; a marker naming no image is `INVALID_INPUT`.
//! - `with_status` returns exactly the images in those statuses, deleted ones included.
//! - `remove` forgets an image; removing it again is `NOT_FOUND`.
//! - Records keep what the driver does not know: a record carrying fields, nested fields
//!   and a status that this SDK has never heard of (a newer host's) comes back from `get`,
//!   `update`, `list` and `with_status` exactly as it was written.
//! - A list query naming a filter or sort key the driver does not know is refused with
//!   `UNSUPPORTED`, naming it (the SDK's adapter does this for every driver).
//! - If the driver answers [`USAGE_OP`], every owner's figure is the sum
//!   of [`Image::stored_bytes`] over its records, through creates, updates and removes.
//!
//! The suite needs an **empty** database and leaves it empty when it passes.

use std::path::Path;

use abi_stable::std_types::{RBox, RResult};

use crate::{
    abi::{PluginError, RegistryV1_TO},
    export::{open_registry_in_process, Meta},
    image::{
        query::{Cmp, Filters, InField, ListQuery, SortDir, SortKey, TimeField, TimeFilter, Viewer, VisibilityFilter},
        ContainerFormat, DiskFormat, Image, ImageId, ImageLocation, Location, Member, MemberStatus, Status, Timestamp,
        Upload, Visibility,
    },
    Error, ErrorKind, RegistryDriver, USAGE_OP,
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
    let cases: [(&str, Case<'a>); 15] = [
        ("create_get_round_trip", Suite::create_get_round_trip),
        ("duplicates_and_unknown_ids", Suite::duplicates_and_unknown_ids),
        ("updates_are_compare_and_swap", Suite::updates_are_compare_and_swap),
        ("members_are_stored_and_returned", Suite::members_are_stored_and_returned),
        ("concurrent_updates_lose_nothing", Suite::concurrent_updates_lose_nothing),
        ("lists_sort_like_the_model", Suite::lists_sort_like_the_model),
        ("marker_paging_walks_without_gap_or_repeat", Suite::marker_paging_walks_without_gap_or_repeat),
        ("viewers_see_what_they_may", Suite::viewers_see_what_they_may),
        ("lists_filter_like_the_model", Suite::lists_filter_like_the_model),
        ("unknown_marker_is_invalid_input", Suite::unknown_marker_is_invalid_input),
        ("with_status_finds_exactly_those", Suite::with_status_finds_exactly_those),
        ("remove_forgets", Suite::remove_forgets),
        ("records_keep_what_the_driver_does_not_know", Suite::records_keep_what_the_driver_does_not_know),
        ("queries_the_driver_does_not_know_are_refused", Suite::queries_the_driver_does_not_know_are_refused),
        ("usage_is_the_sum_of_stored_bytes", Suite::usage_is_the_sum_of_stored_bytes),
    ];
    for (case, f) in cases {
        f(&s, case);
        let every: Vec<Status> = Status::KNOWN.into_iter().chain([Status::from_record("archived")]).collect();
        let left = s.with_status(case, &every);
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
    // Whole seconds apart: v2's time filters compare at the precision they show.
    Timestamp::from_unix_micros(1_600_000_000_000_000 + n * 1_000_000)
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
    i.visibility = Visibility::from_is_public(n % 2 == 0);
    i.owner = match n % 3 {
        0 => None,
        1 => Some("tenant-a".into()),
        _ => Some("tenant-b".into()),
    };
    if n % 4 == 1 {
        i.members.push(Member::new("tenant-a", false, at(n)));
    }
    i.disk_format = Some(if n % 2 == 0 { DiskFormat::Qcow2 } else { DiskFormat::Raw });
    i.properties.insert("n".into(), n.to_string());
    i.properties.insert("parity".into(), if n % 2 == 0 { "even" } else { "odd" }.into());
    i
}

/// Every sort key, so that a key added to [`SortKey`] without a case here is noticed in review.
const SORT_KEYS: [SortKey; 8] = [
    SortKey::Id,
    SortKey::Name,
    SortKey::Status,
    SortKey::DiskFormat,
    SortKey::ContainerFormat,
    SortKey::Size,
    SortKey::CreatedAt,
    SortKey::UpdatedAt,
];

/// Image number `n` of the listing set, which the list cases compare against the model.
/// Every sort value is shared by several images (so the `created_at` and `id` tie-breaks
/// decide), pairs of images share `created_at` (so `id` decides), some values are unset
/// (`None` sorts first), one name holds a NUL byte and one is a prefix of others, one
/// `created_at` is before 1970 and one size is `u64::MAX` (so an index's byte encoding of
/// signs and widths is tested), every status and visibility occurs, and images are shared
/// with tenants whose memberships differ.
fn listed(n: i64) -> Image {
    let created = if n == 7 { Timestamp::from_unix_micros(-1_000_000) } else { at(n / 2) };
    let mut i = Image::new(ImageId::random(), created);
    i.name = match n % 9 {
        0 => None,
        4 => Some("image-1\0z".into()),
        _ => Some(format!("image-{}", (n * 7) % 11)),
    };
    i.updated_at = at(1_000 - n % 10);
    i.status = [
        Status::Queued,
        Status::Saving,
        Status::Active,
        Status::Active,
        Status::Killed,
        Status::PendingDelete,
        Status::Deleted,
        Status::Deactivated,
    ][n as usize % 8]
        .clone();
    i.deleted = i.status == Status::Deleted;
    if matches!(i.status, Status::Deleted | Status::PendingDelete) {
        i.deleted_at = Some(at(1_000));
    }
    i.size = if n == 47 { u64::MAX } else { (n as u64 % 7) * 1_000 };
    i.disk_format = (n % 5 != 0).then(|| DiskFormat::ALL[n as usize % DiskFormat::ALL.len()]);
    i.container_format = (n % 4 != 0).then(|| ContainerFormat::ALL[n as usize % ContainerFormat::ALL.len()]);
    i.min_ram = (n as u64 % 4) * 512;
    i.min_disk = (n as u64 % 6) * 10;
    i.visibility = match (n % 3, n % 5) {
        (0, _) => Visibility::Public,
        (_, 1) => Visibility::Community,
        (_, 2) => Visibility::Private,
        _ => Visibility::Shared,
    };
    i.protected = n % 5 == 1;
    i.os_hidden = n % 7 == 2;
    if n % 4 == 3 {
        i.tags.insert("gold".into());
    }
    if n % 6 == 1 {
        i.tags.extend(["gold".into(), "beta".into()]);
    }
    i.owner = match n % 4 {
        0 => None,
        1 => Some("tenant-a".into()),
        _ => Some("tenant-b".into()),
    };
    let member = |t: &str, can_share, status| Member { status, ..Member::new(t, can_share, at(n)) };
    i.members = match n % 6 {
        2 => vec![member("tenant-a", false, MemberStatus::Accepted)],
        3 => vec![member("tenant-c", true, MemberStatus::Pending), member("tenant-a", false, MemberStatus::Rejected)],
        5 => vec![member("tenant-d", false, MemberStatus::Accepted)],
        _ => Vec::new(),
    };
    i.properties.insert("n".into(), n.to_string());
    i.properties.insert("parity".into(), if n % 2 == 0 { "even" } else { "odd" }.into());
    i.properties.insert("os".into(), ["linux", "bsd", "linux"][n as usize % 3].into());
    i
}

fn name_of(i: &Image) -> String {
    format!("{}#{}", i.name.as_deref().unwrap_or("-"), i.properties.get("n").map_or("?", String::as_str))
}

/// A list of images as `name#n` (the listing set's number), short enough to read.
fn described(v: &[Image]) -> String {
    format!("{:?}", v.iter().map(name_of).collect::<Vec<_>>())
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
        img.members.push(Member { status: MemberStatus::Rejected, ..Member::new("tenant-c", true, at(9)) });
        img.visibility = Visibility::Community;
        img.os_hidden = true;
        img.virtual_size = Some(u64::MAX / 5);
        img.os_hash_algo = Some("sha512".into());
        img.os_hash_value = Some("ab".repeat(64));
        img.tags.extend(["a tag".into(), "ü".into()]);
        let mut stored =
            ImageLocation::stored(Location::parse("file:///var/lib/tank/images/x").expect("a valid location"), "fs");
        stored.metadata.insert("store".into(), "fs".into());
        let external = ImageLocation::external(Location::parse("https://example.com/x.img").expect("a valid location"));
        img.locations = vec![stored, external];
        img.upload = Some(Upload { node: "node-1".into(), token: "t".into(), store: "fs".into(), lease_until: at(5) });
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

    fn members_are_stored_and_returned(&self, case: &str) {
        let mut img = image(7);
        img.members = vec![Member::new("tenant-a", false, at(1)), Member::new("tenant-b", true, at(2))];
        let mut rev = self.create(case, &img);
        let steps: [&[(&str, bool)]; 3] = [&[("tenant-c", true)], &[("tenant-c", false), ("tenant-a", true)], &[]];
        for members in steps {
            let (r, back) = self.get(case, img.id);
            if back.members != img.members {
                fail(case, format!("get returned members {:?}, but {:?} were stored", back.members, img.members));
            }
            rev = r;
            img.members = members.iter().map(|&(m, s)| Member::new(m, s, at(3))).collect();
            rev = ok(case, "update of the members", self.update(&img, rev));
        }
        let (_, back) = self.get(case, img.id);
        if back.members != img.members {
            fail(case, format!("after clearing the members get returned {:?}", back.members));
        }
        // Shared again: a list finds it through the member filter and the member's view,
        // with its members in the answer.
        img.members = vec![Member::new("tenant-z", true, at(4))];
        img.visibility = Visibility::Shared;
        img.owner = Some("tenant-y".into());
        img.status = Status::Active;
        ok(case, "update of the members", self.update(&img, rev));
        let mut q = ListQuery::new(Viewer { is_admin: false, tenant: Some("tenant-z".into()) });
        q.filters.member = Some("tenant-z".into());
        let got = self.list(case, &q);
        if got != [img.clone()] {
            fail(case, format!("a list by member tenant-z, as tenant-z, returned {got:?}, want exactly {img:?}"));
        }
        self.remove(case, img.id);
    }

    fn concurrent_updates_lose_nothing(&self, case: &str) {
        let img = image(5);
        let first = self.create(case, &img);
        let (threads, each) = (4, 25);
        // Every success, as (revision updated, revision returned).
        let wins: Vec<(u64, u64)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut wins = Vec::new();
                        for _ in 0..each {
                            loop {
                                let (rev, mut cur) = self.get(case, img.id);
                                let n: u64 = cur.properties.get("count").map_or(0, |c| c.parse().unwrap_or(0));
                                cur.properties.insert("count".into(), (n + 1).to_string());
                                match self.update(&cur, rev).into_result() {
                                    Ok(next) => {
                                        wins.push((rev, next));
                                        break;
                                    }
                                    Err(e) if e.kind == ErrorKind::CONFLICT => continue,
                                    Err(e) => fail(case, format!("update failed: {} ({:?})", e.message, e.kind)),
                                }
                            }
                        }
                        wins
                    })
                })
                .collect();
            // Re-raise a thread's own panic, so its message names the case.
            handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        let (last, done) = self.get(case, img.id);
        // Exactly one winner per revision, and the winners form one chain from the first
        // revision to the last: each success updated the revision the previous one made.
        let mut from: Vec<u64> = wins.iter().map(|w| w.0).collect();
        from.sort_unstable();
        if let Some(w) = from.windows(2).find(|w| w[0] == w[1]) {
            let n = from.iter().filter(|&&r| r == w[0]).count();
            fail(case, format!("revision {} had {n} winners; a compare-and-swap has one", w[0]));
        }
        let mut chain: Vec<u64> = wins.iter().map(|w| w.1).filter(|&r| r != last).chain([first]).collect();
        chain.sort_unstable();
        if from != chain {
            fail(case, format!("the successful updates do not form one chain from revision {first} to {last}"));
        }
        let count = done.properties.get("count").cloned().unwrap_or_default();
        if count != (threads * each).to_string() {
            fail(case, format!("{} successful increments, but the record says {count:?}", threads * each));
        }
        self.remove(case, img.id);
    }

    /// Creates the listing set, runs `check` with it, and removes it again.
    fn with_listing_set(&self, case: &str, check: impl FnOnce(&[Image])) {
        let all: Vec<Image> = (0..48).map(listed).collect();
        for i in &all {
            self.create(case, i);
        }
        check(&all);
        for i in &all {
            self.remove(case, i.id);
        }
    }

    /// Compares the driver's answer to `q` with the model's, on the set `all`.
    fn expect_page(&self, case: &str, all: &[Image], q: &ListQuery, what: &str) -> Vec<Image> {
        let marker = q.marker.map(|m| all.iter().find(|i| i.id == m).expect("a marker from the set").clone());
        let want = q.page(all.to_vec(), marker.as_ref());
        let got = self.list(case, q);
        if got != want {
            fail(case, format!("{what}: {q:?}\n got {}\nwant {}", described(&got), described(&want)));
        }
        got
    }

    /// Walks the whole listing of `q` page by page through markers; the pages joined must
    /// be exactly the model's full answer, with no image missing or repeated.
    fn expect_walk(&self, case: &str, all: &[Image], q: &ListQuery) {
        let whole = ListQuery { marker: None, limit: u32::MAX, ..q.clone() }.page(all.to_vec(), None);
        let mut q = ListQuery { marker: None, ..q.clone() };
        let mut walked: Vec<Image> = Vec::new();
        // A driver that ignores the marker would loop forever: stop once the walk is longer
        // than the set.
        for _ in 0..=all.len() + 1 {
            let page = self.list(case, &q);
            for i in &page {
                if let Some(p) = walked.iter().position(|w| w.id == i.id) {
                    fail(
                        case,
                        format!(
                            "walking {q:?}: image {} ({}) is repeated: at position {p} and again after {}",
                            i.id,
                            name_of(i),
                            walked.len()
                        ),
                    );
                }
            }
            walked.extend(page.iter().cloned());
            match page.last() {
                Some(last) if page.len() == q.limit as usize => q.marker = Some(last.id),
                _ => break,
            }
        }
        if walked != whole {
            let gone: Vec<String> =
                whole.iter().filter(|w| !walked.iter().any(|i| i.id == w.id)).map(name_of).collect();
            fail(
                case,
                format!(
                    "walking {q:?} page by page gave\n got {}\nwant {}\nmissing (gaps) {gone:?}",
                    described(&walked),
                    described(&whole)
                ),
            );
        }
    }

    fn lists_sort_like_the_model(&self, case: &str) {
        self.with_listing_set(case, |all| {
            for key in SORT_KEYS {
                for dir in [SortDir::Asc, SortDir::Desc] {
                    let q =
                        ListQuery { sort_key: key, sort_dir: dir, limit: u32::MAX, ..ListQuery::new(Viewer::admin()) };
                    self.expect_page(case, all, &q, "the whole listing");
                    let q = ListQuery { limit: 5, ..q };
                    self.expect_page(case, all, &q, "the first page");
                }
            }
            // v2: several keys, and sorts whose ties the later keys order.
            let q = ListQuery {
                sort_key: SortKey::DiskFormat,
                sort_dir: SortDir::Asc,
                then_by: vec![(SortKey::Size, SortDir::Desc), (SortKey::Name, SortDir::Asc)],
                limit: u32::MAX,
                ..ListQuery::new(Viewer::admin())
            };
            self.expect_page(case, all, &q, "a sort by three keys");
        });
    }

    fn marker_paging_walks_without_gap_or_repeat(&self, case: &str) {
        self.with_listing_set(case, |all| {
            for (n, key) in SORT_KEYS.into_iter().enumerate() {
                for dir in [SortDir::Asc, SortDir::Desc] {
                    let limit = [1, 3, 4, 7][n % 4];
                    let q = ListQuery { sort_key: key, sort_dir: dir, limit, ..ListQuery::new(Viewer::admin()) };
                    self.expect_walk(case, all, &q);
                }
            }
            // A sort by several keys (v2's), page by page.
            let q = ListQuery {
                sort_key: SortKey::DiskFormat,
                sort_dir: SortDir::Asc,
                then_by: vec![(SortKey::Size, SortDir::Desc), (SortKey::Name, SortDir::Asc)],
                limit: 4,
                ..ListQuery::new(Viewer::admin())
            };
            self.expect_walk(case, all, &q);
            // Each page after a marker on its own, including a marker the query hides.
            let hidden = all.iter().find(|i| i.status == Status::Killed).expect("the set has a killed image");
            for key in SORT_KEYS {
                let q =
                    ListQuery { sort_key: key, marker: Some(hidden.id), limit: 6, ..ListQuery::new(Viewer::admin()) };
                self.expect_page(case, all, &q, "the page after a hidden marker");
            }
        });
    }

    fn viewers_see_what_they_may(&self, case: &str) {
        self.with_listing_set(case, |all| {
            let tenant = |t: &str| Viewer { is_admin: false, tenant: Some(t.into()) };
            let viewers = [
                Viewer::admin(),
                tenant("tenant-a"),
                tenant("tenant-b"),
                tenant("tenant-c"),
                tenant("tenant-d"),
                tenant("tenant-nobody"),
                Viewer { is_admin: false, tenant: None },
            ];
            let model =
                |v: &Viewer| ListQuery { limit: u32::MAX, ..ListQuery::new(v.clone()) }.page(all.to_vec(), None);
            // The set must make the views differ, or this case would prove nothing.
            let nobody = model(&tenant("tenant-nobody")).len();
            assert!(
                model(&tenant("tenant-d")).len() > nobody && nobody < model(&Viewer::admin()).len(),
                "the listing set must share images only with some tenants"
            );
            for v in viewers {
                let q = ListQuery { limit: u32::MAX, ..ListQuery::new(v.clone()) };
                self.expect_page(case, all, &q, "what this viewer sees");
                let q = ListQuery { sort_key: SortKey::Name, sort_dir: SortDir::Asc, limit: 4, ..q };
                self.expect_walk(case, all, &q);
                let mut q = ListQuery { limit: u32::MAX, ..q };
                q.filters.changes_since = Some(at(990));
                self.expect_page(case, all, &q, "what this viewer sees changed, deleted images included");
                // Images API v2's default list, and its visibility filters.
                let mut q = ListQuery { limit: u32::MAX, ..ListQuery::new(v.clone()) };
                (q.filters.member_status, q.filters.os_hidden) = (Some(MemberStatus::Accepted), Some(false));
                self.expect_page(case, all, &q, "what this viewer sees in a v2 list");
                for filter in [VisibilityFilter::Community, VisibilityFilter::Shared, VisibilityFilter::All] {
                    q.filters.visibility = Some(filter);
                    self.expect_page(case, all, &q, "what this viewer sees of one visibility");
                }
            }
        });
    }

    fn lists_filter_like_the_model(&self, case: &str) {
        self.with_listing_set(case, |all| {
            let mut queries = Vec::new();
            let mut add = |what: &str, set: &dyn Fn(&mut Filters)| {
                let mut q = ListQuery { limit: u32::MAX, ..ListQuery::new(Viewer::admin()) };
                set(&mut q.filters);
                let n = q.page(all.to_vec(), None).len();
                // A filter that keeps everything or nothing shows little, except where the
                // empty answer is the point.
                assert!(what.contains("none") || n > 0, "the listing set must have images for {what}");
                queries.push((what.to_owned(), q));
            };
            let name = all[8].name.clone();
            add("name", &|f| f.name = name.clone());
            add("name, none", &|f| f.name = Some("no such image".into()));
            add("status saving", &|f| f.status = Some(Status::Saving));
            add("status killed, none (hidden)", &|f| f.status = Some(Status::Killed));
            add("disk_format", &|f| f.disk_format = Some(DiskFormat::Qcow2));
            add("container_format", &|f| f.container_format = Some(ContainerFormat::Bare));
            add("size_min", &|f| f.size_min = Some(3_000));
            add("size_max", &|f| f.size_max = Some(2_000));
            add("size_min and size_max", &|f| (f.size_min, f.size_max) = (Some(1_000), Some(3_000)));
            add("min_ram", &|f| f.min_ram = Some(1_024));
            add("min_disk", &|f| f.min_disk = Some(30));
            add("is_public true", &|f| f.is_public = Some(true));
            add("is_public false", &|f| f.is_public = Some(false));
            add("protected true", &|f| f.protected = Some(true));
            add("protected false", &|f| f.protected = Some(false));
            add("changes_since", &|f| f.changes_since = Some(at(994)));
            add("changes_since and status deleted", &|f| {
                (f.changes_since, f.status) = (Some(at(0)), Some(Status::Deleted))
            });
            add("member", &|f| f.member = Some("tenant-a".into()));
            add("member, none", &|f| f.member = Some("tenant-nobody".into()));
            add("properties", &|f| drop(f.properties.insert("os".into(), "linux".into())));
            add("two properties", &|f| {
                f.properties.insert("os".into(), "linux".into());
                f.properties.insert("parity".into(), "odd".into());
            });
            add("properties, none", &|f| drop(f.properties.insert("os".into(), "plan9".into())));
            add("visibility private", &|f| f.visibility = Some(VisibilityFilter::Private));
            add("visibility community", &|f| f.visibility = Some(VisibilityFilter::Community));
            add("visibility all", &|f| f.visibility = Some(VisibilityFilter::All));
            add("member_status pending", &|f| f.member_status = Some(MemberStatus::Pending));
            add("os_hidden true", &|f| f.os_hidden = Some(true));
            add("os_hidden false", &|f| f.os_hidden = Some(false));
            add("owner", &|f| f.owner = Some("tenant-a".into()));
            add("tag", &|f| {
                f.tags.insert("gold".into());
            });
            add("two tags", &|f| f.tags.extend(["gold".into(), "beta".into()]));
            add("status deactivated", &|f| f.status = Some(Status::Deactivated));
            let (first, second) = (all[3].id.to_string(), all[11].id.to_string());
            add("id in", &|f| drop(f.one_of.insert(InField::Id, [first.clone(), second.clone()].into())));
            add("disk_format in", &|f| {
                drop(f.one_of.insert(InField::DiskFormat, ["qcow2".into(), "raw".into()].into()))
            });
            add("status in, none", &|f| drop(f.one_of.insert(InField::Status, ["importing".into()].into())));
            add("created_at gt and lte", &|f| {
                f.times.push(TimeFilter { field: TimeField::CreatedAt, op: Cmp::Gt, at: at(3) });
                f.times.push(TimeFilter { field: TimeField::CreatedAt, op: Cmp::Lte, at: at(12) });
            });
            add("updated_at neq", &|f| {
                f.times.push(TimeFilter { field: TimeField::UpdatedAt, op: Cmp::Neq, at: at(5) })
            });
            add("many filters", &|f| {
                (f.is_public, f.min_ram, f.size_max) = (Some(false), Some(512), Some(5_000));
                f.properties.insert("parity".into(), "even".into());
            });
            for (what, q) in queries {
                self.expect_page(case, all, &q, &format!("filter {what}"));
                for key in [SortKey::CreatedAt, SortKey::Name, SortKey::Size] {
                    let q = ListQuery { sort_key: key, sort_dir: SortDir::Asc, limit: 3, ..q.clone() };
                    self.expect_walk(case, all, &q);
                }
            }
        });
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

    /// A record as a newer host might write it: a status, fields and nested fields this
    /// SDK does not know.
    fn record_of_a_newer_host(&self, n: i64) -> serde_json::Value {
        let mut img = image(n);
        img.members.push(Member::new("tenant-f", false, at(n)));
        img.locations.push(ImageLocation::stored(Location::parse("file:///var/x").expect("a valid location"), "fs"));
        let mut record = serde_json::to_value(&img).expect("an image encodes");
        record["status"] = "archived".into();
        record["schema"] = 99.into();
        record["retention"] = serde_json::json!({"days": 30, "tiers": ["hot", "cold"], "none": null});
        record["members"][0]["expires_at"] = "2040-01-01T00:00:00".into();
        record["locations"][0]["checked"] = true.into();
        record
    }

    fn get_json(&self, case: &str, id: &str) -> (u64, serde_json::Value) {
        let rec = ok(case, "get", self.r.get(id.into()));
        let value = serde_json::from_str(rec.json.as_str())
            .unwrap_or_else(|e| fail(case, format!("get returned a record that is not JSON: {e}")));
        (rec.revision, value)
    }

    fn records_keep_what_the_driver_does_not_know(&self, case: &str) {
        // Compared from the second write on: the first read may write the schema this
        // SDK writes, and nothing else may differ.
        let mut record = self.record_of_a_newer_host(70);
        let id = record["id"].as_str().expect("an id").to_owned();
        ok(case, "create of a newer host's record", self.r.create(record.to_string().as_str().into()));
        let (rev, mut back) = self.get_json(case, &id);
        back["schema"] = record["schema"].clone();
        if back != record {
            fail(
                case,
                format!(
                    "a record with fields this driver does not know came back changed:
 got {back}
want {record}"
                ),
            );
        }
        record["retention"]["days"] = 31.into();
        record["name"] = "renamed by the newer host".into();
        ok(
            case,
            "update of a newer host's record",
            self.r.update(id.as_str().into(), rev, record.to_string().as_str().into()),
        );
        let (_, mut back) = self.get_json(case, &id);
        back["schema"] = record["schema"].clone();
        if back != record {
            fail(
                case,
                format!(
                    "after an update the record came back changed:
 got {back}
want {record}"
                ),
            );
        }
        let future = Status::from_record("archived");
        let found = self.with_status(case, std::slice::from_ref(&future));
        if found.len() != 1
            || found[0].id.to_string() != id
            || found[0].extra.get("retention") != record.get("retention")
        {
            fail(case, format!("with_status [archived] returned {found:?}"));
        }
        let mut q = ListQuery { limit: u32::MAX, ..ListQuery::new(Viewer::admin()) };
        q.filters.changes_since = Some(at(0));
        let listed = self.list(case, &q);
        if !listed.iter().any(|i| i.id.to_string() == id && i.status == future && i.extra == found[0].extra) {
            fail(case, format!("a list with changes_since did not return the record as stored: {listed:?}"));
        }
        ok(case, "remove", self.r.remove(id.as_str().into()));
    }

    fn queries_the_driver_does_not_know_are_refused(&self, case: &str) {
        let img = image(71);
        self.create(case, &img);
        let known = serde_json::to_value(ListQuery::new(Viewer::admin())).expect("a query encodes");
        let mut filter = known.clone();
        filter["filters"] = serde_json::json!({"colour": "blue"});
        let mut sort = known.clone();
        sort["sort_key"] = "popularity".into();
        let mut top = known;
        top["consistency"] = "strong".into();
        for (what, q, name) in [
            ("an unknown filter", filter, "colour"),
            ("an unknown sort key", sort, "popularity"),
            ("an unknown query field", top, "consistency"),
        ] {
            match self.r.list(q.to_string().as_str().into()).into_result() {
                Ok(page) => fail(case, format!("a list with {what} ({name}) was answered: {page}")),
                Err(e) if e.kind != ErrorKind::UNSUPPORTED || !e.message.contains(name) => fail(
                    case,
                    format!("a list with {what} gave {:?} {:?}; want unsupported naming {name}", e.kind, e.message),
                ),
                Err(_) => {}
            }
        }
        self.remove(case, img.id);
    }

    /// The driver's usage figure of `owner`, or `None` when it keeps none.
    fn usage(&self, case: &str, owner: &str) -> Option<u64> {
        let question = serde_json::json!({ "owner": owner }).to_string();
        match self.r.call(USAGE_OP.into(), question.as_str().into()).into_result() {
            Ok(answer) => {
                let v: serde_json::Value = serde_json::from_str(answer.as_str())
                    .unwrap_or_else(|e| fail(case, format!("the usage answer is not JSON: {e}")));
                Some(v["bytes"].as_u64().unwrap_or_else(|| fail(case, format!("the usage answer has no bytes: {v}"))))
            }
            Err(e) if e.kind == ErrorKind::UNSUPPORTED => None,
            Err(e) => fail(case, format!("usage failed: {} ({:?})", e.message, e.kind)),
        }
    }

    fn usage_is_the_sum_of_stored_bytes(&self, case: &str) {
        if self.usage(case, "tenant-u").is_none() {
            return; // An optional operation this driver does not have: the host scans.
        }
        let mut images: Vec<(u64, Image)> = Vec::new();
        let check = |images: &[(u64, Image)], step: &str| {
            for owner in ["tenant-u", "tenant-v", "tenant-none"] {
                let want: u64 = images
                    .iter()
                    .filter(|(_, i)| i.owner.as_deref() == Some(owner))
                    .map(|(_, i)| i.stored_bytes())
                    .sum();
                let got = self.usage(case, owner).unwrap_or_else(|| fail(case, "usage stopped being answered"));
                if got != want {
                    fail(case, format!("after {step}, usage of {owner} is {got}, want {want}"));
                }
            }
        };
        for n in 0..12 {
            let mut i = image(80 + n);
            i.owner = Some(if n % 3 == 0 { "tenant-v" } else { "tenant-u" }.into());
            i.size = 1_000 * (n as u64 + 1);
            i.status = [Status::Active, Status::Saving, Status::Queued, Status::Killed][n as usize % 4].clone();
            let rev = self.create(case, &i);
            images.push((rev, i));
        }
        check(&images, "the creates");
        for (rev, i) in images.iter_mut().take(6) {
            // Sizes change, images change hands, die and are deleted.
            i.size += 7;
            i.status = match i.status {
                Status::Active => Status::PendingDelete,
                Status::Saving => Status::Active,
                Status::Queued => Status::Saving,
                _ => Status::Deleted,
            };
            if i.status == Status::Deleted {
                i.deleted = true;
            }
            i.owner = if i.owner.as_deref() == Some("tenant-v") { Some("tenant-u".into()) } else { i.owner.clone() };
            *rev = ok(case, "update", self.update(i, *rev));
        }
        check(&images, "the updates");
        for (_, i) in images.drain(..5) {
            self.remove(case, i.id);
        }
        check(&images, "the removes");
        for (_, i) in images {
            self.remove(case, i.id);
        }
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
        NoCreatedAtTieBreak,
        MarkerInclusive,
        MarkerSkipsOne,
        MembersDoNotShare,
        IgnoresMinDisk,
        DropsMembersOnUpdate,
        KeepsRevisionSometimes,
        SpuriousConflict,
        UnknownMarkerStartsOver,
        WithStatusSkipsDeleted,
        RemoveKeepsRecord,
        DropsUnknownFields,
        UsageCountsEverything,
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
            if self.fault == Fault::DropsUnknownFields {
                image.extra.clear();
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
            *stored = image.clone();
            if self.fault == Fault::DropsMembersOnUpdate {
                stored.members.clear();
            }
            // The concurrency faults act only on the concurrent case's counter, so that
            // the simpler cases before it pass.
            let count: Option<u64> = image.properties.get("count").and_then(|c| c.parse().ok());
            match (self.fault, count) {
                (Fault::KeepsRevisionSometimes, Some(c)) if c % 5 == 4 => return Ok(*current),
                (Fault::SpuriousConflict, Some(c)) if c % 7 == 3 => {
                    *current += 1;
                    return Err(Error::new(ErrorKind::CONFLICT, "timed out (but wrote)"));
                }
                _ => {}
            }
            *current += 1;
            Ok(*current)
        }

        fn remove(&self, id: ImageId) -> Result<()> {
            let mut r = self.records.lock().unwrap();
            if self.fault == Fault::RemoveKeepsRecord {
                return Ok(());
            }
            r.remove(&id).map(drop).ok_or_else(|| Error::not_found(id.to_string()))
        }

        fn usage(&self, owner: &str) -> Result<u64> {
            let r = self.records.lock().unwrap();
            let mine = r.values().map(|(_, i)| i).filter(|i| i.owner.as_deref() == Some(owner));
            Ok(match self.fault {
                Fault::UsageCountsEverything => mine.map(|i| i.size).sum(),
                _ => mine.map(Image::stored_bytes).sum(),
            })
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
            let mut all: Vec<Image> = r.values().map(|(_, i)| i.clone()).collect();
            let mut marker = marker;
            match self.fault {
                Fault::IgnoresSortDir => q.sort_dir = SortDir::Desc,
                Fault::IgnoresMinDisk => q.filters.min_disk = None,
                Fault::NoCreatedAtTieBreak => {
                    all.iter_mut().chain(marker.as_mut()).for_each(|i| i.created_at = Timestamp::from_unix_micros(0))
                }
                Fault::MembersDoNotShare if q.filters.member.is_none() => {
                    all.iter_mut().for_each(|i| i.members.clear())
                }
                Fault::MarkerSkipsOne if marker.is_some() => q.limit = q.limit.saturating_add(1),
                _ => {}
            }
            let mut page = q.page(all, marker.as_ref());
            match (self.fault, &marker) {
                (Fault::MarkerSkipsOne, Some(_)) if !page.is_empty() => drop(page.remove(0)),
                (Fault::MarkerInclusive, Some(m)) if q.matches(m) => {
                    page.insert(0, m.clone());
                    page.truncate(q.limit as usize);
                }
                _ => {}
            }
            // The faults above may have changed fields to get their order: answer with
            // the records as stored.
            Ok(page.into_iter().map(|i| r[&i.id].1.clone()).collect())
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
            ("drops_members_on_update", "members_are_stored_and_returned", "but [Member"),
            ("keeps_revision_sometimes", "concurrent_updates_lose_nothing", "winners; a compare-and-swap has one"),
            ("spurious_conflict", "concurrent_updates_lose_nothing", "do not form one chain"),
            ("ignores_sort_dir", "lists_sort_like_the_model", "sort_dir: Asc"),
            ("no_created_at_tie_break", "lists_sort_like_the_model", "the whole listing"),
            ("marker_inclusive", "marker_paging_walks_without_gap_or_repeat", "is repeated"),
            ("marker_skips_one", "marker_paging_walks_without_gap_or_repeat", "missing (gaps) [\""),
            ("members_do_not_share", "viewers_see_what_they_may", "tenant: Some(\"tenant-"),
            ("ignores_min_disk", "lists_filter_like_the_model", "filter min_disk"),
            ("unknown_marker_starts_over", "unknown_marker_is_invalid_input", "gave success, not invalid-input"),
            ("with_status_skips_deleted", "with_status_finds_exactly_those", "want"),
            ("remove_keeps_record", "create_get_round_trip", "the database still holds"),
            ("drops_unknown_fields", "records_keep_what_the_driver_does_not_know", "came back changed"),
            ("usage_counts_everything", "usage_is_the_sum_of_stored_bytes", "after the creates, usage of"),
        ];
        for (fault, case, detail) in faults {
            let msg = suite_with(fault).unwrap_or_else(|| panic!("the suite passed a driver with fault {fault}"));
            assert!(msg.starts_with(&format!("registry conformance case `{case}`: ")), "{fault}: {msg}");
            assert!(msg.contains(detail), "{fault}: {msg}");
        }
    }
}
