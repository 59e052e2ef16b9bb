//! List queries: which images a caller sees, in what order, one page at a time.
//!
//! A [`ListQuery`] crosses the registry-driver boundary as JSON. Drivers may answer it with
//! their own indexes, or with [`ListQuery::page`], which any driver can call on a scan.

use std::{cmp::Ordering, collections::BTreeMap};

use serde::{Deserialize, Serialize};

use crate::{ContainerFormat, DiskFormat, Image, ImageId, Status, Timestamp};

/// Who is asking: decides which images are visible.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    /// Admins see every image.
    pub is_admin: bool,
    /// The caller's tenant, if any.
    pub tenant: Option<String>,
}

impl Viewer {
    /// The unauthenticated administrator of a deployment without authentication.
    pub fn admin() -> Self {
        Viewer { is_admin: true, tenant: None }
    }

    /// Whether this caller may see `image` at all.
    pub fn can_see(&self, image: &Image) -> bool {
        self.is_admin
            || image.is_public
            || image.owner.is_none()
            || (self.tenant.is_some() && image.owner == self.tenant)
            || self.tenant.as_ref().is_some_and(|t| image.members.iter().any(|m| &m.member_id == t))
    }
}

/// Attribute filters; every one that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filters {
    /// Exact name.
    pub name: Option<String>,
    /// Exact status.
    pub status: Option<Status>,
    /// Exact disk format.
    pub disk_format: Option<DiskFormat>,
    /// Exact container format.
    pub container_format: Option<ContainerFormat>,
    /// Size at least this.
    pub size_min: Option<u64>,
    /// Size at most this.
    pub size_max: Option<u64>,
    /// `min_ram` at least this.
    pub min_ram: Option<u64>,
    /// `min_disk` at least this.
    pub min_disk: Option<u64>,
    /// Glance's `is_public` list filter. `Some(true)` (the API's default): public images
    /// and those the viewer owns or is a member of; `Some(false)`: private images only;
    /// `None`: no filter. A viewer who is not an admin never gets more than public, own
    /// and shared images, whatever this says.
    pub is_public: Option<bool>,
    /// Exact protection flag.
    pub protected: Option<bool>,
    /// Changed after this moment; deleted images are then included.
    pub changes_since: Option<Timestamp>,
    /// Shared with this tenant.
    pub member: Option<String>,
    /// Properties that must have exactly these values.
    pub properties: BTreeMap<String, String>,
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

/// Whether an unset filter (`None`) or a set one equal to `have`.
fn eq<T: PartialEq>(want: &Option<T>, have: Option<&T>) -> bool {
    want.as_ref().is_none_or(|w| Some(w) == have)
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListQuery {
    /// Who is asking.
    pub viewer: Viewer,
    /// What must match.
    #[serde(default)]
    pub filters: Filters,
    /// Order.
    #[serde(default)]
    pub sort_key: SortKey,
    /// Direction.
    #[serde(default)]
    pub sort_dir: SortDir,
    /// The page starts after this image.
    pub marker: Option<ImageId>,
    /// At most this many images.
    pub limit: u32,
}

impl ListQuery {
    /// The default first page for `viewer`: newest first, 25 images.
    pub fn new(viewer: Viewer) -> Self {
        ListQuery {
            viewer,
            filters: Filters::default(),
            sort_key: SortKey::default(),
            sort_dir: SortDir::default(),
            marker: None,
            limit: 25,
        }
    }

    /// Whether `image` belongs in the result, page bounds aside.
    pub fn matches(&self, image: &Image) -> bool {
        let f = &self.filters;
        let hidden = match f.changes_since {
            Some(t) => image.updated_at <= t,
            None => image.deleted || matches!(image.status, Status::Killed | Status::Deleted | Status::PendingDelete),
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
    }

    /// Visibility in a list (E0's registry `image_get_all`): unlike [`Viewer::can_see`],
    /// images without an owner are listed only when public.
    fn listed(&self, image: &Image) -> bool {
        let v = &self.viewer;
        let mine = v
            .tenant
            .as_ref()
            .is_some_and(|t| image.owner.as_ref() == Some(t) || image.members.iter().any(|m| &m.member_id == t));
        if !(v.is_admin || image.is_public || mine) {
            return false;
        }
        match self.filters.is_public {
            None => true,
            Some(true) => image.is_public || mine,
            Some(false) => !image.is_public,
        }
    }

    /// The total order of the list: the sort key, then `created_at`, then `id`, all in the
    /// chosen direction. The tie-breakers make every marker position unambiguous.
    pub fn compare(&self, a: &Image, b: &Image) -> Ordering {
        let by_key = match self.sort_key {
            SortKey::Id => a.id.cmp(&b.id),
            SortKey::Name => a.name.cmp(&b.name),
            SortKey::Status => a.status.as_str().cmp(b.status.as_str()),
            SortKey::DiskFormat => a.disk_format.map(|d| d.as_str()).cmp(&b.disk_format.map(|d| d.as_str())),
            SortKey::ContainerFormat => {
                a.container_format.map(|c| c.as_str()).cmp(&b.container_format.map(|c| c.as_str()))
            }
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::CreatedAt => Ordering::Equal,
            SortKey::UpdatedAt => a.updated_at.cmp(&b.updated_at),
        };
        let ord = by_key.then(a.created_at.cmp(&b.created_at)).then(a.id.cmp(&b.id));
        match self.sort_dir {
            SortDir::Asc => ord,
            SortDir::Desc => ord.reverse(),
        }
    }

    /// Answers the query from every image the driver has, by scanning. `marker_image` is
    /// the marker's record, which the driver looked up (`None` when there is no marker).
    pub fn page(&self, all: impl IntoIterator<Item = Image>, marker_image: Option<&Image>) -> Vec<Image> {
        let mut hits: Vec<Image> = all
            .into_iter()
            .filter(|i| self.matches(i))
            .filter(|i| marker_image.is_none_or(|m| self.compare(i, m) == Ordering::Greater))
            .collect();
        hits.sort_by(|a, b| self.compare(a, b));
        hits.truncate(self.limit as usize);
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
        i.is_public = public;
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
        shared.members.push(crate::Member { member_id: "me".into(), can_share: false });
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
    fn query_round_trips_through_json() {
        let mut q = ListQuery::new(Viewer::admin());
        q.filters.status = Some(Status::Active);
        q.marker = Some(ImageId::random());
        let json = serde_json::to_string(&q).unwrap();
        assert_eq!(serde_json::from_str::<ListQuery>(&json).unwrap(), q);
    }
}
