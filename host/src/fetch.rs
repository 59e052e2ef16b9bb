//! Server-side fetches on a client's behalf (`x-glance-api-copy-from`), guarded by
//! `[import_filtering_opts]` so that a client cannot make the server reach what the client
//! itself cannot (reference §8: OSSA-2016-006 and its kin).
//!
//! Every hop is checked before it is connected to: the scheme, the port, the host name,
//! and every address the name resolves to, so that `127.1`, `2130706433`, `[::1]` or a
//! name pointing at an internal address are all seen as the address they are. The
//! connection then goes to the checked address itself, never to a second lookup of the
//! name. Redirects are followed only through the same checks.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use http::{header, Request, StatusCode, Uri};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::config::ImportFiltering;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;
/// Time to connect and to get the response's head.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A response body to copy, and its length when the server gave one.
pub struct Fetched {
    /// The data.
    pub body: Incoming,
    /// `Content-Length`, if sent.
    pub size: Option<u64>,
}

/// Whether `ip` is a public unicast address: not loopback, private, link-local, shared,
/// unspecified, multicast, documentation or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
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
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)) // documentation
}

fn listed(list: &[String], host: &str, addrs: &[SocketAddr]) -> bool {
    list.iter().any(|h| h.eq_ignore_ascii_case(host) || addrs.iter().any(|a| h.parse::<IpAddr>().ok() == Some(a.ip())))
}

/// Checks one hop; returns the address to connect to.
async fn check(uri: &Uri, rules: &ImportFiltering) -> Result<SocketAddr, String> {
    let scheme = uri.scheme_str().map(str::to_ascii_lowercase).ok_or("the URL has no scheme")?;
    let allowed = |list: &[String]| list.iter().any(|s| s.eq_ignore_ascii_case(&scheme));
    if (!rules.allowed_schemes.is_empty() && !allowed(&rules.allowed_schemes)) || allowed(&rules.disallowed_schemes) {
        return Err(format!("the scheme {scheme:?} is not allowed (import_filtering_opts)"));
    }
    if scheme != "http" {
        return Err(format!("this server fetches only http URLs, not {scheme}"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("URLs with credentials are not fetched".into());
    }
    let host = uri.host().ok_or("the URL has no host")?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(80);
    if (!rules.allowed_ports.is_empty() && !rules.allowed_ports.contains(&port))
        || rules.disallowed_ports.contains(&port)
    {
        return Err(format!("port {port} is not allowed (import_filtering_opts)"));
    }
    let addrs: Vec<SocketAddr> = tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((host.as_str(), port)))
        .await
        .map_err(|_| format!("looking up {host} timed out"))?
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let first = *addrs.first().ok_or_else(|| format!("{host} has no address"))?;
    let named = listed(&rules.allowed_hosts, &host, &addrs);
    if listed(&rules.disallowed_hosts, &host, &addrs) || (!rules.allowed_hosts.is_empty() && !named) {
        return Err(format!("the host {host} is not allowed (import_filtering_opts)"));
    }
    if let Some(internal) = addrs.iter().find(|a| !is_public(a.ip())) {
        if !named {
            return Err(format!(
                "{host} is the internal address {}; only public addresses are fetched unless \
                 import_filtering_opts.allowed_hosts names them",
                internal.ip()
            ));
        }
    }
    Ok(first)
}

/// Fetches `url`, following redirects through the same checks. An error is a message for
/// the client; it names hosts and reasons, never the URL's path or query.
pub async fn fetch(url: &str, rules: &ImportFiltering) -> Result<Fetched, String> {
    let mut uri: Uri = url.parse().map_err(|_| "the copy-from URL is not a valid URL".to_owned())?;
    for _ in 0..=MAX_REDIRECTS {
        let addr = check(&uri, rules).await?;
        let host = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or_default();
        let stream = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connecting to {host} timed out"))?
            .map_err(|e| format!("cannot connect to {host}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("cannot talk HTTP to {host}: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("copy-from connection ended with an error: {e}");
            }
        });
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let req = Request::get(path)
            .header(header::HOST, &host)
            .header(header::USER_AGENT, concat!("tank/", env!("CARGO_PKG_VERSION")))
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| format!("cannot build the request to {host}: {e}"))?;
        let response = tokio::time::timeout(TIMEOUT, sender.send_request(req))
            .await
            .map_err(|_| format!("{host} did not answer in time"))?
            .map_err(|e| format!("{host} failed to answer: {e}"))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| format!("{host} redirected without a Location"))?;
            uri = redirect_target(&uri, location).ok_or_else(|| format!("{host} redirected to an invalid URL"))?;
            continue;
        }
        if status != StatusCode::OK {
            return Err(format!("{host} answered {status}"));
        }
        let size =
            response.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        return Ok(Fetched { body: response.into_body(), size });
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

/// Where a `Location` header points, relative to `from`.
fn redirect_target(from: &Uri, location: &str) -> Option<Uri> {
    let target: Uri = location.parse().ok()?;
    if target.scheme().is_some() {
        return Some(target);
    }
    let mut parts = http::uri::Parts::default();
    parts.scheme = from.scheme().cloned();
    parts.authority = from.authority().cloned();
    parts.path_and_query = target.path_and_query().cloned();
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert!(!is_public(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    fn rules() -> ImportFiltering {
        ImportFiltering::default()
    }

    async fn refused(url: &str, rules: &ImportFiltering) -> String {
        check(&url.parse().unwrap(), rules).await.unwrap_err()
    }

    #[tokio::test]
    async fn every_spelling_of_an_internal_address_is_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1/x",
            "http://127.1/x",
            "http://2130706433/x",
            "http://0x7f000001/x",
            "http://[::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://localhost/x",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            let e = refused(url, &rules()).await;
            assert!(e.contains("internal address"), "{url}: {e}");
        }
        let mut open = rules();
        open.allowed_hosts = vec!["127.0.0.1".into()];
        // Allowing the address allows its other spellings, which are the same address.
        for url in ["http://127.0.0.1/x", "http://127.1/x", "http://2130706433/x"] {
            assert!(check(&url.parse().unwrap(), &open).await.is_ok(), "{url}");
        }
        assert!(refused("http://10.0.0.1/x", &open).await.contains("not allowed"));
    }

    #[tokio::test]
    async fn schemes_ports_hosts_and_credentials_follow_the_rules() {
        assert!(refused("ftp://example.com/x", &rules()).await.contains("scheme"));
        assert!(refused("https://127.0.0.1/x", &rules()).await.contains("only http"));
        assert!(refused("http://127.0.0.1:8080/x", &rules()).await.contains("port 8080"));
        assert!(refused("http://user:secret@127.0.0.1/x", &rules()).await.contains("credentials"));
        let mut r = rules();
        r.disallowed_ports = vec![80];
        assert!(refused("http://127.0.0.1/x", &r).await.contains("port 80"));
        let mut r = rules();
        r.disallowed_hosts = vec!["127.0.0.1".into()];
        r.allowed_hosts = vec!["localhost".into()];
        assert!(refused("http://127.0.0.1/x", &r).await.contains("not allowed"));
        let mut r = rules();
        r.disallowed_schemes = vec!["HTTP".into()];
        assert!(refused("http://127.0.0.1/x", &r).await.contains("scheme"));
    }

    #[test]
    fn redirects_resolve_against_the_current_url() {
        let from: Uri = "http://a.example:81/dir/x?q=1".parse().unwrap();
        assert_eq!(redirect_target(&from, "/other").unwrap().to_string(), "http://a.example:81/other");
        assert_eq!(redirect_target(&from, "http://b.example/y").unwrap().to_string(), "http://b.example/y");
    }
}
