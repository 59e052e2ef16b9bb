//! The registry-driver suite: what the host relies on from every registry driver.

use std::path::Path;

use abi_stable::std_types::{RBox, RResult};

use crate::{
    abi::{PluginError, RegistryV1_TO},
    export::{open_registry_in_process, Meta},
    image::{
        query::{ListQuery, SortDir, SortKey, Viewer},
        Image, ImageId, Member, Status, Timestamp,
    },
    Error, ErrorKind, RegistryDriver,
};

type RegistryObj = RegistryV1_TO<'static, RBox<()>>;

/// Runs every registry case against driver type `R`, opened as the host would open it
/// with `config` (its `[registry.<name>]` table as JSON, pointing at an **empty**
/// database) and `config_dir`.
///
/// # Panics
/// On the first case that fails, naming it.
pub fn run<R: RegistryDriver + Meta>(config: serde_json::Value, config_dir: &Path) {
    let registry = open_registry_in_process::<R>(R::NAME, &config, config_dir)
        .unwrap_or_else(|e| panic!("registry conformance: open failed: {}", e.message));
    let s = Suite { r: registry };
    s.create_get_round_trip();
    s.duplicates_and_unknown_ids();
    s.updates_are_compare_and_swap();
    s.concurrent_updates_lose_nothing();
    s.lists_answer_like_list_query_page();
    s.with_status_finds_exactly_those();
    s.remove_forgets();
}

struct Suite {
    r: RegistryObj,
}

fn fail(case: &str, what: impl std::fmt::Display) -> ! {
    panic!("registry conformance case `{case}`: {what}")
}

fn ok<T>(case: &str, step: &str, r: RResult<T, PluginError>) -> T {
    r.into_result().unwrap_or_else(|e| fail(case, format!("{step} failed: {:?} {}", e.kind, e.message)))
}

fn kind_of<T>(r: RResult<T, PluginError>) -> Option<ErrorKind> {
    r.into_result().err().map(|e| Error::from(e).kind)
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("encodable")
}

fn image(n: i64) -> Image {
    let mut i = Image::new(ImageId::random(), Timestamp::from_unix_micros(1_600_000_000_000_000 + n * 1_000));
    i.name = Some(format!("image-{:02}", (n * 7) % 23));
    i.size = (n as u64 * 1_000_003) % 50_000;
    i.status = if n % 5 == 0 { Status::Queued } else { Status::Active };
    i.is_public = n % 2 == 0;
    i.properties.insert("n".into(), n.to_string());
    i
}

impl Suite {
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

    fn list(&self, case: &str, q: &ListQuery) -> Vec<Image> {
        let text = ok(case, "list", self.r.list(json(q).as_str().into()));
        serde_json::from_str(text.as_str()).unwrap_or_else(|e| fail(case, format!("list returned bad JSON: {e}")))
    }

    fn create_get_round_trip(&self) {
        let case = "create_get_round_trip";
        let mut img = image(1);
        img.members.push(Member { member_id: "tenant-a".into(), can_share: true });
        img.owner = Some("tenant-b".into());
        img.checksum = Some("0123456789abcdef0123456789abcdef".into());
        self.create(case, &img);
        let (_, back) = self.get(case, img.id);
        if back != img {
            fail(case, format!("get returned {back:?}, created {img:?}"));
        }
        ok(case, "cleanup", self.r.remove(img.id.to_string().as_str().into()));
    }

    fn duplicates_and_unknown_ids(&self) {
        let case = "duplicates_and_unknown_ids";
        let img = image(2);
        self.create(case, &img);
        let dup = kind_of(self.r.create(json(&img).as_str().into()));
        if dup != Some(ErrorKind::DUPLICATE) {
            fail(case, format!("creating an existing id gave {dup:?}, not DUPLICATE"));
        }
        let unknown = ImageId::random().to_string();
        let got = kind_of(self.r.get(unknown.as_str().into()));
        if got != Some(ErrorKind::NOT_FOUND) {
            fail(case, format!("get of an unknown id gave {got:?}, not NOT_FOUND"));
        }
        ok(case, "cleanup", self.r.remove(img.id.to_string().as_str().into()));
    }

    fn updates_are_compare_and_swap(&self) {
        let case = "updates_are_compare_and_swap";
        let mut img = image(3);
        let r1 = self.create(case, &img);
        img.name = Some("renamed".into());
        let r2 = ok(case, "update", self.update(&img, r1));
        if r2 == r1 {
            fail(case, "an update must change the revision");
        }
        img.name = Some("stale".into());
        let stale = kind_of(self.update(&img, r1));
        if stale != Some(ErrorKind::CONFLICT) {
            fail(case, format!("an update at a stale revision gave {stale:?}, not CONFLICT"));
        }
        let (rev, back) = self.get(case, img.id);
        if rev != r2 || back.name.as_deref() != Some("renamed") {
            fail(case, "the stale update changed the record");
        }
        ok(case, "cleanup", self.r.remove(img.id.to_string().as_str().into()));
    }

    fn concurrent_updates_lose_nothing(&self) {
        let case = "concurrent_updates_lose_nothing";
        let img = image(4);
        self.create(case, &img);
        let (threads, each) = (4, 25);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    for _ in 0..each {
                        loop {
                            let (rev, mut cur) = self.get(case, img.id);
                            let n: u64 = cur.properties.get("count").map_or(0, |c| c.parse().unwrap());
                            cur.properties.insert("count".into(), (n + 1).to_string());
                            match self.update(&cur, rev).into_result() {
                                Ok(_) => break,
                                Err(e) if Error::from(e.clone()).kind == ErrorKind::CONFLICT => continue,
                                Err(e) => fail(case, format!("update failed: {}", e.message)),
                            }
                        }
                    }
                });
            }
        });
        let (_, done) = self.get(case, img.id);
        let count = done.properties.get("count").cloned().unwrap_or_default();
        if count != (threads * each).to_string() {
            fail(case, format!("{} increments, the record says {count}", threads * each));
        }
        ok(case, "cleanup", self.r.remove(img.id.to_string().as_str().into()));
    }

    fn lists_answer_like_list_query_page(&self) {
        let case = "lists_answer_like_list_query_page";
        let all: Vec<Image> = (10..40).map(image).collect();
        for i in &all {
            self.create(case, i);
        }
        let base = ListQuery::new(Viewer::admin());
        let mut queries = vec![base.clone()];
        for (key, dir) in [(SortKey::Name, SortDir::Asc), (SortKey::Size, SortDir::Desc), (SortKey::Id, SortDir::Asc)] {
            queries.push(ListQuery { sort_key: key, sort_dir: dir, limit: 7, ..base.clone() });
        }
        let mut filtered = ListQuery { limit: 100, ..base.clone() };
        filtered.filters.is_public = Some(true);
        filtered.filters.size_min = Some(10_000);
        queries.push(filtered);
        let mut by_status = ListQuery { limit: 100, ..base.clone() };
        by_status.filters.status = Some(Status::Queued);
        queries.push(by_status);
        for q in queries {
            // Walk every page with markers and compare each with the reference answer.
            let mut q = q;
            loop {
                let marker = q.marker.map(|m| all.iter().find(|i| i.id == m).unwrap().clone());
                let want = q.page(all.clone(), marker.as_ref());
                let got = self.list(case, &q);
                if got != want {
                    let ids = |v: &[Image]| v.iter().map(|i| i.name.clone().unwrap_or_default()).collect::<Vec<_>>();
                    fail(case, format!("{q:?}\n got {:?}\nwant {:?}", ids(&got), ids(&want)));
                }
                match got.last() {
                    Some(last) if got.len() == q.limit as usize => q.marker = Some(last.id),
                    _ => break,
                }
            }
        }
        let bad = ListQuery { marker: Some(ImageId::random()), ..base };
        let kind = kind_of(self.r.list(json(&bad).as_str().into()));
        if kind != Some(ErrorKind::INVALID_INPUT) {
            fail(case, format!("an unknown marker gave {kind:?}, not INVALID_INPUT"));
        }
        for i in &all {
            ok(case, "cleanup", self.r.remove(i.id.to_string().as_str().into()));
        }
    }

    fn with_status_finds_exactly_those(&self) {
        let case = "with_status_finds_exactly_those";
        let mut saving = image(50);
        saving.status = Status::Saving;
        let mut deleted = image(51);
        deleted.status = Status::Deleted;
        deleted.deleted = true;
        let active = image(52);
        for i in [&saving, &deleted, &active] {
            self.create(case, i);
        }
        let text =
            ok(case, "with_status", self.r.with_status(json(&[Status::Saving, Status::Deleted]).as_str().into()));
        let got: Vec<Image> = serde_json::from_str(text.as_str()).unwrap();
        let mut ids: Vec<ImageId> = got.iter().map(|i| i.id).collect();
        ids.sort();
        let mut want = vec![saving.id, deleted.id];
        want.sort();
        if ids != want {
            fail(case, format!("with_status returned {ids:?}, want {want:?}"));
        }
        for i in [&saving, &deleted, &active] {
            ok(case, "cleanup", self.r.remove(i.id.to_string().as_str().into()));
        }
    }

    fn remove_forgets(&self) {
        let case = "remove_forgets";
        let img = image(60);
        self.create(case, &img);
        ok(case, "remove", self.r.remove(img.id.to_string().as_str().into()));
        let got = kind_of(self.r.get(img.id.to_string().as_str().into()));
        if got != Some(ErrorKind::NOT_FOUND) {
            fail(case, format!("get after remove gave {got:?}, not NOT_FOUND"));
        }
        let again = kind_of(self.r.remove(img.id.to_string().as_str().into()));
        if again != Some(ErrorKind::NOT_FOUND) {
            fail(case, format!("removing twice gave {again:?}, not NOT_FOUND"));
        }
    }
}
