//! List queries: which images a caller sees, in what order, one page at a time.
//!
//! A [`ListQuery`] crosses the registry-driver boundary as JSON. Drivers may answer it with
//! their own indexes, or with [`ListQuery::page`], which any driver can call on a scan.
//!
//! # Queries that outlive their drivers
//! A query's JSON leaves out every filter that is not set, and refuses (`deny_unknown_fields`)
//! any key it does not know. A host newer than a driver can therefore send the driver every
//! query the driver understands, and a query using a filter the driver was built without
//! fails by name instead of being answered without the filter: an ignored visibility or
//! member filter would show images to callers who may not see them.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BTreeSet},
};

use serde::{Deserialize, Serialize};

pub use crate::access::Viewer;
use crate::{ContainerFormat, DiskFormat, Image, ImageId, MemberStatus, Status, Timestamp, Visibility};

/// Attribute filters; every one that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filters {
    /// Exact name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Exact status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Exact disk format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_format: Option<DiskFormat>,
    /// Exact container format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_format: Option<ContainerFormat>,
    /// Size at least this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_min: Option<u64>,
    /// Size at most this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_max: Option<u64>,
    /// `min_ram` at least this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_ram: Option<u64>,
    /// `min_disk` at least this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_disk: Option<u64>,
    /// Glance's `is_public` list filter. `Some(true)` (the API's default): public images
    /// and those the viewer owns or is a member of; `Some(false)`: private images only;
    /// `None`: no filter. A viewer who is not an admin never gets more than public, own
    /// and shared images, whatever this says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_public: Option<bool>,
    /// Exact protection flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
    /// Changed after this moment; deleted images are then included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes_since: Option<Timestamp>,
    /// Shared with this tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Properties that must have exactly these values.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// Which visibilities are listed; `None`: v1's lists, which know only `is_public`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<VisibilityFilter>,
    /// Which memberships make a shared image listed for its members; `None`: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_status: Option<MemberStatus>,
    /// Exact `os_hidden` flag; `None`: hidden images too (v1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_hidden: Option<bool>,
    /// Exact owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Tags the image must all have.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub tags: BTreeSet<String>,
    /// Attributes that must be one of a set of values (v2's `in:` operator).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub one_of: BTreeMap<InField, BTreeSet<String>>,
    /// Time comparisons that must all hold (v2's `created_at=gt:...`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<TimeFilter>,
    /// Exact MD5 checksum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Exact multihash value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_hash_value: Option<String>,
}

/// An attribute whose value v2's `in:` operator picks from a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum InField {
    Id,
    Name,
    Status,
    DiskFormat,
    ContainerFormat,
}

impl InField {
    /// `image`'s value of this attribute, as clients write it.
    fn value(self, image: &Image) -> Option<String> {
        match self {
            InField::Id => Some(image.id.to_string()),
            InField::Name => image.name.clone(),
            InField::Status => Some(image.status.as_str().to_owned()),
            InField::DiskFormat => image.disk_format.map(|d| d.as_str().to_owned()),
            InField::ContainerFormat => image.container_format.map(|c| c.as_str().to_owned()),
        }
    }
}

/// A time attribute v2's lists compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum TimeField {
    CreatedAt,
    UpdatedAt,
}

/// A comparison operator of v2's list filters (`gt:`, `gte:`, `eq:`, `neq:`, `lt:`, `lte:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Cmp {
    Gt,
    Gte,
    Eq,
    Neq,
    Lt,
    Lte,
}

impl Cmp {
    /// Every operator, with the name clients write before the colon.
    pub const ALL: [(Cmp, &'static str); 6] =
        [(Cmp::Gt, "gt"), (Cmp::Gte, "gte"), (Cmp::Eq, "eq"), (Cmp::Neq, "neq"), (Cmp::Lt, "lt"), (Cmp::Lte, "lte")];

    /// Whether `have` compared with the filter's value as `ord` satisfies the operator.
    pub fn holds(self, ord: Ordering) -> bool {
        match self {
            Cmp::Gt => ord == Ordering::Greater,
            Cmp::Gte => ord != Ordering::Less,
            Cmp::Eq => ord == Ordering::Equal,
            Cmp::Neq => ord != Ordering::Equal,
            Cmp::Lt => ord == Ordering::Less,
            Cmp::Lte => ord != Ordering::Greater,
        }
    }
}

/// `field` compared with `at` must satisfy `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeFilter {
    /// The attribute.
    pub field: TimeField,
    /// The operator.
    pub op: Cmp,
    /// The moment compared with.
    pub at: Timestamp,
}

impl TimeFilter {
    fn holds(&self, image: &Image) -> bool {
        let have = match self.field {
            TimeField::CreatedAt => image.created_at,
            TimeField::UpdatedAt => image.updated_at,
        };
        // At the precision v2 shows times in (whole seconds), so that a time a client
        // read back matches `eq:` and is not `gt:` itself.
        let seconds = |t: Timestamp| t.unix_micros().div_euclid(1_000_000);
        self.op.holds(seconds(have).cmp(&seconds(self.at)))
    }
}

/// A list's `visibility` filter (v2): images of exactly one visibility that the caller
/// sees, or `all` of them; community images are listed only when a filter is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum VisibilityFilter {
    Public,
    Community,
    Shared,
    Private,
    All,
}

impl VisibilityFilter {
    /// Whether images of `visibility` pass.
    pub fn admits(self, visibility: Visibility) -> bool {
        match self {
            VisibilityFilter::All => true,
            VisibilityFilter::Public => visibility == Visibility::Public,
            VisibilityFilter::Community => visibility == Visibility::Community,
            VisibilityFilter::Shared => visibility == Visibility::Shared,
            VisibilityFilter::Private => visibility == Visibility::Private,
        }
    }
}

/// The attribute a list is sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum SortKey {
    Id,
    Name,
    Status,
    DiskFormat,
    ContainerFormat,
    Size,
    #[default]
    CreatedAt,
    UpdatedAt,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum SortDir {
    Asc,
    #[default]
    Desc,
}

/// `a` against `b` by `key` alone, ascending.
fn by_key(key: SortKey, a: &Image, b: &Image) -> Ordering {
    match key {
        SortKey::Id => a.id.cmp(&b.id),
        SortKey::Name => a.name.cmp(&b.name),
        SortKey::Status => a.status.as_str().cmp(b.status.as_str()),
        SortKey::DiskFormat => a.disk_format.map(|d| d.as_str()).cmp(&b.disk_format.map(|d| d.as_str())),
        SortKey::ContainerFormat => a.container_format.map(|c| c.as_str()).cmp(&b.container_format.map(|c| c.as_str())),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::CreatedAt => a.created_at.cmp(&b.created_at),
        SortKey::UpdatedAt => a.updated_at.cmp(&b.updated_at),
    }
}

/// Whether an unset filter (`None`) or a set one equal to `have`.
fn eq<T: PartialEq>(want: &Option<T>, have: Option<&T>) -> bool {
    want.as_ref().is_none_or(|w| Some(w) == have)
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Who is asking.
    pub viewer: Viewer,
    /// What must match.
    #[serde(default, skip_serializing_if = "Filters::is_empty")]
    pub filters: Filters,
    /// Order.
    #[serde(default)]
    pub sort_key: SortKey,
    /// Direction.
    #[serde(default)]
    pub sort_dir: SortDir,
    /// Further keys, each ordering the ties of the keys before it (v2's
    /// `sort=name:asc,size:desc`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub then_by: Vec<(SortKey, SortDir)>,
    /// The page starts after this image.
    pub marker: Option<ImageId>,
    /// At most this many images.
    pub limit: u32,
}

impl Filters {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }
}

impl ListQuery {
    /// The default first page for `viewer`: newest first, 25 images.
    pub fn new(viewer: Viewer) -> Self {
        ListQuery {
            viewer,
            filters: Filters::default(),
            sort_key: SortKey::default(),
            sort_dir: SortDir::default(),
            then_by: Vec::new(),
            marker: None,
            limit: 25,
        }
    }

    /// Whether `image` belongs in the result, page bounds aside.
    pub fn matches(&self, image: &Image) -> bool {
        let f = &self.filters;
        // Statuses this code does not know are a newer host's: not listed by default.
        let hidden = match f.changes_since {
            Some(t) => image.updated_at <= t,
            None => {
                image.deleted
                    || matches!(
                        image.status,
                        Status::Killed | Status::Deleted | Status::PendingDelete | Status::Other(_)
                    )
            }
        };
        if hidden || !self.listed(image) {
            return false;
        }
        eq(&f.name, image.name.as_ref())
            && eq(&f.status, Some(&image.status))
            && eq(&f.disk_format, image.disk_format.as_ref())
            && eq(&f.container_format, image.container_format.as_ref())
            && eq(&f.protected, Some(&image.protected))
            && f.size_min.is_none_or(|m| image.size >= m)
            && f.size_max.is_none_or(|m| image.size <= m)
            && f.min_ram.is_none_or(|m| image.min_ram >= m)
            && f.min_disk.is_none_or(|m| image.min_disk >= m)
            && f.member.as_ref().is_none_or(|t| image.members.iter().any(|m| &m.member_id == t))
            && f.properties.iter().all(|(k, v)| image.properties.get(k) == Some(v))
            && f.os_hidden.is_none_or(|h| image.os_hidden == h)
            && eq(&f.owner, image.owner.as_ref())
            && f.tags.iter().all(|t| image.tags.contains(t))
            && f.one_of.iter().all(|(field, values)| field.value(image).is_some_and(|v| values.contains(&v)))
            && f.times.iter().all(|t| t.holds(image))
            && eq(&f.checksum, image.checksum.as_ref())
            && eq(&f.os_hash_value, image.os_hash_value.as_ref())
    }

    /// Visibility in a list. E0's registry `image_get_all` lists, for a caller who is not
    /// an admin, public images and the caller's own and shared ones (unlike
    /// [`Viewer::can_see`], images without an owner are listed only when public), and v2
    /// adds community images when asked for them, and shared images only for members whose
    /// membership matches `member_status`.
    fn listed(&self, image: &Image) -> bool {
        let (v, f) = (&self.viewer, &self.filters);
        let member = v.membership(image).is_some_and(|s| f.member_status.is_none_or(|want| s == want));
        let mine = v.owns(image) || member;
        let wanted = f.visibility.is_none_or(|want| want.admits(image.visibility));
        let community = image.visibility == Visibility::Community && f.visibility.is_some();
        if !wanted || !(v.is_admin || image.is_public() || community || mine) {
            return false;
        }
        match f.is_public {
            None => true,
            Some(true) => image.is_public() || mine,
            Some(false) => !image.is_public(),
        }
    }

    /// The total order of the list: the sort key, then the further keys, then
    /// `created_at`, then `id` in the direction of the last key. The tie-breakers make
    /// every marker position unambiguous.
    pub fn compare(&self, a: &Image, b: &Image) -> Ordering {
        let directed = |dir: SortDir, ord: Ordering| match dir {
            SortDir::Asc => ord,
            SortDir::Desc => ord.reverse(),
        };
        let mut ord = directed(self.sort_dir, by_key(self.sort_key, a, b));
        let mut last = self.sort_dir;
        for &(key, dir) in &self.then_by {
            ord = ord.then_with(|| directed(dir, by_key(key, a, b)));
            last = dir;
        }
        ord.then_with(|| directed(last, a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id))))
    }

    /// Answers the query from every image the driver has, by scanning. `marker_image` is
    /// the marker's record, which the driver looked up (`None` when there is no marker).
    ///
    /// Memory is bounded by the page, not by `all`: the best images so far are kept, and
    /// cut back to the page whenever they grow to twice it.
    pub fn page(&self, all: impl IntoIterator<Item = Image>, marker_image: Option<&Image>) -> Vec<Image> {
        let limit = self.limit as usize;
        let mut hits: Vec<Image> = Vec::new();
        let cut = |hits: &mut Vec<Image>| {
            hits.sort_by(|a, b| self.compare(a, b));
            hits.truncate(limit);
        };
        for image in all {
            if self.matches(&image) && marker_image.is_none_or(|m| self.compare(&image, m) == Ordering::Greater) {
                hits.push(image);
                if hits.len() >= limit.saturating_mul(2).max(64) {
                    cut(&mut hits);
                }
            }
        }
        cut(&mut hits);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(n: i64, public: bool, owner: Option<&str>) -> Image {
        let mut i = Image::new(ImageId::random(), Timestamp::from_unix_micros(n));
        i.name = Some(format!("img{n}"));
        i.status = Status::Active;
        i.visibility = Visibility::from_is_public(public);
        i.owner = owner.map(String::from);
        i
    }

    #[test]
    fn pages_newest_first_and_resume_after_marker() {
        let images: Vec<Image> = (0..7).map(|n| image(n, true, None)).collect();
        let mut q = ListQuery::new(Viewer::admin());
        q.limit = 3;
        let p1 = q.page(images.clone(), None);
        let names: Vec<_> = p1.iter().map(|i| i.name.clone().unwrap()).collect();
        assert_eq!(names, ["img6", "img5", "img4"]);
        let p2 = q.page(images.clone(), p1.last());
        assert_eq!(p2[0].name.as_deref(), Some("img3"));
        q.sort_dir = SortDir::Asc;
        assert_eq!(q.page(images, None)[0].name.as_deref(), Some("img0"));
    }

    #[test]
    fn sort_by_id_orders_by_id_not_by_creation() {
        // Created in the opposite order of their ids: sort_key=id must follow the ids.
        let (mut a, mut b) = (image(2, true, None), image(1, true, None));
        a.id = ImageId::from_bytes([1; 16]);
        b.id = ImageId::from_bytes([2; 16]);
        let mut q = ListQuery::new(Viewer::admin());
        q.sort_key = SortKey::Id;
        q.sort_dir = SortDir::Asc;
        let ids: Vec<_> = q.page([b.clone(), a.clone()], None).into_iter().map(|i| i.id).collect();
        assert_eq!(ids, [a.id, b.id]);
    }

    #[test]
    fn killed_and_deleted_are_hidden() {
        let mut a = image(1, true, None);
        let mut b = image(2, true, None);
        a.status = Status::Killed;
        b.deleted = true;
        b.status = Status::Deleted;
        let q = ListQuery::new(Viewer::admin());
        assert!(q.page([a, b], None).is_empty());
    }

    #[test]
    fn tenants_see_public_own_and_shared() {
        let mut shared = image(1, false, Some("other"));
        shared.members.push(crate::Member::new("me", false, Timestamp::from_unix_micros(1)));
        let mine = image(2, false, Some("me"));
        let theirs = image(3, false, Some("other"));
        let public = image(4, true, Some("other"));
        let me = Viewer { is_admin: false, tenant: Some("me".into()) };
        let q = ListQuery::new(me);
        let seen: Vec<_> = q.page([shared, mine, theirs, public], None).into_iter().map(|i| i.name.unwrap()).collect();
        assert_eq!(seen, ["img4", "img2", "img1"]);
    }

    #[test]
    fn is_public_filters_as_e0_lists_do() {
        let mut mine = image(1, false, Some("me"));
        mine.name = Some("mine".into());
        let mut ownerless = image(2, false, None);
        ownerless.name = Some("ownerless".into());
        let mut public = image(3, true, Some("other"));
        public.name = Some("public".into());
        let names = |q: &ListQuery| -> Vec<String> {
            q.page([mine.clone(), ownerless.clone(), public.clone()], None)
                .into_iter()
                .map(|i| i.name.unwrap())
                .collect()
        };
        let mut admin = ListQuery::new(Viewer { is_admin: true, tenant: Some("me".into()) });
        assert_eq!(names(&admin), ["public", "ownerless", "mine"]);
        admin.filters.is_public = Some(true);
        assert_eq!(names(&admin), ["public", "mine"]);
        admin.filters.is_public = Some(false);
        assert_eq!(names(&admin), ["ownerless", "mine"]);
        let mut noauth = ListQuery::new(Viewer::admin());
        noauth.filters.is_public = Some(true);
        assert_eq!(names(&noauth), ["public"]);
        // A tenant never lists another's private images, owner-less ones included.
        let mut tenant = ListQuery::new(Viewer { is_admin: false, tenant: Some("me".into()) });
        assert_eq!(names(&tenant), ["public", "mine"]);
        tenant.filters.is_public = Some(false);
        assert_eq!(names(&tenant), ["mine"]);
    }

    #[test]
    fn filters_must_all_match() {
        let mut a = image(1, true, None);
        a.size = 100;
        a.properties.insert("os".into(), "linux".into());
        let mut q = ListQuery::new(Viewer::admin());
        q.filters.size_min = Some(50);
        q.filters.properties.insert("os".into(), "linux".into());
        assert!(q.matches(&a));
        q.filters.size_max = Some(99);
        assert!(!q.matches(&a));
    }

    #[test]
    fn query_json_leaves_out_what_is_unset_and_refuses_what_it_does_not_know() {
        let q = ListQuery::new(Viewer::admin());
        let json = serde_json::to_value(&q).unwrap();
        assert!(json.get("filters").is_none(), "no filter, no key: {json}");
        let mut q = q;
        q.filters.size_min = Some(3);
        let json = serde_json::to_value(&q).unwrap();
        assert_eq!(json["filters"], serde_json::json!({"size_min": 3}), "only what is set");
        let mut future = json.clone();
        future["filters"]["colour"] = "blue".into();
        let e = serde_json::from_value::<ListQuery>(future).unwrap_err().to_string();
        assert!(e.contains("unknown field `colour`"), "{e}");
        let mut future = json;
        future["sort_key"] = "popularity".into();
        let e = serde_json::from_value::<ListQuery>(future).unwrap_err().to_string();
        assert!(e.contains("unknown variant `popularity`"), "{e}");
    }

    #[test]
    fn v2_visibility_member_status_tags_and_os_hidden_filter() {
        use crate::{Member, MemberStatus};
        let mut community = image(1, false, Some("other"));
        community.visibility = Visibility::Community;
        let mut pending = image(2, false, Some("other"));
        pending.members.push(Member::new("me", false, Timestamp::from_unix_micros(1)));
        let mut accepted = image(3, false, Some("other"));
        let mut m = Member::new("me", false, Timestamp::from_unix_micros(1));
        m.status = MemberStatus::Accepted;
        accepted.members.push(m);
        let mut private_member = accepted.clone();
        private_member.id = ImageId::random();
        private_member.name = Some("img4".into());
        private_member.visibility = Visibility::Private;
        let mut hidden = image(5, true, Some("other"));
        hidden.os_hidden = true;
        hidden.tags.insert("gold".into());
        let all = [community, pending, accepted, private_member, hidden];
        let names =
            |q: &ListQuery| -> Vec<String> { q.page(all.clone(), None).into_iter().map(|i| i.name.unwrap()).collect() };
        let me = Viewer { is_admin: false, tenant: Some("me".into()) };
        let mut q = ListQuery::new(me);
        assert_eq!(names(&q), ["img5", "img3", "img2"], "v1: any membership, no community, no private members");
        q.filters.member_status = Some(MemberStatus::Accepted);
        q.filters.os_hidden = Some(false);
        assert_eq!(names(&q), ["img3"], "v2's default: accepted memberships, no hidden images");
        q.filters.visibility = Some(VisibilityFilter::Community);
        assert_eq!(names(&q), ["img1"], "community images when asked for");
        q.filters.visibility = Some(VisibilityFilter::All);
        assert_eq!(names(&q), ["img3", "img1"]);
        q.filters = Filters::default();
        q.filters.tags.insert("gold".into());
        assert_eq!(names(&q), ["img5"]);
        q.filters.owner = Some("nobody".into());
        assert!(names(&q).is_empty());
    }

    #[test]
    fn v2_operators_and_sorts_by_several_keys() {
        let mut images: Vec<Image> = (0..6).map(|n| image(n, true, None)).collect();
        for (n, i) in images.iter_mut().enumerate() {
            i.name = Some(if n % 2 == 0 { "even" } else { "odd" }.into());
            i.size = 10 - n as u64;
        }
        let mut q = ListQuery::new(Viewer::admin());
        q.sort_key = SortKey::Name;
        q.sort_dir = SortDir::Asc;
        q.then_by = vec![(SortKey::Size, SortDir::Asc)];
        let sizes: Vec<u64> = q.page(images.clone(), None).iter().map(|i| i.size).collect();
        assert_eq!(sizes, [6, 8, 10, 5, 7, 9], "name ascending, then size ascending within a name");
        // Paging by marker follows the same order.
        q.limit = 2;
        let p1 = q.page(images.clone(), None);
        let p2 = q.page(images.clone(), p1.last());
        assert_eq!(p2.iter().map(|i| i.size).collect::<Vec<_>>(), [10, 5]);
        // Times compare at whole seconds, the precision v2 shows them in.
        let second = |n: i64| Timestamp::from_unix_micros(n * 1_000_000 + 123);
        let mut timed = images.clone();
        for (n, i) in timed.iter_mut().enumerate() {
            i.created_at = second(n as i64);
        }
        let mut q = ListQuery::new(Viewer::admin());
        q.filters.times.push(TimeFilter { field: TimeField::CreatedAt, op: Cmp::Gte, at: second(2) });
        let neq = Timestamp::from_unix_micros(4_000_000);
        q.filters.times.push(TimeFilter { field: TimeField::CreatedAt, op: Cmp::Neq, at: neq });
        let created: Vec<i64> = q.page(timed, None).iter().map(|i| i.created_at.unix_micros() / 1_000_000).collect();
        assert_eq!(created, [5, 3, 2]);
        let mut q = ListQuery::new(Viewer::admin());
        q.filters.one_of.insert(InField::Id, [images[1].id.to_string(), images[4].id.to_string()].into());
        let ids: Vec<ImageId> = q.page(images.clone(), None).iter().map(|i| i.id).collect();
        assert_eq!(ids, [images[4].id, images[1].id]);
        q.filters.one_of.insert(InField::Name, ["even".to_string()].into());
        assert_eq!(q.page(images.clone(), None).iter().map(|i| i.id).collect::<Vec<_>>(), [images[4].id]);
    }

    #[test]
    fn a_page_of_many_is_the_best_of_them_and_created_at_can_lead_a_sort() {
        let images: Vec<Image> = (0..500).map(|n| image((n * 7919) % 500, true, None)).collect();
        let mut q = ListQuery::new(Viewer::admin());
        q.limit = 3;
        let created: Vec<i64> = q.page(images.clone(), None).iter().map(|i| i.created_at.unix_micros()).collect();
        assert_eq!(created, [499, 498, 497], "cutting back as it goes keeps the best");
        q.sort_key = SortKey::CreatedAt;
        q.sort_dir = SortDir::Asc;
        q.then_by = vec![(SortKey::Name, SortDir::Desc)];
        let created: Vec<i64> = q.page(images, None).iter().map(|i| i.created_at.unix_micros()).collect();
        assert_eq!(created, [0, 1, 2], "created_at leads when it is the first key");
    }

    #[test]
    fn query_round_trips_through_json() {
        let mut q = ListQuery::new(Viewer::admin());
        q.filters.status = Some(Status::Active);
        q.marker = Some(ImageId::random());
        let json = serde_json::to_string(&q).unwrap();
        assert_eq!(serde_json::from_str::<ListQuery>(&json).unwrap(), q);
    }
}
