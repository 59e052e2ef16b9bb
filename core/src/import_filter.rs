//! `[import_filtering_opts]`: which URLs the server may fetch on a client's behalf
//! (copy-from, http locations), under Glance's option names, and the checks that apply
//! them. Reference §8 (OSSA-2016-006 and its kin): a client must not be able to make the
//! server reach what the client itself cannot.
//!
//! The checks are pure: whoever fetches resolves the host name and hands the addresses to
//! [`ImportFiltering::check_addresses`], then connects to one of those very addresses,
//! never to a second lookup of the name. Every redirect goes through the same two checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// The rules. An empty `allowed_*` list allows all but the `disallowed_*` ones. Whatever
/// these say, a host that resolves to a loopback, private, link-local or other non-public
/// address is refused unless `allowed_hosts` names it (or its address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportFiltering {
    /// Schemes that may be fetched.
    pub allowed_schemes: Vec<String>,
    /// Schemes never fetched.
    pub disallowed_schemes: Vec<String>,
    /// Hosts that may be fetched (names or addresses); these may be internal.
    pub allowed_hosts: Vec<String>,
    /// Hosts never fetched.
    pub disallowed_hosts: Vec<String>,
    /// Ports that may be fetched.
    pub allowed_ports: Vec<u16>,
    /// Ports never fetched.
    pub disallowed_ports: Vec<u16>,
}

impl Default for ImportFiltering {
    /// Glance's defaults: http and https on their standard ports, any public host.
    fn default() -> Self {
        ImportFiltering {
            allowed_schemes: vec!["http".into(), "https".into()],
            disallowed_schemes: vec![],
            allowed_hosts: vec![],
            disallowed_hosts: vec![],
            allowed_ports: vec![80, 443],
            disallowed_ports: vec![],
        }
    }
}

/// A host as a URL parser saw it: an address literal (in any of its spellings, already
/// canonicalised by the parser) or a name still to be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// `127.0.0.1`, `[::1]`, and also `127.1` or `2130706433` once parsed.
    Address(IpAddr),
    /// `images.example.com`.
    Name(&'a str),
}

impl ImportFiltering {
    /// Checks what a URL says before anything is looked up: its scheme, whether it carries
    /// credentials, its port, and its host (an address literal is checked as an address).
    /// The error says what was refused and why, never the URL's path or query.
    pub fn check_url(&self, scheme: &str, has_credentials: bool, host: Host<'_>, port: u16) -> Result<(), String> {
        let scheme = scheme.to_ascii_lowercase();
        let named = |list: &[String]| list.iter().any(|s| s.eq_ignore_ascii_case(&scheme));
        if (!self.allowed_schemes.is_empty() && !named(&self.allowed_schemes)) || named(&self.disallowed_schemes) {
            return Err(format!("the scheme {scheme:?} is not allowed (import_filtering_opts)"));
        }
        if has_credentials {
            return Err("URLs with credentials in them are not fetched".into());
        }
        if (!self.allowed_ports.is_empty() && !self.allowed_ports.contains(&port))
            || self.disallowed_ports.contains(&port)
        {
            return Err(format!("port {port} is not allowed (import_filtering_opts)"));
        }
        match host {
            Host::Address(ip) => self.check_addresses(&ip.to_string(), &[ip]),
            // A name's allowed_hosts check waits for its addresses: an entry may be one of them.
            Host::Name(name) if listed(&self.disallowed_hosts, name, &[]) => {
                Err(format!("the host {name} is not allowed (import_filtering_opts)"))
            }
            Host::Name(_) => Ok(()),
        }
    }

    /// Checks `host` (a name or the text of an address) with every address it resolved to:
    /// none may be disallowed, and all must be public unless `allowed_hosts` names the host
    /// or the address.
    pub fn check_addresses(&self, host: &str, addrs: &[IpAddr]) -> Result<(), String> {
        if addrs.is_empty() {
            return Err(format!("{host} has no address"));
        }
        let allowed = listed(&self.allowed_hosts, host, addrs);
        if listed(&self.disallowed_hosts, host, addrs) || (!self.allowed_hosts.is_empty() && !allowed) {
            return Err(format!("the host {host} is not allowed (import_filtering_opts)"));
        }
        match addrs.iter().find(|a| !is_public(**a)) {
            Some(internal) if !allowed => Err(format!(
                "{host} is the internal address {internal}; only public addresses are fetched unless \
                 import_filtering_opts.allowed_hosts names them"
            )),
            _ => Ok(()),
        }
    }
}

/// Whether `list` names `host` or one of `addrs` (an entry that is an address matches the
/// address in any spelling).
fn listed(list: &[String], host: &str, addrs: &[IpAddr]) -> bool {
    list.iter().any(|entry| {
        entry.eq_ignore_ascii_case(host.trim_start_matches('[').trim_end_matches(']'))
            || entry.parse::<IpAddr>().is_ok_and(|ip| addrs.iter().any(|a| canonical(*a) == canonical(ip)))
    })
}

/// `::ffff:a.b.c.d` is `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is a public unicast address: not loopback, private, link-local, shared,
/// unspecified, broadcast, multicast, documentation, benchmarking or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let [first, second, ..] = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local
        || (first == 0x2001 && second == 0x0db8)) // documentation
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(ip(internal)), "{internal}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip(public)), "{public}");
        }
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed_by_name_or_address() {
        let rules = ImportFiltering::default();
        let e = rules.check_url("http", false, Host::Address(ip("127.0.0.1")), 80).unwrap_err();
        assert!(e.contains("internal address 127.0.0.1"), "{e}");
        let e = rules.check_addresses("localhost", &[ip("::1")]).unwrap_err();
        assert!(e.contains("internal address ::1"), "{e}");
        // One internal address among public ones is enough to refuse the name.
        assert!(rules.check_addresses("mixed.example", &[ip("8.8.8.8"), ip("10.0.0.1")]).is_err());
        assert!(rules.check_addresses("public.example", &[ip("8.8.8.8")]).is_ok());

        let open = ImportFiltering { allowed_hosts: vec!["127.0.0.1".into()], ..ImportFiltering::default() };
        assert!(open.check_url("http", false, Host::Address(ip("127.0.0.1")), 80).is_ok());
        assert!(open.check_addresses("localhost", &[ip("127.0.0.1")]).is_ok());
        assert!(open.check_addresses("v6.localhost", &[ip("::ffff:127.0.0.1")]).is_ok());
        // Allowing hosts allows only those.
        let e = open.check_addresses("other.example", &[ip("8.8.8.8")]).unwrap_err();
        assert!(e.contains("not allowed"), "{e}");
        let by_name = ImportFiltering { allowed_hosts: vec!["images.internal".into()], ..ImportFiltering::default() };
        assert!(by_name.check_url("http", false, Host::Name("images.internal"), 80).is_ok());
        assert!(by_name.check_addresses("images.internal", &[ip("10.0.0.5")]).is_ok());
        assert!(by_name.check_addresses("other.internal", &[ip("10.0.0.6")]).is_err());
    }

    #[test]
    fn schemes_ports_hosts_and_credentials_follow_the_rules() {
        let rules = ImportFiltering { allowed_hosts: vec!["127.0.0.1".into()], ..ImportFiltering::default() };
        let lo = Host::Address(ip("127.0.0.1"));
        assert!(rules.check_url("ftp", false, lo, 80).unwrap_err().contains("scheme"));
        assert!(rules.check_url("HTTPS", false, lo, 443).is_ok());
        assert!(rules.check_url("http", false, lo, 8080).unwrap_err().contains("port 8080"));
        assert!(rules.check_url("http", true, lo, 80).unwrap_err().contains("credentials"));

        let no_80 = ImportFiltering { disallowed_ports: vec![80], allowed_ports: vec![], ..rules.clone() };
        assert!(no_80.check_url("http", false, lo, 80).unwrap_err().contains("port 80"));
        assert!(no_80.check_url("http", false, lo, 8080).is_ok());
        let no_http = ImportFiltering { disallowed_schemes: vec!["HTTP".into()], ..rules.clone() };
        assert!(no_http.check_url("http", false, lo, 80).unwrap_err().contains("scheme"));
        let banned = ImportFiltering { disallowed_hosts: vec!["evil.example".into()], ..ImportFiltering::default() };
        assert!(banned.check_url("http", false, Host::Name("EVIL.example"), 80).is_err());
        assert!(banned.check_addresses("fine.example", &[ip("8.8.8.8")]).is_ok());
    }

    #[test]
    fn the_glance_option_names_parse() {
        let rules: ImportFiltering =
            serde_json::from_str(r#"{"allowed_ports": [8080], "disallowed_hosts": ["a"]}"#).unwrap();
        assert_eq!(rules.allowed_ports, [8080]);
        assert_eq!(rules.allowed_schemes, ["http", "https"]);
        assert!(serde_json::from_str::<ImportFiltering>(r#"{"allowed_port": [1]}"#).is_err());
    }
}
