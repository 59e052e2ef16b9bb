//! Who is calling, from the identity headers of Glance's E0 `context.py` (reference §1.8):
//! read the same way by the API server and the registry server.
//!
//! Real authentication is a later issue. Until then a trusted proxy in front of Tank (the
//! way Keystone's `authtoken` middleware sat in front of Glance) confirms the token and
//! passes the identity on in headers. Without a token the caller is the unauthenticated
//! administrator of a deployment that has no authentication.

use http::HeaderMap;
use tank_core::Caller;

/// A token came that the proxy did not confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconfirmed;

impl std::fmt::Display for Unconfirmed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request's token was not confirmed (X-Identity-Status is not Confirmed); authenticate again")
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The caller `headers` name. A proxy that checked a token says so in
/// `X-Identity-Status`: `Confirmed`, and then `X-User`, `X-Tenant` and `X-Role` (a comma
/// list, in one line or several; the role `admin`, in any case, makes an admin) say who is
/// calling, or anything else, which is refused. Without that header no proxy looked at the
/// request, and a token in it (`X-Auth-Token` or `X-Storage-Token`) is ignored as Glance's
/// noauth ignores it: keystoneauth's `none` plugin sends `X-Auth-Token: notused`. The
/// caller is then the unauthenticated administrator. `owner_is_tenant` says whether the
/// caller owns images as its tenant or its user.
pub fn caller(headers: &HeaderMap, owner_is_tenant: bool) -> Result<Caller, Unconfirmed> {
    let token = header(headers, "x-auth-token").or_else(|| header(headers, "x-storage-token"));
    let Some(status) = header(headers, "x-identity-status").filter(|_| token.is_some()) else {
        return Ok(Caller { owner_is_tenant, ..Caller::admin() });
    };
    if !status.eq_ignore_ascii_case("confirmed") {
        return Err(Unconfirmed);
    }
    let roles: Vec<String> = headers
        .get_all("x-role")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Caller::new(
        header(headers, "x-user").map(str::to_owned),
        header(headers, "x-tenant").map(str::to_owned),
        roles,
        owner_is_tenant,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn tenant(name: &str, roles: &str) -> Caller {
        let h = headers(&[
            ("x-auth-token", "t"),
            ("x-identity-status", "Confirmed"),
            ("x-user", "alice"),
            ("x-tenant", name),
            ("x-role", roles),
        ]);
        caller(&h, true).unwrap()
    }

    #[test]
    fn no_checked_token_is_the_noauth_admin_and_an_unconfirmed_one_is_refused() {
        let c = caller(&HeaderMap::new(), true).unwrap();
        assert!(c.is_admin);
        assert_eq!(c.owner(), None);
        let unchecked = caller(&headers(&[("x-auth-token", "notused"), ("x-tenant", "a")]), true).unwrap();
        assert!(unchecked.is_admin && unchecked.owner().is_none(), "no proxy looked at it: noauth");
        let invalid = headers(&[("x-storage-token", "t"), ("x-identity-status", "Invalid")]);
        assert_eq!(caller(&invalid, true), Err(Unconfirmed));
    }

    #[test]
    fn roles_and_owner_come_from_the_headers() {
        let c = tenant("acme", "member, Admin");
        assert!(c.is_admin);
        assert_eq!(c.owner(), Some("acme"));
        assert_eq!(c.roles, ["member", "Admin"]);
        assert!(!tenant("acme", "member").is_admin);
        let two_lines = headers(&[
            ("x-auth-token", "t"),
            ("x-identity-status", "Confirmed"),
            ("x-role", "member"),
            ("x-role", "admin"),
        ]);
        assert!(caller(&two_lines, true).unwrap().is_admin, "a second X-Role line counts");
        let h = headers(&[("x-auth-token", "t"), ("x-identity-status", "confirmed"), ("x-user", "alice")]);
        assert_eq!(caller(&h, false).unwrap().owner(), Some("alice"));
    }
}
