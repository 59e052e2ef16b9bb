//! Who is asking, from the identity headers an authenticating proxy (or the API server)
//! sets, as Glance's E0 `RequestContext` read them (reference §1.8), and what that caller
//! may see and change.
//!
//! No token at all is the deployment without authentication: the caller is an admin. The
//! remote registry driver sends no token, because the API server in front of it has already
//! decided what its client may do.

use http::HeaderMap;
use tank_core::{query::Viewer, Image, Status};

use super::error::RegistryError;

/// The caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Admins see and change every image.
    pub is_admin: bool,
    /// The caller's tenant, the owner of what it creates.
    pub tenant: Option<String>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

impl Context {
    /// The caller named by `headers`.
    ///
    /// # Errors
    /// 401 when a token is present but the proxy did not confirm it.
    pub fn from_headers(headers: &HeaderMap) -> Result<Context, RegistryError> {
        if header(headers, "x-auth-token").or_else(|| header(headers, "x-storage-token")).is_none() {
            return Ok(Context { is_admin: true, tenant: None });
        }
        let confirmed = header(headers, "x-identity-status").is_some_and(|s| s.eq_ignore_ascii_case("confirmed"));
        if !confirmed {
            return Err(RegistryError::with_status(
                http::StatusCode::UNAUTHORIZED,
                "the request carries a token that was not confirmed (X-Identity-Status is not Confirmed)",
            ));
        }
        let roles = header(headers, "x-role").unwrap_or("");
        let is_admin = roles.split(',').any(|r| r.trim().eq_ignore_ascii_case("admin"));
        Ok(Context { is_admin, tenant: header(headers, "x-tenant").map(String::from) })
    }

    /// The list query's view of this caller.
    pub fn viewer(&self) -> Viewer {
        Viewer { is_admin: self.is_admin, tenant: self.tenant.clone() }
    }

    /// Whether the caller may read `image`: deleted images exist for admins only.
    pub fn can_see(&self, image: &Image) -> bool {
        let deleted = image.deleted || matches!(image.status, Status::Deleted | Status::PendingDelete);
        self.viewer().can_see(image) && (self.is_admin || !deleted)
    }

    /// Whether the caller may change `image`: admins, and the owning tenant. An image
    /// without an owner is changed by admins only.
    pub fn can_change(&self, image: &Image) -> bool {
        self.is_admin || (self.tenant.is_some() && image.owner == self.tenant)
    }

    /// Whether the caller may change `image`'s members: who may change it, and members
    /// allowed to share it further.
    pub fn can_share(&self, image: &Image) -> bool {
        self.can_change(image)
            || self.tenant.as_ref().is_some_and(|t| image.members.iter().any(|m| &m.member_id == t && m.can_share))
    }
}

#[cfg(test)]
mod tests {
    use tank_core::{ImageId, Member, Timestamp};

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn no_token_is_admin_and_an_unconfirmed_token_is_refused() {
        assert!(Context::from_headers(&HeaderMap::new()).unwrap().is_admin);
        let e = Context::from_headers(&headers(&[("x-auth-token", "t")])).unwrap_err();
        assert_eq!(e.status, 401);
        let c = Context::from_headers(&headers(&[
            ("x-auth-token", "t"),
            ("x-identity-status", "Confirmed"),
            ("x-tenant", "t1"),
            ("x-role", "member, Admin"),
        ]))
        .unwrap();
        assert_eq!((c.is_admin, c.tenant.as_deref()), (true, Some("t1")));
        let c = Context::from_headers(&headers(&[
            ("x-auth-token", "t"),
            ("x-identity-status", "Confirmed"),
            ("x-tenant", "t1"),
            ("x-role", "member"),
        ]))
        .unwrap();
        assert!(!c.is_admin);
    }

    #[test]
    fn owners_change_members_share_and_nobody_else_does() {
        let mut image = Image::new(ImageId::random(), Timestamp::from_unix_micros(1));
        image.owner = Some("owner".into());
        image.members.push(Member { member_id: "friend".into(), can_share: true });
        image.members.push(Member { member_id: "reader".into(), can_share: false });
        let who = |t: &str| Context { is_admin: false, tenant: Some(t.into()) };
        assert!(who("owner").can_change(&image) && who("owner").can_share(&image));
        assert!(!who("friend").can_change(&image) && who("friend").can_share(&image));
        assert!(who("reader").can_see(&image) && !who("reader").can_share(&image));
        assert!(!who("stranger").can_see(&image));
        image.deleted = true;
        image.status = Status::Deleted;
        assert!(!who("owner").can_see(&image));
        assert!(Context { is_admin: true, tenant: None }.can_see(&image));
    }
}
