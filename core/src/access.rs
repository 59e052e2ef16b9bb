//! Who is calling, and the rules of who may see, change and share an image: pure
//! functions over values, so that every API and the registry server decide them alike,
//! and the tests here can check them by the table.
//!
//! Identity comes from outside (headers of a trusted proxy today, tokens later) as a
//! [`Caller`]; the rules need only its [`Viewer`]: whether it is an admin, and the
//! principal it owns images as.

use serde::{Deserialize, Serialize};

use crate::{Image, MemberStatus, Visibility};

/// The identity of one request, as an authentication layer established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Admins see and change every image.
    pub is_admin: bool,
    /// The user, if known.
    pub user: Option<String>,
    /// The user's tenant (project), if known.
    pub tenant: Option<String>,
    /// The roles the user holds in the tenant.
    pub roles: Vec<String>,
    /// Whether images belong to the tenant (`true`) or to the user (`owner_is_tenant`).
    pub owner_is_tenant: bool,
}

impl Caller {
    /// The unauthenticated administrator of a deployment without authentication.
    pub fn admin() -> Caller {
        Caller { is_admin: true, user: None, tenant: None, roles: Vec::new(), owner_is_tenant: true }
    }

    /// A caller holding `roles` in `tenant`; the role `admin` (any case) makes an admin.
    pub fn new(user: Option<String>, tenant: Option<String>, roles: Vec<String>, owner_is_tenant: bool) -> Caller {
        let is_admin = roles.iter().any(|r| r.eq_ignore_ascii_case("admin"));
        Caller { is_admin, user, tenant, roles, owner_is_tenant }
    }

    /// The principal that owns what this caller creates, and that memberships name.
    pub fn owner(&self) -> Option<&str> {
        if self.owner_is_tenant {
            self.tenant.as_deref()
        } else {
            self.user.as_deref()
        }
    }

    /// The caller as the rules and list queries know it.
    pub fn viewer(&self) -> Viewer {
        Viewer { is_admin: self.is_admin, tenant: self.owner().map(str::to_owned) }
    }
}

/// Who is asking, as the rules need it: crosses the registry-driver boundary in list
/// queries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Viewer {
    /// Admins see every image.
    pub is_admin: bool,
    /// The principal the caller owns images as (its tenant, or its user with
    /// `owner_is_tenant = false`), if any.
    pub tenant: Option<String>,
}

impl Viewer {
    /// The unauthenticated administrator of a deployment without authentication.
    pub fn admin() -> Self {
        Viewer { is_admin: true, tenant: None }
    }

    /// Whether the caller owns `image`.
    pub fn owns(&self, image: &Image) -> bool {
        self.tenant.is_some() && image.owner == self.tenant
    }

    /// The caller's membership of `image`, if the image's visibility lets memberships
    /// count (only `shared` images have members that see them).
    pub fn membership(&self, image: &Image) -> Option<MemberStatus> {
        let me = self.tenant.as_deref()?;
        if image.visibility != Visibility::Shared {
            return None;
        }
        image.members.iter().find(|m| m.member_id == me).map(|m| m.status)
    }

    /// Whether this caller may see `image` at all, deleted or not (Glance's
    /// `is_image_visible`): admins; public and community images; images without an owner
    /// (E0: accessible to all, listed only when public); the owner's; and a shared image's
    /// members, whatever they answered.
    pub fn can_see(&self, image: &Image) -> bool {
        self.is_admin
            || matches!(image.visibility, Visibility::Public | Visibility::Community)
            || image.owner.is_none()
            || self.owns(image)
            || self.membership(image).is_some()
    }

    /// Whether the caller may change or delete `image`: admins, and the owner. An image
    /// without an owner only admins may change.
    pub fn can_modify(&self, image: &Image) -> bool {
        self.is_admin || self.owns(image)
    }

    /// Whether the caller may change `image`'s members (v1's rule): who may modify it,
    /// and members holding `can_share` (of any image but a private one, whose members do
    /// not count).
    pub fn can_share(&self, image: &Image) -> bool {
        let me = self.tenant.as_deref();
        self.can_modify(image)
            || me.is_some_and(|me| {
                image.visibility != Visibility::Private
                    && image.members.iter().any(|m| m.member_id == me && m.can_share)
            })
    }

    /// Whether a refusal to do something to `image`, which the caller can see, should
    /// still read as "not found" (E0's rule): a caller who sees a non-public image only as
    /// a member must learn nothing more of it. Public images, and images the caller
    /// owns (refused an admin's action), answer "forbidden".
    pub fn refusal_hides(&self, image: &Image) -> bool {
        let owns = self.tenant.is_some() && image.owner == self.tenant;
        image.visibility != Visibility::Public && !owns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ImageId, Member, Timestamp};

    fn t(n: i64) -> Timestamp {
        Timestamp::from_unix_micros(n)
    }

    fn image(visibility: Visibility, owner: Option<&str>, members: &[(&str, bool, MemberStatus)]) -> Image {
        let mut i = Image::new(ImageId::random(), t(1));
        i.visibility = visibility;
        i.owner = owner.map(String::from);
        for (m, can_share, status) in members {
            let mut member = Member::new(*m, *can_share, t(1));
            member.status = *status;
            i.members.push(member);
        }
        i
    }

    fn who(tenant: &str) -> Viewer {
        Viewer { is_admin: false, tenant: Some(tenant.into()) }
    }

    #[test]
    fn the_caller_owns_as_its_tenant_or_its_user() {
        let c = Caller::new(Some("alice".into()), Some("acme".into()), vec!["member".into(), "Admin".into()], true);
        assert!(c.is_admin);
        assert_eq!(c.owner(), Some("acme"));
        let c = Caller { owner_is_tenant: false, ..c };
        assert_eq!(c.viewer(), Viewer { is_admin: true, tenant: Some("alice".into()) });
        assert!(!Caller::new(None, Some("acme".into()), vec!["member".into()], true).is_admin);
        assert!(Caller::admin().is_admin && Caller::admin().owner().is_none());
    }

    /// Every visibility × caller: who sees, who changes, who shares.
    #[test]
    fn the_table_of_who_may_do_what() {
        use MemberStatus::*;
        use Visibility::*;
        let members = [("friend", true, Accepted), ("guest", false, Pending), ("no", false, Rejected)];
        // (visibility, caller, sees, modifies, shares)
        let rows: &[(Visibility, &str, bool, bool, bool)] = &[
            (Public, "owner", true, true, true),
            (Public, "friend", true, false, true),
            (Public, "stranger", true, false, false),
            (Community, "stranger", true, false, false),
            (Community, "owner", true, true, true),
            (Shared, "owner", true, true, true),
            (Shared, "friend", true, false, true),
            (Shared, "guest", true, false, false),
            (Shared, "no", true, false, false),
            (Shared, "stranger", false, false, false),
            (Private, "owner", true, true, true),
            (Private, "friend", false, false, false),
            (Private, "guest", false, false, false),
            (Private, "stranger", false, false, false),
        ];
        for &(visibility, caller, sees, modifies, shares) in rows {
            let image = image(visibility, Some("owner"), &members);
            let v = who(caller);
            assert_eq!(v.can_see(&image), sees, "{caller} sees a {visibility} image");
            assert_eq!(v.can_modify(&image), modifies, "{caller} modifies a {visibility} image");
            assert_eq!(v.can_share(&image), shares, "{caller} shares a {visibility} image");
            assert!(Viewer::admin().can_see(&image) && Viewer::admin().can_modify(&image));
        }
    }

    #[test]
    fn ownerless_images_are_seen_by_all_and_changed_by_admins() {
        let image = image(Visibility::Private, None, &[]);
        assert!(who("anyone").can_see(&image));
        assert!(!who("anyone").can_modify(&image));
        assert!(!Viewer::default().can_modify(&image), "no tenant owns no image");
        assert!(Viewer::admin().can_modify(&image));
    }

    #[test]
    fn refusals_hide_what_is_not_public() {
        assert!(!who("x").refusal_hides(&image(Visibility::Public, Some("o"), &[])));
        for v in [Visibility::Community, Visibility::Shared, Visibility::Private] {
            assert!(who("x").refusal_hides(&image(v, Some("o"), &[])), "{v}");
        }
    }
}
