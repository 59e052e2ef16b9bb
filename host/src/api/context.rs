//! Who is calling: the request identity of Glance's E0 `context.py` (reference §1.8), and
//! the rules that follow from it: which images a caller sees, and which it may change.
//!
//! Real authentication is a later issue. Until then a trusted proxy in front of Tank (the
//! way Keystone's `authtoken` middleware sat in front of Glance) confirms the token and
//! passes the identity on in headers. Without a token the caller is the unauthenticated
//! administrator of a deployment that has no authentication.

use http::{HeaderMap, StatusCode};
use tank_core::{query::Viewer, Image};

use super::error::ApiError;

/// The identity of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Admins see and change every image.
    pub is_admin: bool,
    /// `X-User`.
    pub user: Option<String>,
    /// `X-Tenant`.
    pub tenant: Option<String>,
    /// Whether images belong to the tenant (`true`) or the user (`owner_is_tenant`).
    owner_is_tenant: bool,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

impl Context {
    /// Reads the identity headers: a token (`X-Auth-Token` or `X-Storage-Token`) needs
    /// `X-Identity-Status: Confirmed`, and then `X-User`, `X-Tenant` and `X-Role` (a comma
    /// list; the role `admin`, in any case, makes an admin) say who is calling.
    pub fn from_headers(headers: &HeaderMap, owner_is_tenant: bool) -> Result<Context, ApiError> {
        let token = header(headers, "x-auth-token").or_else(|| header(headers, "x-storage-token"));
        if token.is_none() {
            return Ok(Context { is_admin: true, user: None, tenant: None, owner_is_tenant });
        }
        let confirmed = header(headers, "x-identity-status").is_some_and(|s| s.eq_ignore_ascii_case("confirmed"));
        if !confirmed {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the request's token was not confirmed (X-Identity-Status is not Confirmed); authenticate again",
            ));
        }
        // Roles may come as one comma-separated line or as several X-Role lines.
        let mut roles = headers.get_all("x-role").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
        Ok(Context {
            is_admin: roles.any(|r| r.trim().eq_ignore_ascii_case("admin")),
            user: header(headers, "x-user").map(str::to_owned),
            tenant: header(headers, "x-tenant").map(str::to_owned),
            owner_is_tenant,
        })
    }

    /// The owner of the images this caller creates, and the name memberships know it by.
    pub fn owner(&self) -> Option<&str> {
        if self.owner_is_tenant {
            self.tenant.as_deref()
        } else {
            self.user.as_deref()
        }
    }

    /// The caller as list queries know it.
    pub fn viewer(&self) -> Viewer {
        Viewer { is_admin: self.is_admin, tenant: self.owner().map(str::to_owned) }
    }

    /// Whether the caller may see `image` at all (admin, public, owner-less, own, or a
    /// member).
    pub fn can_see(&self, image: &Image) -> bool {
        self.viewer().can_see(image)
    }

    /// Whether the caller may change or delete `image`: admins, and the owner (an image
    /// without an owner only admins may change).
    pub fn can_modify(&self, image: &Image) -> bool {
        self.is_admin || (image.owner.is_some() && image.owner.as_deref() == self.owner())
    }

    /// Whether the caller may change `image`'s memberships: those who may modify it, and
    /// members holding `can_share`.
    pub fn can_share(&self, image: &Image) -> bool {
        self.can_modify(image)
            || self.owner().is_some_and(|me| image.members.iter().any(|m| m.member_id == me && m.can_share))
    }

    /// The error for a caller who sees an image but may not change it: 403 for a public
    /// image, 404 for one it sees only as a member, which it must not learn more about.
    pub fn refuse_change(&self, image: &Image, what: &str) -> ApiError {
        if image.is_public {
            ApiError::new(StatusCode::FORBIDDEN, format!("only the owner of image {} or an admin may {what}", image.id))
        } else {
            ApiError::image_not_found(image.id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tank_core::{ImageId, Member, Timestamp};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn tenant(name: &str, roles: &str) -> Context {
        let h = headers(&[
            ("x-auth-token", "t"),
            ("x-identity-status", "Confirmed"),
            ("x-user", "alice"),
            ("x-tenant", name),
            ("x-role", roles),
        ]);
        Context::from_headers(&h, true).unwrap()
    }

    #[test]
    fn no_token_is_the_noauth_admin_and_an_unconfirmed_one_is_refused() {
        let c = Context::from_headers(&HeaderMap::new(), true).unwrap();
        assert!(c.is_admin);
        assert_eq!(c.owner(), None);
        let e = Context::from_headers(&headers(&[("x-auth-token", "t"), ("x-tenant", "a")]), true).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        let e = Context::from_headers(&headers(&[("x-storage-token", "t"), ("x-identity-status", "Invalid")]), true)
            .unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn roles_and_owner_come_from_the_headers() {
        let c = tenant("acme", "member, Admin");
        assert!(c.is_admin);
        assert_eq!(c.owner(), Some("acme"));
        let c = tenant("acme", "member");
        assert!(!c.is_admin);
        let mut h = headers(&[("x-auth-token", "t"), ("x-identity-status", "Confirmed"), ("x-role", "member")]);
        h.append("x-role", "admin".parse().unwrap());
        assert!(Context::from_headers(&h, true).unwrap().is_admin, "a second X-Role line counts");
        let h = headers(&[("x-auth-token", "t"), ("x-identity-status", "confirmed"), ("x-user", "alice")]);
        assert_eq!(Context::from_headers(&h, false).unwrap().owner(), Some("alice"));
    }

    #[test]
    fn owners_change_members_with_can_share_manage_members_others_do_neither() {
        let mut image = Image::new(ImageId::random(), Timestamp::from_unix_micros(1));
        image.owner = Some("acme".into());
        image.members.push(Member { member_id: "friend".into(), can_share: true });
        image.members.push(Member { member_id: "guest".into(), can_share: false });
        let (owner, friend, guest, stranger) =
            (tenant("acme", ""), tenant("friend", ""), tenant("guest", ""), tenant("other", ""));
        assert!(owner.can_modify(&image) && owner.can_share(&image));
        assert!(friend.can_see(&image) && !friend.can_modify(&image) && friend.can_share(&image));
        assert!(guest.can_see(&image) && !guest.can_share(&image));
        assert!(!stranger.can_see(&image));
        assert_eq!(guest.refuse_change(&image, "delete it").status, StatusCode::NOT_FOUND);
        image.is_public = true;
        assert_eq!(stranger.refuse_change(&image, "delete it").status, StatusCode::FORBIDDEN);
        image.owner = None;
        assert!(!owner.can_modify(&image), "owner-less images are the admins'");
        assert!(tenant("x", "admin").can_modify(&image));
    }
}
