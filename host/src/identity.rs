//! The identity headers of Glance's E0 `context.py` (reference §1.8), as an
//! authenticating proxy passes them on (`X-Identity-Status: Confirmed`, then `X-User`,
//! `X-Tenant` and `X-Role`).
//!
//! The API server believes them only with `auth_strategy = "trusted-proxy"` and only from
//! its `identity_proxies` (`crate::auth`). The registry server reads them as E0's did:
//! the remote driver of the API servers sends none (the API server decides on its callers
//! itself), so their requests are the administrator's; a proxy in front of the registry
//! may send them.

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

/// The identity a proxy passed on: `None` without `X-Identity-Status`, refused when it
/// is anything but `Confirmed`. `X-Role` is a comma list, in one line or several; the
/// role `admin`, in any case, makes an admin. `owner_is_tenant` says whether the caller
/// owns images as its tenant or its user.
pub fn forwarded(headers: &HeaderMap, owner_is_tenant: bool) -> Result<Option<Caller>, Unconfirmed> {
    let Some(status) = header(headers, "x-identity-status") else { return Ok(None) };
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
    Ok(Some(Caller::new(
        header(headers, "x-user").map(str::to_owned),
        header(headers, "x-tenant").map(str::to_owned),
        roles,
        owner_is_tenant,
    )))
}

/// The caller of a registry request: the identity the API server forwards with a token
/// (`X-Auth-Token` or `X-Storage-Token`), or, without one, the administrator (an API
/// server's own work, recovery say, or a deployment without authentication).
pub fn caller(headers: &HeaderMap, owner_is_tenant: bool) -> Result<Caller, Unconfirmed> {
    let token = header(headers, "x-auth-token").or_else(|| header(headers, "x-storage-token"));
    let admin = || Caller { owner_is_tenant, ..Caller::admin() };
    if token.is_none() {
        return Ok(admin());
    }
    Ok(forwarded(headers, owner_is_tenant)?.unwrap_or_else(admin))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header map of `pairs`, repeated names appended (the auth tests use it too).
    pub(crate) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
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
