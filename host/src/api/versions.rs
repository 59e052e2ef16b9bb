//! Version discovery (`GET /`, `GET /versions`, reference §1.2 and §7.7) and the public
//! base URL that every link the API answers with starts with.
//!
//! openstacksdk and keystoneauth always read this document first and build the v2
//! endpoint from the `self` link of a v2.x entry, so its hrefs must be URLs the client can
//! reach: `public_endpoint` when the operator set one, else the `X-Forwarded-Host` and
//! `X-Forwarded-Proto` of a peer listed in `trusted_proxies`, else the request's `Host`.

use std::net::SocketAddr;

use http::{header, HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::{json_response, ResponseBody};
use crate::config::ApiSettings;

/// The highest v2 minor version Tank implements: 2.10 (members 2.1, deactivation 2.3,
/// community visibility 2.5, interoperable import 2.6, `os_hidden` and the multihash 2.7,
/// multistore 2.8, import into several stores and copy-image 2.9, removing an image from
/// one store 2.10).
pub const V2_MINOR: u32 = 10;

/// The URL clients reach this server at, without a trailing slash.
pub fn base_url(headers: &HeaderMap, peer: SocketAddr, api: &ApiSettings) -> String {
    if let Some(endpoint) = &api.public_endpoint {
        return endpoint.clone();
    }
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_graphic()))
    };
    if api.trusted_proxies.contains(&peer.ip()) {
        if let Some(host) = value("x-forwarded-host") {
            let proto = value("x-forwarded-proto").filter(|p| matches!(*p, "http" | "https")).unwrap_or("http");
            return format!("{proto}://{host}");
        }
    }
    let host = value(header::HOST.as_str()).unwrap_or("localhost");
    format!("http://{host}")
}

/// The version document: every v2.x Tank implements, the newest `CURRENT`, then v1.
pub fn document(base: &str) -> Value {
    let v2 = format!("{base}/v2/");
    let v1 = format!("{base}/v1/");
    let entry = |id: String, status: &str, href: &str| json!({"id": id, "status": status, "links": [{"rel": "self", "href": href}]});
    let mut versions: Vec<Value> = (0..=V2_MINOR)
        .rev()
        .map(|minor| entry(format!("v2.{minor}"), if minor == V2_MINOR { "CURRENT" } else { "SUPPORTED" }, &v2))
        .collect();
    versions.push(entry("v1.1".into(), "SUPPORTED", &v1));
    versions.push(entry("v1.0".into(), "SUPPORTED", &v1));
    json!({ "versions": versions })
}

/// The document as an answer: 200 to `GET /versions`, 300 (Multiple Choices) to every
/// other path that selects no version.
pub fn response(base: &str, asked_for_it: bool) -> http::Response<ResponseBody> {
    let status = if asked_for_it { StatusCode::OK } else { StatusCode::MULTIPLE_CHOICES };
    json_response(status, document(base).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn links_honour_the_public_endpoint_then_trusted_proxies_then_the_host() {
        let peer: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let stranger: SocketAddr = "10.0.0.6:4000".parse().unwrap();
        let forwarded = headers(&[
            ("host", "10.0.0.1:9292"),
            ("x-forwarded-host", "images.example.com"),
            ("x-forwarded-proto", "https"),
        ]);
        let mut api = ApiSettings { trusted_proxies: vec![peer.ip()], ..ApiSettings::default() };
        assert_eq!(base_url(&forwarded, peer, &api), "https://images.example.com");
        assert_eq!(base_url(&forwarded, stranger, &api), "http://10.0.0.1:9292", "only trusted peers forward");
        api.public_endpoint = Some("https://tank.example.org:8443".into());
        assert_eq!(base_url(&forwarded, stranger, &api), "https://tank.example.org:8443");
        let junk = headers(&[("host", "a b")]);
        assert_eq!(base_url(&junk, stranger, &ApiSettings::default()), "http://localhost");
    }

    #[test]
    fn the_document_lists_v2_newest_first_then_v1() {
        let doc = document("http://h:1");
        let ids: Vec<&str> = doc["versions"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap()).collect();
        assert_eq!(ids.first(), Some(&format!("v2.{V2_MINOR}").as_str()));
        assert_eq!(ids[ids.len() - 2..], ["v1.1", "v1.0"]);
        assert_eq!(doc["versions"][0]["status"], "CURRENT");
        assert_eq!(doc["versions"][0]["links"][0]["href"], "http://h:1/v2/");
        assert_eq!(doc["versions"].as_array().unwrap().iter().filter(|v| v["status"] == "CURRENT").count(), 1);
    }
}
