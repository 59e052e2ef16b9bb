//! Metadata operations: read, list, change, members, tags, (de)activation, and the
//! registry API's record operations.
//!
//! Every write is a read-modify-write on the record's revision. Without an expected
//! revision a conflict is read again and the request applied on top, so concurrent
//! requests never lose each other's changes; with one, a conflict is the caller's to
//! resolve.

use tank_core::{query::ListQuery, Caller, Change, Image, ImageId, Member, MemberStatus, Status, Visibility};
use tank_sdk::{ErrorKind, Revision, Revisioned};

use crate::{error::Operation, now, policy::Target, transfer::Stop, Action, ImageError, Images, Inner, Result};

/// How often a change is retried when other requests keep changing the image.
const RETRIES: usize = 16;

/// Whether a read shows deleted records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// Deleted images are not found (the APIs).
    Hide,
    /// Deleted records are shown to admins (the registry API); others never see them.
    ShowToAdmins,
}

/// Who may give which changes: clients, or the registry API's trusted servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Client,
    Record,
}

impl Inner {
    /// The record of `id`, however deleted.
    pub(crate) async fn read(&self, id: ImageId) -> Result<Revisioned<Image>> {
        match self.registry(move |r| r.get(id)).await? {
            Ok(record) => Ok(record),
            Err(e) if e.kind == ErrorKind::NOT_FOUND => Err(ImageError::NotFound(id)),
            Err(e) => Err(ImageError::registry(e)),
        }
    }

    /// The record of `id` if `who` may see it: deleted images and images the policy hides
    /// are not found, never forbidden.
    pub(crate) async fn visible(&self, who: &Caller, id: ImageId, deleted: Deleted) -> Result<Revisioned<Image>> {
        let record = self.read(id).await?;
        let gone = record.value.is_deleted() && (deleted == Deleted::Hide || !who.is_admin);
        if gone {
            return Err(ImageError::NotFound(id));
        }
        self.check(who, Action::GetImage, Target::image(&record.value))?;
        Ok(record)
    }

    /// Writes `image` at `revision`: `Ok(None)` when another request changed it first.
    pub(crate) async fn write(&self, image: &Image, revision: Revision) -> Result<Option<Revision>> {
        let written = image.clone();
        match self.registry(move |r| r.update(&written, revision)).await? {
            Ok(next) => Ok(Some(next)),
            Err(e) if e.kind == ErrorKind::CONFLICT => Ok(None),
            Err(e) if e.kind == ErrorKind::NOT_FOUND => Err(ImageError::NotFound(image.id)),
            Err(e) => Err(ImageError::registry(e)),
        }
    }

    /// Reads `id` as `who` sees it, lets `change` decide and apply what to do, and writes
    /// the result at the revision read, until no other request came in between. `change`
    /// answers `false` for "nothing to write".
    pub(crate) async fn modify(
        &self,
        who: &Caller,
        id: ImageId,
        deleted: Deleted,
        expect: Option<Revision>,
        mut change: impl FnMut(&mut Image) -> Result<bool>,
    ) -> Result<Revisioned<Image>> {
        for _ in 0..RETRIES {
            let record = self.visible(who, id, deleted).await?;
            if let Some(want) = expect.filter(|&want| want != record.revision) {
                return Err(stale(id, record.revision, want));
            }
            let mut image = record.value;
            if !change(&mut image)? {
                return Ok(Revisioned { revision: record.revision, value: image });
            }
            match self.write(&image, record.revision).await? {
                Some(revision) => return Ok(Revisioned { revision, value: image }),
                None if expect.is_some() => {
                    return Err(ImageError::Conflict(format!("image {id} changed since it was read; read it again")))
                }
                None => continue,
            }
        }
        Err(ImageError::Conflict(format!("image {id} keeps changing under this request; retry")))
    }

    /// Moves image `id` to `to` if its status passes `from`, re-reading on conflicts,
    /// whoever asks (the caller was checked before). Answers whether it moved: nothing
    /// changes when `from` fails.
    pub(crate) async fn move_status(&self, id: ImageId, to: Status, from: impl Fn(&Status) -> bool) -> Result<bool> {
        loop {
            let record = self.read(id).await?;
            if !from(&record.value.status) {
                return Ok(false);
            }
            let mut image = record.value;
            image.set_status(to.clone(), now())?;
            if self.write(&image, record.revision).await?.is_some() {
                return Ok(true);
            }
        }
    }

    /// Checks `changes` from `who` against `image` and returns the ones to apply: the
    /// owner is the admins' to change (others' owner changes are dropped, as E0's registry
    /// dropped them), visibility changes need their policy, and the size and checksum of
    /// an image with data stay what they are.
    pub(crate) fn admit(
        &self,
        who: &Caller,
        image: Option<&Image>,
        changes: Vec<Change>,
        mode: Mode,
    ) -> Result<Vec<Change>> {
        let target = Target { image, member: None };
        let mut kept = Vec::with_capacity(changes.len());
        for change in changes {
            // The formats say what the data is: they change only before it is there.
            let before_data = |i: &&Image| matches!(i.status, Status::Queued | Status::Uploading);
            if let Some(image) = image.filter(|i| mode == Mode::Client && !before_data(i)) {
                let field = match &change {
                    Change::DiskFormat(f) if *f != image.disk_format => Some("disk_format"),
                    Change::ContainerFormat(f) if *f != image.container_format => Some("container_format"),
                    _ => None,
                };
                if let Some(field) = field {
                    return Err(fixed(image, field));
                }
            }
            match &change {
                Change::Owner(_) if !who.is_admin => continue,
                c if c.is_record_change() && mode == Mode::Client => {
                    return Err(ImageError::NotAllowed(format!("{c:?} is the server's to change")));
                }
                Change::Visibility(v) if image.is_none_or(|i| i.visibility != *v) => match v {
                    Visibility::Public => self.check(who, Action::PublicizeImage, target)?,
                    Visibility::Community => self.check(who, Action::CommunitizeImage, target)?,
                    Visibility::Shared | Visibility::Private => {}
                },
                Change::Size(size) if mode == Mode::Client => {
                    // A declared size over a cap is refused in every request, with data or
                    // without (E0 refused the header itself): such a reservation could never
                    // be filled.
                    if *size > crate::SIZE_CAP {
                        return Err(ImageError::TooLarge {
                            size: *size,
                            limit: crate::SIZE_CAP,
                            which: crate::SizeLimit::Absolute,
                        });
                    }
                    if *size > self.settings.image_size_cap {
                        let limit = self.settings.image_size_cap;
                        return Err(ImageError::TooLarge { size: *size, limit, which: crate::SizeLimit::ImageSizeCap });
                    }
                    if let Some(image) = image.filter(|i| i.status != Status::Queued && i.size != *size) {
                        return Err(fixed(image, "size"));
                    }
                }
                Change::Checksum(sum) if mode == Mode::Client => {
                    if let Some(image) = image.filter(|i| i.status != Status::Queued && i.checksum != *sum) {
                        return Err(fixed(image, "checksum"));
                    }
                }
                Change::DiskFormat(Some(f)) if mode == Mode::Client && !self.settings.disk_formats.contains(f) => {
                    return Err(not_enabled("disk_format", f.as_str(), &self.settings.disk_formats));
                }
                Change::ContainerFormat(Some(f))
                    if mode == Mode::Client && !self.settings.container_formats.contains(f) =>
                {
                    return Err(not_enabled("container_format", f.as_str(), &self.settings.container_formats));
                }
                Change::SetProperty(key, _) | Change::RemoveProperty(key)
                    if mode == Mode::Client && key.starts_with(crate::RESERVED_PREFIX) =>
                {
                    return Err(reserved(key));
                }
                Change::SetProperty(key, _) if mode == Mode::Client && is_attribute(key) => {
                    return Err(attribute(key));
                }
                Change::ReplaceProperties(all) if mode == Mode::Client => {
                    // The server's own properties stay what they are through a replace.
                    let current = image.map(|i| &i.properties);
                    let mut all = all.clone();
                    for (key, value) in current.into_iter().flatten() {
                        if key.starts_with(crate::RESERVED_PREFIX) {
                            all.insert(key.clone(), value.clone());
                        }
                    }
                    if let Some(key) = all
                        .keys()
                        .find(|k| k.starts_with(crate::RESERVED_PREFIX) && current.is_none_or(|c| !c.contains_key(*k)))
                    {
                        return Err(reserved(key));
                    }
                    if let Some(key) =
                        all.keys().find(|k| is_attribute(k) && current.is_none_or(|c| !c.contains_key(*k)))
                    {
                        return Err(attribute(key));
                    }
                    kept.push(Change::ReplaceProperties(all));
                    continue;
                }
                Change::AddTag(tag) | Change::RemoveTag(tag) => check_tag(tag)?,
                Change::ReplaceTags(tags) => tags.iter().try_for_each(|t| check_tag(t))?,
                _ => {}
            }
            kept.push(change);
        }
        Ok(kept)
    }

    /// Applies `changes` to `image` and checks the limits the result must keep.
    pub(crate) fn apply(&self, image: &mut Image, changes: &[Change]) -> Result<()> {
        image.apply(changes, now())?;
        let s = &self.settings;
        if image.tags.len() > s.image_tag_quota {
            return Err(ImageError::TooMany { what: "tags", limit: s.image_tag_quota, setting: "image_tag_quota" });
        }
        // The server's own properties do not count against the client's quota.
        let properties = image.properties.keys().filter(|k| !k.starts_with(crate::RESERVED_PREFIX)).count();
        if properties > s.image_property_quota {
            let limit = s.image_property_quota;
            return Err(ImageError::TooMany { what: "properties", limit, setting: "image_property_quota" });
        }
        Ok(())
    }

    /// Checks `image`'s members against `image_member_quota`.
    fn check_member_quota(&self, image: &Image) -> Result<()> {
        let limit = self.settings.image_member_quota;
        if image.members.len() > limit {
            return Err(ImageError::TooMany { what: "members", limit, setting: "image_member_quota" });
        }
        Ok(())
    }

    /// Changes `id`'s members as `who`, with `action`'s permission: `f` changes the list
    /// and answers whether it changed anything.
    async fn change_members(
        &self,
        who: &Caller,
        id: ImageId,
        actions: &[Action],
        member: Option<&str>,
        mut f: impl FnMut(&mut Image) -> Result<bool>,
    ) -> Result<()> {
        if who.owner().is_none() {
            // E0: sharing needs a tenant to share from.
            return Err(ImageError::Unauthenticated(
                "no authenticated user: sharing an image needs a caller with a tenant".into(),
            ));
        }
        self.modify(who, id, Deleted::Hide, None, |image| {
            for &action in actions {
                let target = match member {
                    Some(m) => Target::member(image, m),
                    None => Target::image(image),
                };
                self.check(who, action, target)?;
            }
            let changed = f(image)?;
            if changed {
                // v1 lists a re-shared image under `changes-since`.
                image.updated_at = now();
            }
            Ok(changed)
        })
        .await
        .map(drop)
    }
}

fn stale(id: ImageId, have: Revision, want: Revision) -> ImageError {
    ImageError::Conflict(format!("image {id} changed since it was read (revision {have}, not {want}); read it again"))
}

fn not_enabled<T: std::fmt::Display>(field: &'static str, value: &str, enabled: &[T]) -> ImageError {
    let list: Vec<String> = enabled.iter().map(T::to_string).collect();
    ImageError::Invalid {
        field,
        reason: format!("{value:?} is not enabled on this server; it accepts {} ({field}s)", list.join(", ")),
    }
}

/// v2's sharing is the owner's: a v1 `can_share` member is refused as if the image were
/// not there, as E0 refused sharing.
fn owner_only(who: &Caller, image: &Image) -> Result<()> {
    if who.viewer().can_modify(image) {
        Ok(())
    } else {
        Err(ImageError::NotFound(image.id))
    }
}

fn is_attribute(key: &str) -> bool {
    tank_core::ATTRIBUTE_NAMES.contains(&key)
}

fn attribute(key: &str) -> ImageError {
    ImageError::NotAllowed(format!("{key:?} is an image attribute, not a custom property; set the attribute itself"))
}

fn reserved(key: &str) -> ImageError {
    ImageError::NotAllowed(format!(
        "property {key:?} is reserved: properties starting with {} are set by the server only",
        crate::RESERVED_PREFIX
    ))
}

fn fixed(image: &Image, field: &'static str) -> ImageError {
    ImageError::DataFieldFixed { image: image.id, field, status: image.status.clone() }
}

/// A member id: a tenant name of 1 to 255 characters.
fn check_member(member: &str) -> Result<()> {
    if member.trim().is_empty() || member.len() > 255 {
        return Err(ImageError::Invalid {
            field: "member",
            reason: "a member id must be a tenant name of 1 to 255 characters".into(),
        });
    }
    Ok(())
}

/// A tag: 1 to 255 characters, none of them a control character.
fn check_tag(tag: &str) -> Result<()> {
    if tag.is_empty() || tag.len() > 255 || tag.chars().any(char::is_control) {
        return Err(ImageError::Invalid {
            field: "tag",
            reason: format!("{tag:?}: a tag is 1 to 255 characters, none of them control characters"),
        });
    }
    Ok(())
}

impl Images {
    /// Image `id` as `who` may see it.
    pub async fn get(&self, who: &Caller, id: ImageId) -> Result<Revisioned<Image>> {
        self.inner.visible(who, id, Deleted::Hide).await
    }

    /// Image `id`'s record as the registry API shows it: deleted records too, to admins.
    pub async fn get_record(&self, who: &Caller, id: ImageId) -> Result<Revisioned<Image>> {
        self.inner.visible(who, id, Deleted::ShowToAdmins).await
    }

    /// One page of the images `who` may list. The query's viewer is the caller's,
    /// whatever it says.
    ///
    /// A marker must name an image the caller may see: otherwise a caller could page from
    /// an image hidden from it and learn from the answer that it exists, and where it
    /// sorts. Every image the driver answers with is checked against the query, so a
    /// driver that ignores a filter (built before the filter existed) is refused, not
    /// believed.
    pub async fn list(&self, who: &Caller, mut query: ListQuery) -> Result<Vec<Image>> {
        self.inner.check(who, Action::GetImages, Target::default())?;
        query.viewer = who.viewer();
        let bad_marker =
            |m: ImageId| ImageError::Invalid { field: "marker", reason: format!("no image {m} is visible to you") };
        if let Some(marker) = query.marker.filter(|_| !who.is_admin) {
            match self.inner.read(marker).await {
                Ok(record) if !query.viewer.can_see(&record.value) => return Err(bad_marker(marker)),
                Ok(_) | Err(ImageError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let q = query.clone();
        let page = match self.inner.registry(move |r| r.list(&q)).await? {
            Ok(page) => page,
            Err(e) if e.kind == ErrorKind::INVALID_INPUT && query.marker.is_some() => {
                return Err(bad_marker(query.marker.expect("checked")))
            }
            Err(e) => return Err(ImageError::registry(e)),
        };
        if let Some(stray) = page.iter().find(|i| !query.matches(i)) {
            let driver = self.inner.registry.name();
            tracing::error!(registry = driver, image = %stray.id, ?query, "the registry driver answered a list with an image the query excludes");
            return Err(ImageError::Registry {
                kind: ErrorKind::UNSUPPORTED,
                message: format!(
                    "the registry driver '{driver}' answered a list with an image the query excludes: it ignores a \
                     filter this server sends; upgrade the registry driver plugin"
                ),
            });
        }
        Ok(page)
    }

    /// Every image shared with `member` that `who` may see, gathered page by page.
    pub async fn shared_with(&self, who: &Caller, member: &str) -> Result<Vec<Image>> {
        let mut query = ListQuery::new(who.viewer());
        query.filters.member = Some(member.to_owned());
        query.limit = self.inner.settings.page_max;
        let mut shared = Vec::new();
        loop {
            let page = self.list(who, query.clone()).await?;
            let full = page.len() == query.limit as usize;
            query.marker = page.last().map(|i| i.id);
            shared.extend(page);
            if !full {
                return Ok(shared);
            }
        }
    }

    /// The members of image `id`.
    pub async fn members(&self, who: &Caller, id: ImageId) -> Result<Vec<Member>> {
        let image = self.get(who, id).await?.value;
        self.inner.check(who, Action::GetMembers, Target::image(&image))?;
        Ok(image.members)
    }

    /// The memberships of image `id` that `who` may know of (v2's rule): all of them for
    /// admins and the owner, only its own for a member.
    pub async fn memberships(&self, who: &Caller, id: ImageId) -> Result<Vec<Member>> {
        let image = self.get(who, id).await?.value;
        self.inner.check(who, Action::GetMembers, Target::image(&image))?;
        let viewer = who.viewer();
        if viewer.can_modify(&image) {
            return Ok(image.members);
        }
        Ok(image.members.into_iter().filter(|m| viewer.tenant.as_deref() == Some(m.member_id.as_str())).collect())
    }

    /// The membership of `member` in image `id`.
    pub async fn member(&self, who: &Caller, id: ImageId, member: &str) -> Result<Member> {
        let image = self.get(who, id).await?.value;
        self.inner.check(who, Action::GetMember, Target::member(&image, member))?;
        image.member(member).cloned().ok_or_else(|| ImageError::MemberNotFound { image: id, member: member.into() })
    }

    /// Shares image `id` with `member` (a new membership is `pending`); `can_share` sets
    /// that flag on a new or an existing membership, `None` leaves an existing one as it
    /// is. Answers whether anything changed.
    pub async fn add_member(&self, who: &Caller, id: ImageId, member: &str, can_share: Option<bool>) -> Result<bool> {
        check_member(member)?;
        let mut changed = false;
        self.inner
            .change_members(who, id, &[Action::AddMember], Some(member), |image| {
                let members = &mut image.members;
                changed = match members.iter_mut().find(|m| m.member_id == member) {
                    Some(m) => {
                        let differs = can_share.is_some_and(|c| c != m.can_share);
                        if differs {
                            m.can_share = can_share.unwrap_or(m.can_share);
                            m.updated_at = now();
                        }
                        differs
                    }
                    None => {
                        members.push(Member::new(member, can_share.unwrap_or(false), now()));
                        true
                    }
                };
                self.inner.check_member_quota(image)?;
                Ok(changed)
            })
            .await?;
        Ok(changed)
    }

    /// Offers image `id` to `member` as v2 does: only an image whose visibility is
    /// `shared` has members, and offering it twice to one member is a conflict. The new
    /// membership is `pending` until the member answers.
    pub async fn offer(&self, who: &Caller, id: ImageId, member: &str) -> Result<Member> {
        check_member(member)?;
        let mut offered = None;
        self.inner
            .change_members(who, id, &[Action::AddMember], Some(member), |image| {
                owner_only(who, image)?;
                if image.visibility != Visibility::Shared {
                    return Err(ImageError::NotAllowed(format!(
                        "image {id} is {}: only images with visibility shared have members; set it to shared first",
                        image.visibility
                    )));
                }
                if image.members.iter().any(|m| m.member_id == member) {
                    return Err(ImageError::Conflict(format!("{member} is already a member of image {id}")));
                }
                let m = Member::new(member, false, now());
                offered = Some(m.clone());
                image.members.push(m);
                self.inner.check_member_quota(image)?;
                Ok(true)
            })
            .await?;
        offered.ok_or_else(|| ImageError::Internal("the membership was not written".into()))
    }

    /// Withdraws the offer of image `id` to `member` as v2 does: the owner's (or an
    /// admin's) call only; v1's `can_share` gives no such right in v2.
    pub async fn withdraw(&self, who: &Caller, id: ImageId, member: &str) -> Result<()> {
        self.inner
            .change_members(who, id, &[Action::DeleteMember], Some(member), |image| {
                owner_only(who, image)?;
                let before = image.members.len();
                image.members.retain(|m| m.member_id != member);
                if image.members.len() == before {
                    return Err(ImageError::MemberNotFound { image: id, member: member.into() });
                }
                Ok(true)
            })
            .await
    }

    /// Stops sharing image `id` with `member`.
    pub async fn remove_member(&self, who: &Caller, id: ImageId, member: &str) -> Result<()> {
        self.inner
            .change_members(who, id, &[Action::DeleteMember], Some(member), |image| {
                let members = &mut image.members;
                let before = members.len();
                members.retain(|m| m.member_id != member);
                if members.len() == before {
                    return Err(ImageError::MemberNotFound { image: id, member: member.into() });
                }
                Ok(true)
            })
            .await
    }

    /// Makes image `id`'s members exactly `wanted`; a member named without `can_share`
    /// keeps its flag (new ones get `false`) and its status.
    pub async fn replace_members(&self, who: &Caller, id: ImageId, wanted: Vec<(String, Option<bool>)>) -> Result<()> {
        // In the order named; a member named twice keeps its first place and last flag.
        let mut named: Vec<(String, Option<bool>)> = Vec::with_capacity(wanted.len());
        for (member, can_share) in wanted {
            check_member(&member)?;
            match named.iter_mut().find(|(m, _)| *m == member) {
                Some(seen) => seen.1 = can_share,
                None => named.push((member, can_share)),
            }
        }
        self.inner
            .change_members(who, id, &[Action::AddMember, Action::DeleteMember], None, |image| {
                let members = &mut image.members;
                let at = now();
                let next: Vec<Member> = named
                    .iter()
                    .map(|(member_id, can_share)| match members.iter().find(|m| &m.member_id == member_id) {
                        Some(old) if can_share.is_none_or(|c| c == old.can_share) => old.clone(),
                        Some(old) => {
                            Member { can_share: can_share.unwrap_or(old.can_share), updated_at: at, ..old.clone() }
                        }
                        None => Member::new(member_id.clone(), can_share.unwrap_or(false), at),
                    })
                    .collect();
                let changed = *members != next;
                *members = next;
                self.inner.check_member_quota(image)?;
                Ok(changed)
            })
            .await
    }

    /// Sets `member`'s answer to the offer of image `id` (v2: the member's own call).
    pub async fn set_member_status(
        &self,
        who: &Caller,
        id: ImageId,
        member: &str,
        status: MemberStatus,
    ) -> Result<Member> {
        let record = self
            .inner
            .modify(who, id, Deleted::Hide, None, |image| {
                self.inner.check(who, Action::ModifyMember, Target::member(image, member))?;
                let m = image
                    .members
                    .iter_mut()
                    .find(|m| m.member_id == member)
                    .ok_or_else(|| ImageError::MemberNotFound { image: id, member: member.into() })?;
                if m.status == status {
                    return Ok(false);
                }
                (m.status, m.updated_at) = (status, now());
                Ok(true)
            })
            .await?;
        record
            .value
            .member(member)
            .cloned()
            .ok_or_else(|| ImageError::MemberNotFound { image: id, member: member.into() })
    }

    /// Tags image `id` with `tag`.
    pub async fn add_tag(&self, who: &Caller, id: ImageId, tag: &str) -> Result<Image> {
        let change = vec![Change::AddTag(tag.to_owned())];
        self.tag(who, id, Action::AddTag, change).await
    }

    /// Removes `tag` from image `id`; a tag it does not have is not found.
    pub async fn remove_tag(&self, who: &Caller, id: ImageId, tag: &str) -> Result<Image> {
        let change = vec![Change::RemoveTag(tag.to_owned())];
        self.tag(who, id, Action::DeleteTag, change).await
    }

    async fn tag(&self, who: &Caller, id: ImageId, action: Action, changes: Vec<Change>) -> Result<Image> {
        let inner = &self.inner;
        let record = inner
            .modify(who, id, Deleted::Hide, None, |image| {
                inner.check(who, action, Target::image(image))?;
                let changes = inner.admit(who, Some(image), changes.clone(), Mode::Client)?;
                if let [Change::RemoveTag(tag)] = changes.as_slice() {
                    if !image.tags.contains(tag) {
                        return Err(ImageError::Invalid {
                            field: "tag",
                            reason: format!("image {id} has no tag {tag:?}"),
                        });
                    }
                }
                if let [Change::AddTag(tag)] = changes.as_slice() {
                    if image.tags.contains(tag) {
                        return Ok(false);
                    }
                }
                inner.apply(image, &changes)?;
                Ok(true)
            })
            .await?;
        Ok(record.value)
    }

    /// Turns downloads of image `id` off (for all but admins); a deactivated image stays
    /// deactivated.
    pub async fn deactivate(&self, who: &Caller, id: ImageId) -> Result<Image> {
        self.activation(who, id, Action::Deactivate, Status::Deactivated).await
    }

    /// Turns downloads of a deactivated image `id` back on.
    pub async fn reactivate(&self, who: &Caller, id: ImageId) -> Result<Image> {
        self.activation(who, id, Action::Reactivate, Status::Active).await
    }

    async fn activation(&self, who: &Caller, id: ImageId, action: Action, to: Status) -> Result<Image> {
        let inner = &self.inner;
        let wanted = if to == Status::Active { Operation::Reactivate } else { Operation::Deactivate };
        let record = inner
            .modify(who, id, Deleted::Hide, None, |image| {
                inner.check(who, action, Target::image(image))?;
                if image.status == to {
                    return Ok(false);
                }
                if !matches!(image.status, Status::Active | Status::Deactivated) {
                    return Err(ImageError::WrongStatus { image: id, status: image.status.clone(), wanted });
                }
                image.set_status(to.clone(), now())?;
                Ok(true)
            })
            .await?;
        Ok(record.value)
    }

    /// Changes image `id`'s metadata only (no data comes with it): a client's change, or,
    /// with `expect`, one at the revision the caller read.
    pub async fn update_metadata(
        &self,
        who: &Caller,
        id: ImageId,
        changes: Vec<Change>,
        expect: Option<Revision>,
    ) -> Result<Revisioned<Image>> {
        self.change(who, id, changes, expect, Mode::Client, Deleted::Hide).await
    }

    pub(crate) async fn change(
        &self,
        who: &Caller,
        id: ImageId,
        changes: Vec<Change>,
        expect: Option<Revision>,
        mode: Mode,
        deleted: Deleted,
    ) -> Result<Revisioned<Image>> {
        let inner = &self.inner;
        inner
            .modify(who, id, deleted, expect, |image| {
                inner.check(who, Action::ModifyImage, Target::image(image))?;
                let changes = inner.admit(who, Some(image), changes.clone(), mode)?;
                inner.apply(image, &changes)?;
                Ok(true)
            })
            .await
    }

    /// The registry API's update: any field, the status through the state machine.
    pub async fn update_record(
        &self,
        who: &Caller,
        id: ImageId,
        changes: Vec<Change>,
        expect: Option<Revision>,
    ) -> Result<Revisioned<Image>> {
        self.change(who, id, changes, expect, Mode::Record, Deleted::ShowToAdmins).await
    }

    /// The registry API's create: a record in any status, with any fields. The caller
    /// owns it unless an admin names another owner.
    pub async fn create_record(
        &self,
        who: &Caller,
        id: Option<ImageId>,
        status: Status,
        changes: Vec<Change>,
    ) -> Result<Revisioned<Image>> {
        let inner = &self.inner;
        inner.check(who, Action::AddImage, Target::default())?;
        let mut image = Image::new(id.unwrap_or_else(ImageId::random), now());
        image.owner = who.owner().map(str::to_owned);
        let changes = inner.admit(who, None, changes, Mode::Record)?;
        // The status is set, not moved: the record API writes what its callers decided.
        let (status_changes, rest): (Vec<Change>, Vec<Change>) =
            changes.into_iter().partition(|c| matches!(c, Change::Status(_)));
        drop(status_changes);
        inner.apply(&mut image, &rest)?;
        if status.is_deleted() {
            image.deleted = status == Status::Deleted;
            image.deleted_at = Some(image.created_at);
        }
        image.status = status;
        if image.status == Status::Active && (image.disk_format.is_none() || image.container_format.is_none()) {
            return Err(ImageError::Invalid {
                field: "status",
                reason: "an active image needs disk_format and container_format".into(),
            });
        }
        let written = image.clone();
        match inner.registry(move |r| r.create(&written)).await? {
            Ok(revision) => Ok(Revisioned { revision, value: image }),
            Err(e) if e.kind == ErrorKind::DUPLICATE => Err(ImageError::Duplicate(image.id)),
            Err(e) => Err(ImageError::registry(e)),
        }
    }

    /// The registry API's delete: the record becomes `deleted`; its data is the API
    /// server's business.
    pub async fn delete_record(
        &self,
        who: &Caller,
        id: ImageId,
        expect: Option<Revision>,
    ) -> Result<Revisioned<Image>> {
        let inner = &self.inner;
        inner
            .modify(who, id, Deleted::ShowToAdmins, expect, |image| {
                inner.check(who, Action::DeleteImage, Target::image(image))?;
                image.set_status(Status::Deleted, now())?;
                Ok(true)
            })
            .await
    }

    /// Stops this server's upload of `id`, if it runs one.
    pub(crate) fn stop_upload(&self, id: ImageId, why: Stop) {
        let uploads = self.inner.uploads.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(stop) = uploads.get(&id) {
            let _ = stop.send(Some(why));
        }
    }
}
