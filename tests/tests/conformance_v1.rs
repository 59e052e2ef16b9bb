//! Conformance of the v1 Images API to Glance's endpoint table: every row of reference
//! `glance.md` §1.1 from 1 to 16, the version negotiation of §1.2, the request headers of
//! §1.3, the response headers of §1.4, the list rules of §1.5 and the status codes of
//! §1.6, with the identity headers of §1.8 wherever ownership or visibility matters.
//!
//! Each test runs a real deployment of docs/registry.md: a `tank registry` over sled,
//! and a `tank api` whose `remote` registry driver talks HTTP to it, both on loopback
//! ports the kernel picks. So every row also crosses the remote driver and the registry
//! server, as a multi-server deployment does.
//!
//! Where Glance's docs and its E0 code disagree (§1.11), the assertions follow Tank's
//! decision as docs/api-v1.md records it, and say so where they rely on one.
//!
//! Not covered: row 17 (cache management): Tank has no image cache, so there is nothing to
//! test. `x-image-meta-location` is only checked here to refuse `file://` locations (400,
//! LP #942118); external locations have their own suite against nginx (http_store.rs), as
//! copy-from has (copy_from.rs). The store-side failures of §1.6 (a full store → 413, a
//! refused write → 503) are caused for real in store_failures.rs; here 413 is checked
//! through `image_size_cap`.

use std::collections::BTreeSet;

use bytes::Bytes;
use serde_json::{json, Value};
use tank_tests::{data, md5_hex, Deployment, Reply, Server, BEHIND_PROXY, BRIEF_KEYS, IMAGE_KEYS};

/// A running api + registry pair; the registry must outlive the API server using it.
struct Pair {
    api: Server,
    _registry: Server,
    _deployment: Deployment,
}

/// Starts `tank registry` and a `tank api` using it through the remote driver, the API
/// server configured with `api_extra`.
fn pair(api_extra: &str) -> Pair {
    let deployment = Deployment::empty();
    let registry = deployment.start_registry("", &format!("{BEHIND_PROXY}{api_extra}"));
    let api = deployment.start();
    Pair { api, _registry: registry, _deployment: deployment }
}

/// Request headers, as `Server::send` takes them.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// The identity headers (§1.8) of a confirmed caller from `tenant` with `roles`, as
/// Keystone's authtoken middleware passes them on, followed by `more`. Requests without
/// them come from the administrator of a deployment without authentication.
fn identity<'a>(tenant: &'a str, roles: &'a str, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        ("x-auth-token", "opaque-token"),
        ("x-identity-status", "Confirmed"),
        ("x-user", "someone"),
        ("x-tenant", tenant),
        ("x-role", roles),
    ];
    h.extend_from_slice(more);
    h
}

/// [`identity`] of a tenant's ordinary member.
fn as_tenant<'a>(tenant: &'a str, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    identity(tenant, "member", more)
}

/// The id of an image a `POST` created, after checking the 201 and the headers every
/// create answer carries (§1.6: `Location`, JSON `{"image": ...}` without `location`).
fn created(reply: &Reply) -> String {
    assert_eq!(reply.status, 201, "create failed: {}", String::from_utf8_lossy(&reply.body));
    assert_json(reply);
    let image = &reply.json()["image"];
    let id = image["id"].as_str().expect("the image has an id").to_owned();
    assert_eq!(reply.header("location"), Some(format!("/v1/images/{id}").as_str()));
    assert!(image.get("location").is_none(), "the store location never leaves the server: {image}");
    id
}

fn assert_json(reply: &Reply) {
    let content_type = reply.header("content-type").unwrap_or("");
    assert!(content_type.starts_with("application/json"), "Content-Type {content_type:?} for a JSON answer");
}

/// The message of an error answer, after checking its status and its shape
/// (`{"error": {"code", "title", "message"}}`, docs/api-v1.md).
fn error(reply: &Reply, status: u16, what: &str) -> String {
    assert_eq!(reply.status, status, "{what}: {}", String::from_utf8_lossy(&reply.body));
    assert_json(reply);
    let body = reply.json();
    assert_eq!(body["error"]["code"], status, "{what}: {body}");
    body["error"]["message"].as_str().unwrap_or_else(|| panic!("{what}: no message in {body}")).to_owned()
}

/// The ids of a list answer, in order.
fn ids(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "list failed: {}", String::from_utf8_lossy(&reply.body));
    assert_json(reply);
    let body = reply.json();
    let images = body["images"].as_array().unwrap_or_else(|| panic!("no images array in {body}"));
    images.iter().map(|i| i["id"].as_str().expect("every entry has an id").to_owned()).collect()
}

fn owned(ids: &[&String]) -> Vec<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

fn keys(entry: &Value) -> BTreeSet<&str> {
    entry.as_object().expect("an object").keys().map(String::as_str).collect()
}

fn no_body() -> Bytes {
    Bytes::new()
}

/// Rows 1-3 and the negotiation of §1.2: which paths and `Accept` headers reach v1, and
/// which get the 300 version document, including the advertised-but-absent v1.1.
#[test]
fn versions_document_and_version_negotiation() {
    let p = pair("");
    let s = &p.api;
    let id = created(&s.send("POST", "/v1/images", &[("x-image-meta-is_public", "true")], no_body()));

    // The document lists v2 too now (docs/api-v2.md); its v1 entries stay as E0 had them,
    // but SUPPORTED, since v2 is CURRENT.
    let document = s.get("/versions").json();
    let href = format!("http://{}/v1/", s.addr);
    let v1: Vec<&Value> = document["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["id"].as_str().unwrap().starts_with("v1"))
        .collect();
    assert_eq!(
        v1,
        [
            &json!({"id": "v1.1", "status": "SUPPORTED", "links": [{"rel": "self", "href": href}]}),
            &json!({"id": "v1.0", "status": "SUPPORTED", "links": [{"rel": "self", "href": href}]}),
        ]
    );
    let vnd_v1 = "application/vnd.openstack.images-v1";
    // `/versions` answers 200 (Glance's later behaviour); the path decides before Accept.
    for accept in [None, Some(vnd_v1)] {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("accept", *a)).collect();
        let r = s.send("GET", "/versions", &headers, no_body());
        assert_eq!((r.status, r.json()), (200, document.clone()), "GET /versions (Accept {accept:?})");
    }
    // (path, Accept): every one answers 300 and the document.
    let to_the_document: &[(&str, Option<&str>)] = &[
        ("/", None),       // row 2
        ("/images", None), // unversioned: 300 as E0 code (docs/api-v1.md, §1.11)
        ("/images/detail", None),
        (&format!("/images/{id}"), None),
        ("/v1.1/images", None), // the v1.1 quirk: advertised CURRENT, yet the document
        ("/v1.1/", None),
        ("/v10/images", None),
        ("/images", Some("*/*")),
        ("/images", Some("application/json")),
        ("/images", Some("application/vnd.openstack.images-v1.1")),
        ("/images", Some("application/vnd.openstack.images-v2")),
    ];
    for (path, accept) in to_the_document {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("accept", *a)).collect();
        let r = s.send("GET", path, &headers, no_body());
        assert_eq!(r.status, 300, "GET {path} (Accept {accept:?})");
        assert_json(&r);
        assert_eq!(r.json(), document, "GET {path} (Accept {accept:?})");
    }

    // Row 3 and its spellings: `/v1/` is the image list, and so is every way into v1.
    let listed = s.get("/v1/images");
    assert_eq!(ids(&listed), vec![id.clone()]);
    let to_the_list: &[(&str, Option<&str>)] = &[
        ("/v1/", None), // row 3
        ("/v1", None),
        ("/v1.0/images", None),
        ("/v1.0/", None),
        ("/images", Some(vnd_v1)),
        ("/images", Some("application/vnd.openstack.images-v1.0")),
        ("/", Some(vnd_v1)),
    ];
    for (path, accept) in to_the_list {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("accept", *a)).collect();
        let r = s.send("GET", path, &headers, no_body());
        assert_eq!(r.status, 200, "GET {path} (Accept {accept:?}): {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json(), listed.json(), "GET {path} (Accept {accept:?})");
    }
    // The v1 negotiation reaches the other resources too, not only the list.
    let head = s.send("HEAD", &format!("/v1.0/images/{id}"), &[], no_body());
    assert_eq!(head.header("x-image-meta-id"), Some(id.as_str()));
    let head = s.send("HEAD", &format!("/images/{id}"), &[("accept", vnd_v1)], no_body());
    assert_eq!(head.header("x-image-meta-id"), Some(id.as_str()));
}

/// Rows 4 and 5 (§1.5): brief and detailed lists, every filter, sort and page, who sees
/// what, and a 400 naming the parameter for every bad value.
#[test]
fn lists_filter_sort_page_and_refuse_bad_parameters() {
    // Small pages, so that the default page size and the cap both show.
    let p = pair("limit_param_default = 2\napi_limit_max = 3\n");
    let s = &p.api;
    // Created in this order, which is neither the names' order nor the sizes'.
    let charlie =
        created(&s.send("POST", "/v1/images", &as_tenant("other", &[("x-image-meta-name", "charlie")]), no_body()));
    let alpha_data = b"abc";
    let alpha = created(&s.upload(
        alpha_data,
        &as_tenant(
            "acme",
            &[
                ("x-image-meta-name", "alpha"),
                ("x-image-meta-is_public", "true"),
                ("x-image-meta-disk_format", "raw"),
                ("x-image-meta-container_format", "bare"),
                ("x-image-meta-min_ram", "256"),
                ("x-image-meta-property-os_distro", "debian"),
            ],
        ),
    ));
    let delta =
        created(&s.send("POST", "/v1/images", &as_tenant("other", &[("x-image-meta-name", "delta")]), no_body()));
    let bravo = created(&s.send(
        "POST",
        "/v1/images",
        &as_tenant(
            "acme",
            &[
                ("x-image-meta-name", "bravo"),
                ("x-image-meta-disk_format", "qcow2"),
                ("x-image-meta-container_format", "ovf"),
                ("x-image-meta-size", "2000"),
                ("x-image-meta-min_disk", "40"),
                ("x-image-meta-protected", "true"),
                ("x-image-meta-property-os_distro", "centos"),
            ],
        ),
        no_body(),
    ));
    // A killed image (checksum mismatch) and a deleted one are never listed (but
    // `changes-since` lists deleted ones).
    let killed = s.upload(b"xyz", &[("x-image-meta-name", "echo"), ("x-image-meta-checksum", &md5_hex(b"other"))]);
    assert_eq!(killed.status, 400);
    // charlie is shared with acme; delta stays other's alone.
    let share = s.send("PUT", &format!("/v1/images/{charlie}/members/acme"), &as_tenant("other", &[]), no_body());
    assert_eq!(share.status, 204);
    // Everything above changed no later than this; only foxtrot's delete comes after.
    let everything = s.get("/v1/images/detail?is_public=none&sort_key=updated_at&limit=1");
    let latest = everything.json()["images"][0]["updated_at"].as_str().expect("a timestamp").to_owned();
    let foxtrot = created(&s.send("POST", "/v1/images", &[("x-image-meta-name", "foxtrot")], no_body()));
    assert_eq!(s.send("DELETE", &format!("/v1/images/{foxtrot}"), &[], no_body()).status, 200);

    // Brief entries have exactly the brief fields; detailed ones every field but location.
    let brief = s.get("/v1/images?is_public=none&limit=3");
    let brief = brief.json();
    for entry in brief["images"].as_array().unwrap() {
        assert_eq!(keys(entry), BRIEF_KEYS.iter().copied().collect::<BTreeSet<_>>());
    }
    let detail = s.get("/v1/images/detail?name=alpha");
    let entry = &detail.json()["images"][0];
    let detail_fields: BTreeSet<&str> = IMAGE_KEYS.iter().copied().collect();
    assert_eq!(keys(entry), detail_fields, "LP #755916: no location in a detailed entry");
    assert_eq!(
        (&entry["id"], &entry["status"], &entry["size"], &entry["checksum"], &entry["owner"]),
        (&json!(alpha), &json!("active"), &json!(3), &json!(md5_hex(alpha_data)), &json!("acme"))
    );
    assert_eq!(entry["properties"], json!({"os_distro": "debian"}));

    // Every filter, as the admin (no token) listing everything (`is_public=none`).
    let since_latest = format!("changes-since={latest}");
    let filters: &[(&str, &[&String])] = &[
        ("name=alpha", &[&alpha]),
        ("name=echo", &[]),
        ("name=foxtrot", &[]),
        ("status=queued", &[&bravo, &charlie, &delta]),
        ("status=active", &[&alpha]),
        ("status=killed", &[]),
        ("disk_format=qcow2", &[&bravo]),
        ("container_format=bare", &[&alpha]),
        ("size_min=500", &[&bravo]),
        ("size_max=3", &[&alpha, &charlie, &delta]),
        ("size_min=1&size_max=999", &[&alpha]),
        ("min_ram=256", &[&alpha]),
        ("min_disk=10", &[&bravo]),
        ("protected=true", &[&bravo]),
        ("protected=false", &[&alpha, &charlie, &delta]),
        ("property-os_distro=centos", &[&bravo]),
        ("property-os_distro=debian&name=bravo", &[]),
        (&since_latest, &[&foxtrot]),
        ("changes-since=2000-01-01T00:00:00Z&name=foxtrot", &[&foxtrot]),
    ];
    for (filter, want) in filters {
        let got = ids(&s.get(&format!("/v1/images/detail?is_public=none&sort_key=name&sort_dir=asc&limit=3&{filter}")));
        assert_eq!(got, owned(want), "{filter}");
    }
    let deleted = s.get(&format!("/v1/images/detail?is_public=none&{since_latest}"));
    assert_eq!(deleted.json()["images"][0]["status"], "deleted");
    let is_public: &[(&str, &[&String])] = &[
        ("is_public=true", &[&alpha]),
        ("is_public=1", &[&alpha]),
        ("is_public=false", &[&bravo, &charlie, &delta]),
        ("is_public=0", &[&bravo, &charlie, &delta]),
        ("", &[&alpha]), // the admin's default is the public images (docs/api-v1.md, §1.11)
    ];
    for (filter, want) in is_public {
        let got = ids(&s.get(&format!("/v1/images?sort_key=name&sort_dir=asc&limit=3&{filter}")));
        assert_eq!(got, owned(want), "{filter:?}");
    }

    // Sorting: the default is created_at, newest first; ties (charlie and delta have size
    // 0) are broken by created_at in the same direction.
    let sorts: &[(&str, [&String; 3])] = &[
        ("", [&bravo, &delta, &alpha]),
        ("sort_dir=asc", [&charlie, &alpha, &delta]),
        ("sort_key=created_at&sort_dir=desc", [&bravo, &delta, &alpha]),
        ("sort_key=name", [&delta, &charlie, &bravo]),
        ("sort_key=name&sort_dir=asc", [&alpha, &bravo, &charlie]),
        ("sort_key=size&sort_dir=desc", [&bravo, &alpha, &delta]),
        ("sort_key=size&sort_dir=asc", [&charlie, &delta, &alpha]),
        ("sort_key=status&sort_dir=asc", [&alpha, &charlie, &delta]),
        ("sort_key=disk_format&sort_dir=desc", [&alpha, &bravo, &delta]),
        ("sort_key=id&sort_dir=asc", {
            let mut all = [&alpha, &bravo, &charlie, &delta];
            all.sort();
            [all[0], all[1], all[2]]
        }),
    ];
    for (sort, want) in sorts {
        let got = ids(&s.get(&format!("/v1/images?is_public=none&limit=3&{sort}")));
        assert_eq!(got, owned(want), "{sort:?}");
    }

    // Pages: limit_param_default by default, never more than api_limit_max, and the
    // marker continues right after the named image.
    assert_eq!(ids(&s.get("/v1/images?is_public=none")), [bravo.clone(), delta.clone()]);
    assert_eq!(ids(&s.get(&format!("/v1/images?is_public=none&marker={delta}"))), [alpha.clone(), charlie.clone()]);
    assert!(ids(&s.get(&format!("/v1/images?is_public=none&marker={charlie}"))).is_empty());
    assert_eq!(ids(&s.get("/v1/images/detail?is_public=none&limit=1000")).len(), 3, "api_limit_max caps the page");
    assert_eq!(ids(&s.get("/v1/images?is_public=none&limit=1")), vec![bravo.clone()]);

    // Who sees what: public, own and shared images, by default and with is_public.
    let visibility: &[(&str, &str, &[&String])] = &[
        ("acme", "", &[&alpha, &bravo, &charlie]),
        ("acme", "is_public=false", &[&bravo, &charlie]),
        ("acme", "is_public=none", &[&alpha, &bravo, &charlie]),
        ("other", "", &[&alpha, &charlie, &delta]),
        ("stranger", "", &[&alpha]),
        ("stranger", "is_public=false", &[]),
    ];
    for (tenant, filter, want) in visibility {
        for list in ["/v1/images", "/v1/images/detail"] {
            let r = s.send(
                "GET",
                &format!("{list}?sort_key=name&sort_dir=asc&limit=3&{filter}"),
                &as_tenant(tenant, &[]),
                no_body(),
            );
            assert_eq!(ids(&r), owned(want), "{tenant} {list}?{filter}");
        }
    }

    // Bad values: 400, naming the parameter. A marker the caller cannot see is as unknown
    // as one that does not exist.
    let unknown_marker = "marker=0b7c3a2e-8f4b-4a9e-9d3c-2f1e5b6a7c8d".to_owned();
    let hidden_marker = format!("marker={delta}");
    let bad: &[(&str, &str, &str)] = &[
        ("", "limit=-1", "limit"),
        ("", "limit=ten", "limit"),
        ("", "marker=not-an-id", "marker"),
        ("", &unknown_marker, "marker"),
        ("stranger", &hidden_marker, "marker"),
        ("", "sort_key=colour", "sort_key"),
        ("", "sort_dir=sideways", "sort_dir"),
        ("", "size_min=-1", "size_min"),
        ("", "size_max=big", "size_max"),
        ("", "min_ram=1.5", "min_ram"),
        ("", "min_disk=x", "min_disk"),
        ("", "is_public=maybe", "is_public"),
        ("", "protected=2", "protected"),
        ("", "status=available", "status"), // only the docs' example, no real status (§1.11)
        ("", "disk_format=floppy", "disk_format"),
        ("", "container_format=box", "container_format"),
        ("", "changes-since=last-week", "changes-since"),
        ("", "colour=blue", "colour"), // unknown parameters are refused (docs/api-v1.md, §1.11)
    ];
    for (tenant, query, param) in bad {
        for list in ["/v1/images", "/v1/images/detail"] {
            let headers = if tenant.is_empty() { Vec::new() } else { as_tenant(tenant, &[]) };
            let r = s.send("GET", &format!("{list}?{query}"), &headers, no_body());
            let message = error(&r, 400, &format!("{list}?{query}"));
            assert!(message.contains(param), "{list}?{query}: {message}");
        }
    }
    let unconfirmed = [("x-auth-token", "opaque-token"), ("x-identity-status", "Invalid"), ("x-tenant", "acme")];
    error(&s.send("GET", "/v1/images", &unconfirmed, no_body()), 401, "a token the proxy found Invalid");
}

/// Rows 6-10 (§1.3, §1.4, §1.6): create by reservation and by upload, HEAD, download,
/// update and delete, with their headers and every error status a client can cause.
#[test]
fn image_lifecycle_headers_and_status_codes() {
    let cap = 1 << 20;
    let p = pair(&format!("image_size_cap = {cap}\n"));
    let s = &p.api;
    fn acme<'a>(more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        as_tenant("acme", more)
    }

    // Row 8, reserving: no body, so the image waits in `queued`. `-` and `_` are the same
    // in field names, only the word `true` is true, and an empty value is "not given".
    let reserve = s.send(
        "POST",
        "/v1/images",
        &acme(&[
            ("x-image-meta-name", "reserved"),
            ("x-image-meta-disk-format", "qcow2"),
            ("x-image-meta-container_format", ""),
            ("x-image-meta-is-public", "TRUE"),
            ("x-image-meta-protected", "yes"),
            ("x-image-meta-min-ram", "512"),
            ("x-image-meta-owner", "someone-else"),
            ("x-image-meta-property-os-distro", "cirros"),
        ]),
        no_body(),
    );
    let reserved = created(&reserve);
    assert_eq!(reserve.header("etag"), None, "no checksum yet, so no ETag");
    let image = &reserve.json()["image"];
    let expect = json!({
        "id": reserved, "name": "reserved", "status": "queued", "size": 0, "disk_format": "qcow2",
        "container_format": null, "checksum": null, "is_public": true, "min_ram": 512, "min_disk": 0,
        "owner": "acme", "protected": false, "deleted_at": null, "deleted": false,
        "properties": {"os_distro": "cirros"},
    });
    for (field, want) in expect.as_object().unwrap() {
        assert_eq!(&image[field], want, "{field} in {image}");
    }
    let reserved_path = format!("/v1/images/{reserved}");

    // Row 6: the metadata as headers, spelt as E0's code spells them (§1.4, §1.11).
    let head = s.send("HEAD", &reserved_path, &acme(&[]), no_body());
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let created_at = image["created_at"].as_str().unwrap();
    let updated_at = image["updated_at"].as_str().unwrap();
    let headers: &[(&str, Option<&str>)] = &[
        ("x-image-meta-id", Some(&reserved)),
        ("x-image-meta-name", Some("reserved")),
        ("x-image-meta-status", Some("queued")),
        ("x-image-meta-size", Some("0")),
        ("x-image-meta-disk_format", Some("qcow2")),
        ("x-image-meta-container_format", None),
        ("x-image-meta-checksum", None),
        ("x-image-meta-is_public", Some("True")), // docs/api-v1.md: booleans as E0's Python
        ("x-image-meta-min_ram", Some("512")),
        ("x-image-meta-min_disk", Some("0")),
        ("x-image-meta-owner", Some("acme")),
        ("x-image-meta-protected", Some("False")),
        ("x-image-meta-created_at", Some(created_at)),
        ("x-image-meta-updated_at", Some(updated_at)),
        ("x-image-meta-deleted_at", None),
        ("x-image-meta-deleted", Some("False")),
        ("x-image-meta-property-os_distro", Some("cirros")),
        ("location", Some(&reserved_path)),
        ("etag", None),
        ("x-image-meta-location", None),
        ("x-image-meta-is-public", None),
        ("x-image-meta-min-ram", None),
        ("x-image-meta-uri", None),
    ];
    for (name, want) in headers {
        assert_eq!(head.header(name), *want, "HEAD header {name}");
    }
    // Row 7: a queued image has no data to send.
    error(&s.send("GET", &reserved_path, &acme(&[]), no_body()), 404, "GET data of a queued image");

    // Row 9, uploading into the reservation: its metadata stays, properties included
    // (never purged when data comes, §1.3).
    let bytes = data(70_000, 1);
    let sum = md5_hex(&bytes);
    let put = s.send(
        "PUT",
        &reserved_path,
        &acme(&[("content-type", "application/octet-stream")]),
        Bytes::copy_from_slice(&bytes),
    );
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    assert_json(&put);
    assert_eq!((put.header("location"), put.header("etag")), (Some(reserved_path.as_str()), Some(sum.as_str())));
    let image = &put.json()["image"];
    assert_eq!((&image["status"], &image["size"], &image["checksum"]), (&json!("active"), &json!(70_000), &json!(sum)));
    assert_eq!((&image["name"], &image["properties"]), (&json!("reserved"), &json!({"os_distro": "cirros"})));
    assert!(image.get("location").is_none(), "{image}");

    // Row 7: the data, with the metadata headers, its length and type.
    let download = s.send("GET", &reserved_path, &acme(&[]), no_body());
    assert_eq!(download.status, 200);
    let download_headers: &[(&str, &str)] = &[
        ("content-type", "application/octet-stream"),
        ("content-length", "70000"),
        ("etag", &sum),
        ("location", &reserved_path),
        ("x-image-meta-checksum", &sum),
        ("x-image-meta-size", "70000"),
        ("x-image-meta-status", "active"),
        ("x-image-meta-property-os_distro", "cirros"),
    ];
    for (name, want) in download_headers {
        assert_eq!(download.header(name), Some(*want), "GET data header {name}");
    }
    assert!(download.header("x-image-meta-location").is_none());
    assert!(download.body == bytes, "the downloaded bytes differ from the uploaded ones");

    // Row 9, metadata only: properties are replaced unless
    // `x-glance-registry-purge-props: false`; a non-admin's owner change is dropped.
    let rename = s.send(
        "PUT",
        &reserved_path,
        &acme(&[("x-image-meta-name", "renamed"), ("x-image-meta-property-arch", "x86_64")]),
        no_body(),
    );
    assert_eq!(rename.status, 200);
    assert_json(&rename);
    assert_eq!((rename.header("location"), rename.header("etag")), (Some(reserved_path.as_str()), Some(sum.as_str())));
    let image = &rename.json()["image"];
    assert_eq!((&image["name"], &image["properties"]), (&json!("renamed"), &json!({"arch": "x86_64"})));
    assert_eq!(image["checksum"], sum, "a metadata update keeps the data");
    let keep = s.send(
        "PUT",
        &reserved_path,
        &acme(&[
            ("x-glance-registry-purge-props", "false"),
            ("x-image-meta-property-kernel", "6.1"),
            ("x-image-meta-owner", "other"),
        ]),
        no_body(),
    );
    assert_eq!(keep.status, 200);
    assert_eq!(keep.json()["image"]["properties"], json!({"arch": "x86_64", "kernel": "6.1"}));
    assert_eq!(keep.json()["image"]["owner"], "acme", "only an admin changes the owner");
    let head = s.head(&reserved_path);
    assert_eq!(
        (head.header("x-image-meta-name"), head.header("x-image-meta-property-kernel")),
        (Some("renamed"), Some("6.1"))
    );
    // Data goes only into queued images.
    let again = s.send(
        "PUT",
        &reserved_path,
        &acme(&[("content-type", "application/octet-stream")]),
        Bytes::from_static(b"more"),
    );
    error(&again, 409, "PUT data into an active image");

    // Row 8, uploading in one request, with a chosen id and every declared value.
    let chosen = "5a4f4c3e-2d1b-4a09-8f7e-6d5c4b3a2f10";
    let bytes = data(4096, 2);
    let sum = md5_hex(&bytes);
    let upload = s.upload(
        &bytes,
        &acme(&[
            ("x-image-meta-id", chosen),
            ("x-image-meta-name", "uploaded"),
            ("x-image-meta-disk_format", "raw"),
            ("x-image-meta-container_format", "bare"),
            ("x-image-meta-size", "4096"),
            ("x-image-meta-checksum", &sum),
            ("x-image-meta-protected", "true"),
            ("x-image-meta-min_disk", "3"),
        ]),
    );
    assert_eq!(created(&upload), chosen);
    assert_eq!(upload.header("etag"), Some(sum.as_str()));
    let image = &upload.json()["image"];
    let want = json!({"status": "active", "size": 4096, "checksum": sum, "protected": true, "min_disk": 3,
        "is_public": false, "disk_format": "raw", "container_format": "bare"});
    for (field, want) in want.as_object().unwrap() {
        assert_eq!(&image[field], want, "{field} in {image}");
    }
    let path = format!("/v1/images/{chosen}");
    let dup = s.upload(b"other data", &[("x-image-meta-id", chosen)]);
    error(&dup, 409, "POST with an existing id");
    let dup = s.send("POST", "/v1/images", &[("x-image-meta-id", chosen)], no_body());
    error(&dup, 409, "reserving an existing id");
    assert!(s.get(&path).body == bytes, "a refused duplicate changes nothing");

    // A chunked body is a body too (§1.3): no length declared, the size is what arrives.
    // The store may be named by its scheme (docs/api-v1.md).
    let streamed = data(300_000, 5);
    let chunked = s.upload_chunked(streamed.clone(), &acme(&[("x-image-meta-store", "file")]));
    let chunked_id = created(&chunked);
    assert_eq!(chunked.header("etag"), Some(md5_hex(&streamed).as_str()));
    assert_eq!(chunked.json()["image"]["size"], 300_000);
    let download = s.send("GET", &format!("/v1/images/{chunked_id}"), &acme(&[]), no_body());
    assert_eq!(download.header("content-length"), Some("300000"));
    assert!(download.body == streamed, "the chunked upload's bytes differ");
    // Only an admin gives an image away.
    let admin = identity("ops", "member,Admin", &[("x-image-meta-owner", "other")]);
    let given = s.send("PUT", &format!("/v1/images/{chunked_id}"), &admin, no_body());
    assert_eq!(given.json()["image"]["owner"], "other", "{}", String::from_utf8_lossy(&given.body));

    // Hidden images answer 404 on every row, never 403; public ones that others may not
    // change answer 403 (docs/api-v1.md "Who is calling").
    let other = as_tenant("other", &[]);
    let rename_other = as_tenant("other", &[("x-image-meta-name", "mine")]);
    let unknown = "/v1/images/0b7c3a2e-8f4b-4a9e-9d3c-2f1e5b6a7c8d";
    let refusals: &[(&str, &str, Headers<'_>, u16)] = &[
        ("HEAD", &path, &other, 404),
        ("GET", &path, &other, 404),
        ("PUT", &path, &rename_other, 404),
        ("DELETE", &path, &other, 404),
        ("HEAD", unknown, &[], 404),
        ("GET", unknown, &[], 404),
        ("PUT", unknown, &[("x-image-meta-name", "x")], 404),
        ("DELETE", unknown, &[], 404),
        ("HEAD", "/v1/images/not-an-id", &[], 404),
        ("GET", "/v1/images/not-an-id", &[], 404),
        ("PUT", &reserved_path, &rename_other, 403),
        ("DELETE", &reserved_path, &other, 403),
        ("DELETE", &path, &[], 403), // protected
    ];
    for (method, target, headers, status) in refusals {
        let r = s.send(method, target, headers, no_body());
        assert_eq!(r.status, *status, "{method} {target} as {headers:?}");
        if *method != "HEAD" {
            error(&r, *status, &format!("{method} {target}"));
        }
    }
    assert_eq!(s.send("HEAD", &reserved_path, &other, no_body()).status, 200, "a public image is everyone's to see");
    assert!(s.get(&path).body == bytes, "refused changes change nothing");

    // An image without an owner is visible one by one to everyone, listed to admins only
    // (docs/api-v1.md, §1.11).
    let ownerless = created(&s.send("POST", "/v1/images", &[("x-image-meta-name", "ownerless")], no_body()));
    assert_eq!(s.send("HEAD", &format!("/v1/images/{ownerless}"), &other, no_body()).status, 200);
    let listed = s.send("GET", "/v1/images?is_public=none", &other, no_body());
    assert!(!ids(&listed).contains(&ownerless));
    assert!(ids(&s.get("/v1/images?is_public=none")).contains(&ownerless));

    // Row 10: unprotect, then delete: 200 with an empty body, and the image is gone.
    let unprotect = s.send("PUT", &path, &acme(&[("x-image-meta-protected", "false")]), no_body());
    assert_eq!(unprotect.json()["image"]["protected"], false);
    let deleted = s.send("DELETE", &path, &acme(&[]), no_body());
    assert_eq!(deleted.status, 200);
    assert!(deleted.body.is_empty(), "DELETE answers an empty body (docs/api-v1.md)");
    for method in ["HEAD", "GET", "DELETE", "PUT"] {
        assert_eq!(s.send(method, &path, &acme(&[]), no_body()).status, 404, "{method} of a deleted image");
    }

    // Row 8's errors. Each is refused before anything is created, except the checksum
    // mismatch, which kills the image it created (§1.3).
    let before = ids(&s.get("/v1/images/detail?is_public=none&changes-since=2000-01-01T00:00:00")).len();
    let small = Bytes::from_static(b"data");
    let over_cap = Bytes::from(data(cap + 1, 3));
    let octets = ("content-type", "application/octet-stream");
    let wrong_sum = md5_hex(b"not the data");
    let over_pib = ((1u64 << 50) + 1).to_string();
    let creates: &[(Headers<'_>, &Bytes, u16, &str)] = &[
        (&[("content-type", "text/plain")], &small, 400, "application/octet-stream"),
        (&[octets, ("x-image-meta-size", "5")], &small, 400, "x-image-meta-size"),
        (&[octets], &over_cap, 413, "image_size_cap"),
        (&[("x-image-meta-size", "ten")], &Bytes::new(), 400, "size"),
        (&[("x-image-meta-size", &over_pib)], &Bytes::new(), 400, "1125899906842624"),
        (&[("x-image-meta-disk_format", "floppy")], &Bytes::new(), 400, "disk_format"),
        (&[("x-image-meta-container_format", "box")], &Bytes::new(), 400, "container_format"),
        (&[("x-image-meta-disk_format", "aki"), ("x-image-meta-container_format", "bare")], &Bytes::new(), 400, "aki"),
        (&[("x-image-meta-min_ram", "-1")], &Bytes::new(), 400, "min_ram"),
        (&[("x-image-meta-id", "not-a-uuid")], &Bytes::new(), 400, "not-a-uuid"),
        (&[("x-image-meta-checksum", "abc")], &Bytes::new(), 400, "checksum"),
        (&[("x-image-meta-store", "nowhere")], &Bytes::new(), 400, "nowhere"),
        (&[("x-image-meta-colour", "blue")], &Bytes::new(), 400, "x-image-meta-property-colour"),
        (&[("x-image-meta-status", "active")], &Bytes::new(), 400, "status"),
    ];
    for (headers, body, status, fragment) in creates {
        let message = error(&s.send("POST", "/v1/images", headers, (*body).clone()), *status, &format!("{headers:?}"));
        assert!(message.contains(fragment), "{headers:?}: {message}");
    }
    // A `file://` location would serve the server's own files (LP #942118).
    let file_location = [("x-image-meta-location", "file:///etc/passwd")];
    let message = error(&s.send("POST", "/v1/images", &file_location, no_body()), 400, "file location");
    assert!(message.contains("file:// URLs are not accepted"), "{message}");
    let after = ids(&s.get("/v1/images/detail?is_public=none&changes-since=2000-01-01T00:00:00")).len();
    assert_eq!(after, before, "a refused create leaves no image behind");
    let mismatch = s.upload(&small, &[("x-image-meta-name", "mismatch"), ("x-image-meta-checksum", &wrong_sum)]);
    let message = error(&mismatch, 400, "checksum mismatch");
    assert!(message.contains(&md5_hex(&small)), "{message}");
    let killed = s.get("/v1/images/detail?is_public=none&changes-since=2000-01-01T00:00:00&name=mismatch");
    let killed = &killed.json()["images"][0];
    assert_eq!(killed["status"], "killed");
    let killed_path = format!("/v1/images/{}", killed["id"].as_str().unwrap());
    assert_eq!(s.head(&killed_path).header("x-image-meta-status"), Some("killed"));
    error(&s.get(&killed_path), 404, "GET data of a killed image");
    assert_eq!(s.get("/v1/images?is_public=none&name=mismatch").json()["images"], json!([]), "killed: not listed");

    // Row 9's errors, on a queued image.
    let queued = created(&s.send("POST", "/v1/images", &acme(&[]), no_body()));
    let queued_path = format!("/v1/images/{queued}");
    let updates: &[(Headers<'_>, &Bytes, &str)] = &[
        (&[("x-image-meta-disk_format", "floppy")], &Bytes::new(), "disk_format"),
        (&[("x-image-meta-id", chosen)], &Bytes::new(), "id"),
        (&[("content-type", "text/plain")], &small, "application/octet-stream"),
        (&[octets, ("x-image-meta-size", "5")], &small, "x-image-meta-size"),
        (&[("x-image-meta-size", &over_pib)], &Bytes::new(), "1125899906842624"),
    ];
    for (headers, body, fragment) in updates {
        let r = s.send("PUT", &queued_path, &acme(headers), (*body).clone());
        let message = error(&r, 400, &format!("PUT {headers:?}"));
        assert!(message.contains(fragment), "PUT {headers:?}: {message}");
    }
    assert_eq!(s.send("PUT", &queued_path, &acme(&file_location), no_body()).status, 400);
    let head = s.head(&queued_path);
    assert_eq!((head.header("x-image-meta-status"), head.header("x-image-meta-disk_format")), (Some("queued"), None));

    // Methods no row names: 405 on the image paths, 404 off them.
    let not_allowed: &[(&str, &str)] = &[
        ("PATCH", "/v1/images"),
        ("DELETE", "/v1/images"),
        ("PUT", "/v1/images"),
        ("POST", "/v1/images/detail"),
        ("POST", &queued_path),
        ("PATCH", &queued_path),
        ("POST", "/v1/shared-images/acme"),
        ("DELETE", "/v1/shared-images/acme"),
    ];
    for (method, target) in not_allowed {
        error(&s.send(method, target, &[], no_body()), 405, &format!("{method} {target}"));
    }
    error(&s.get("/v1/nothing-here"), 404, "an unknown v1 path");
}

/// Rows 11-16 (§1.7): the members of an image, adding, replacing and removing them, who
/// may, the images shared with a tenant, and the 405 of row 15.
#[test]
fn members_and_shared_images() {
    let p = pair("");
    let s = &p.api;
    let bytes = data(10_000, 4);
    let id = created(&s.upload(&bytes, &as_tenant("acme", &[("x-image-meta-name", "shared")])));
    let image = format!("/v1/images/{id}");
    let members = format!("{image}/members");
    let acme = as_tenant("acme", &[]);
    let (friend, guest, stranger) = (as_tenant("friend", &[]), as_tenant("guest", &[]), as_tenant("stranger", &[]));
    let member_list = |who: &[(&str, &str)]| {
        let r = s.send("GET", &members, who, no_body());
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_json(&r);
        r.json()
    };
    let shared_with = |tenant: &str, who: &[(&str, &str)]| {
        let r = s.send("GET", &format!("/v1/shared-images/{tenant}"), who, no_body());
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_json(&r);
        r.json()
    };
    let call = |method: &str, path: &str, who: &[(&str, &str)], body: &'static str| {
        let r = s.send(method, path, who, Bytes::from_static(body.as_bytes()));
        if r.status == 204 {
            assert!(r.body.is_empty(), "{method} {path}: 204 with a body");
        }
        r.status
    };

    // Row 11: nobody yet; an image the caller cannot see has no members to show.
    assert_eq!(member_list(&acme), json!({"members": []}));
    error(&s.send("GET", &members, &stranger, no_body()), 404, "members of a hidden image");
    error(&s.get("/v1/images/0b7c3a2e-8f4b-4a9e-9d3c-2f1e5b6a7c8d/members"), 404, "members of no image");
    // Row 16: nothing shared yet.
    assert_eq!(shared_with("friend", &acme), json!({"shared_images": []}));

    // Row 13: a member sees, lists and downloads the private image.
    assert_eq!(call("PUT", &format!("{members}/friend"), &acme, ""), 204);
    assert_eq!(member_list(&acme), json!({"members": [{"member_id": "friend", "can_share": false}]}));
    assert_eq!(member_list(&friend), member_list(&acme), "members see the member list");
    assert_eq!(call("HEAD", &image, &friend, ""), 200);
    assert!(s.send("GET", &image, &friend, no_body()).body == bytes, "a member downloads the data");
    assert_eq!(ids(&s.send("GET", "/v1/images", &friend, no_body())), vec![id.clone()]);
    assert_eq!(shared_with("friend", &acme), json!({"shared_images": [{"image_id": id, "can_share": false}]}));
    // Without can_share a member may not share, nor change the image; others learn nothing.
    assert_eq!(call("PUT", &format!("{members}/guest"), &friend, ""), 404);
    assert_eq!(call("PUT", &format!("{members}/guest"), &stranger, ""), 404);
    assert_eq!(call("PUT", &image, &as_tenant("friend", &[("x-image-meta-name", "x")]), ""), 404);
    assert_eq!(call("HEAD", &image, &guest, ""), 404);
    // With a body, can_share is set; without one an existing membership stays as it is.
    let can_share = r#"{"member": {"can_share": true}}"#;
    assert_eq!(call("PUT", &format!("{members}/friend"), &acme, can_share), 204);
    assert_eq!(call("PUT", &format!("{members}/friend"), &acme, ""), 204);
    assert_eq!(member_list(&acme), json!({"members": [{"member_id": "friend", "can_share": true}]}));
    assert_eq!(call("PUT", &format!("{members}/guest"), &friend, ""), 204, "can_share lets a member share");
    assert_eq!(call("HEAD", &image, &guest, ""), 200);
    assert_eq!(shared_with("friend", &acme), json!({"shared_images": [{"image_id": id, "can_share": true}]}));
    assert_eq!(shared_with("guest", &guest), json!({"shared_images": [{"image_id": id, "can_share": false}]}));
    assert_eq!(shared_with("friend", &stranger), json!({"shared_images": []}), "only images the caller sees");
    let bad =
        s.send("PUT", &format!("{members}/guest"), &acme, Bytes::from_static(br#"{"member": {"can_share": "yes"}}"#));
    error(&bad, 400, "a can_share that is not a boolean");

    // Row 12: the memberships become exactly those named; a named member keeps its
    // can_share unless given, a new one gets false unless given.
    let replace = r#"{"memberships": [{"member_id": "friend"}, {"member_id": "newcomer", "can_share": true},
        {"member_id": "later"}]}"#;
    assert_eq!(call("PUT", &members, &acme, replace), 204);
    let want = json!({"members": [
        {"member_id": "friend", "can_share": true},
        {"member_id": "later", "can_share": false},
        {"member_id": "newcomer", "can_share": true}]});
    assert_eq!(member_list(&acme), want);
    assert_eq!(call("HEAD", &image, &guest, ""), 404, "guest was not named, so it is no longer a member");
    assert_eq!(call("PUT", &members, &guest, replace), 404, "and may no longer replace them");
    for bad in [r#"{"members": []}"#, "", "not json"] {
        error(
            &s.send("PUT", &members, &acme, Bytes::from_static(bad.as_bytes())),
            400,
            &format!("replace with {bad:?}"),
        );
    }
    assert_eq!(member_list(&acme), want, "refused replacements change nothing");

    // Row 14: removing a member hides the image from it again.
    assert_eq!(call("DELETE", &format!("{members}/later"), &stranger, ""), 404);
    assert_eq!(call("DELETE", &format!("{members}/later"), &acme, ""), 204);
    assert_eq!(call("DELETE", &format!("{members}/later"), &acme, ""), 404, "not a member any more");
    assert_eq!(call("HEAD", &image, &as_tenant("later", &[]), ""), 404);
    assert_eq!(call("DELETE", &format!("{members}/newcomer"), &friend, ""), 204, "can_share removes too");
    let want = json!({"members": [{"member_id": "friend", "can_share": true}]});
    assert_eq!(member_list(&acme), want);
    assert_eq!(shared_with("newcomer", &[]), json!({"shared_images": []}));

    // Row 15: no show, no create.
    error(&s.send("GET", &format!("{members}/friend"), &acme, no_body()), 405, "GET one member");
    error(&s.send("POST", &members, &acme, no_body()), 405, "POST members");
    error(&s.send("POST", &format!("{members}/friend"), &acme, no_body()), 405, "POST one member");
    // Sharing needs a tenant to share from: the no-token admin has none (E0, docs/api-v1.md).
    error(&s.send("PUT", &format!("{members}/x"), &[], no_body()), 401, "sharing without a tenant");
    assert_eq!(member_list(&acme), want);

    // A deleted image has no members and is shared with no one.
    assert_eq!(call("DELETE", &image, &acme, ""), 200);
    error(&s.send("GET", &members, &acme, no_body()), 404, "members of a deleted image");
    assert_eq!(shared_with("friend", &[]), json!({"shared_images": []}));
}
