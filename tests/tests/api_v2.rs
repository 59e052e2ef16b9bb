//! The Images API v2 end to end over HTTP (reference §7, docs/api-v2.md): a real
//! `tank api` with the fs store and the sled registry, and raw requests as curl sends them.
//! The real clients' suite is `clients_v2.rs`.

use bytes::Bytes;
use serde_json::{json, Value};
use tank_tests::{data, md5_hex, Deployment, Reply, Server};

const PATCH: &str = "application/openstack-images-v2.1-json-patch";
const JSON: (&str, &str) = ("content-type", "application/json");

struct Api {
    server: Server,
    deployment: Deployment,
}

fn api(extra: &str) -> Api {
    let deployment = Deployment::new();
    deployment.behind_proxy(extra);
    let server = deployment.start();
    Api { server, deployment }
}

/// The identity headers of a confirmed caller of `tenant`, as a proxy passes them on.
fn tenant(t: &str) -> Vec<(&str, &str)> {
    vec![("x-auth-token", "t"), ("x-identity-status", "Confirmed"), ("x-tenant", t), ("x-role", "member")]
}

fn with<'a>(mut h: Vec<(&'a str, &'a str)>, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    h.extend_from_slice(more);
    h
}

fn create(s: &Server, headers: &[(&str, &str)], body: Value) -> Value {
    let mut h = vec![JSON];
    h.extend_from_slice(headers);
    let r = s.send("POST", "/v2/images", &h, body.to_string());
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn upload(s: &Server, id: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
    let mut h = vec![("content-type", "application/octet-stream")];
    h.extend_from_slice(headers);
    s.send("PUT", &format!("/v2/images/{id}/file"), &h, body)
}

fn patch(s: &Server, id: &str, headers: &[(&str, &str)], ops: Value) -> Reply {
    let mut h = vec![("content-type", PATCH)];
    h.extend_from_slice(headers);
    s.send("PATCH", &format!("/v2/images/{id}"), &h, ops.to_string())
}

fn names(r: &Reply) -> Vec<String> {
    r.json()["images"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap_or("").to_owned()).collect()
}

fn sha512_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha512::digest(data))
}

#[test]
fn discovery_links_and_schemas() {
    let a = api("trusted_proxies = [\"127.0.0.1\"]\ndisk_formats = [\"qcow2\", \"raw\"]");
    let s = &a.server;
    let root = s.get("/");
    assert_eq!(root.status, 300);
    let versions = s.get("/versions");
    assert_eq!(versions.status, 200);
    assert_eq!(root.json(), versions.json());
    let doc = versions.json();
    let current: Vec<&Value> =
        doc["versions"].as_array().unwrap().iter().filter(|v| v["status"] == "CURRENT").collect();
    assert_eq!(current.len(), 1);
    assert!(current[0]["id"].as_str().unwrap().starts_with("v2."), "{doc}");
    assert_eq!(current[0]["links"][0]["href"], format!("http://{}/v2/", s.addr));
    assert!(doc["versions"].as_array().unwrap().iter().any(|v| v["id"] == "v1.0"), "v1 is listed beside v2");
    // A trusted proxy's forwarded host and scheme make the links.
    let forwarded = s.send(
        "GET",
        "/versions",
        &[("x-forwarded-host", "images.example.com"), ("x-forwarded-proto", "https")],
        Bytes::new(),
    );
    assert_eq!(forwarded.json()["versions"][0]["links"][0]["href"], "https://images.example.com/v2/");
    assert!(root.header("x-openstack-request-id").is_some_and(|id| id.starts_with("req-")));
    // The schemas: the format enums are the configured ones.
    let image = s.get("/v2/schemas/image").json();
    assert_eq!(image["properties"]["disk_format"]["enum"], json!([null, "qcow2", "raw"]));
    assert_eq!(image["additionalProperties"], json!({"type": "string"}));
    assert_eq!(s.get("/v2/schemas/images").json()["properties"]["images"]["items"], image);
    assert_eq!(
        s.get("/v2/schemas/member").json()["properties"]["status"]["enum"],
        json!(["pending", "accepted", "rejected"])
    );
    assert_eq!(s.get("/v2/schemas/members").status, 200);
    // A format the operator did not enable is refused by name.
    let r = s.send("POST", "/v2/images", &[JSON], json!({"disk_format": "vmdk"}).to_string());
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("vmdk") && r.error_message().contains("disk_formats"), "{}", r.error_message());

    let public = api("public_endpoint = \"https://tank.example.org:8443/\"");
    let doc = public.server.get("/").json();
    assert_eq!(doc["versions"][0]["links"][0]["href"], "https://tank.example.org:8443/v2/");
}

#[test]
fn create_show_update_and_delete() {
    let a = api("");
    let s = &a.server;
    let id = "c0ffee00-0000-4000-8000-000000000001";
    let created = create(
        s,
        &[],
        json!({"id": id, "name": "cirros", "disk_format": "qcow2", "container_format": "bare", "min_ram": 64,
               "tags": ["test"], "owner_specified.openstack.md5": "abc", "kernel_id": null}),
    );
    assert_eq!(created["id"], id);
    assert_eq!(created["status"], "queued");
    assert_eq!(created["visibility"], "shared", "v2's default visibility");
    assert_eq!(created["size"], Value::Null);
    assert_eq!(created["self"], format!("/v2/images/{id}"));
    assert_eq!(created["owner_specified.openstack.md5"], "abc");
    assert!(created.get("kernel_id").is_none(), "a null custom property is not set");
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    let again = s.send("POST", "/v2/images", &[JSON], json!({"id": id}).to_string());
    assert_eq!(again.status, 409, "an id is used once");
    let shown = s.get(&format!("/v2/images/{id}"));
    assert_eq!(shown.status, 200);
    assert_eq!(shown.json(), created);

    // Refused creates: read-only, reserved and the server's attributes are 403, bad values 400.
    for (body, status) in [
        (json!({"status": "active"}), 403),
        (json!({"checksum": "abc"}), 403),
        (json!({"location": "file:///etc/passwd"}), 403),
        (json!({"locations": []}), 403),
        (json!({"os_glance_failed_import": "x"}), 403),
        (json!({"min_ram": "lots"}), 400),
        (json!({"visibility": "everyone"}), 400),
        (json!({"custom": 5}), 400),
        (json!(["not", "an", "object"]), 400),
        (json!({"id": "not-a-uuid"}), 400),
    ] {
        let r = s.send("POST", "/v2/images", &[JSON], body.to_string());
        assert_eq!(r.status, status, "{body}: {}", r.error_message());
        assert!(!r.error_message().is_empty());
    }
    let r = s.send("POST", "/v2/images", &[("content-type", "text/plain")], "{}");
    assert_eq!(r.status, 415);

    // JSON patch, RFC 6902 form.
    let r = patch(
        s,
        id,
        &[],
        json!([
            {"op": "replace", "path": "/name", "value": "Fedora 17"},
            {"op": "replace", "path": "/tags", "value": ["fedora", "beefy"]},
            {"op": "add", "path": "/os_distro", "value": "fedora"},
            {"op": "remove", "path": "/owner_specified.openstack.md5"},
            {"op": "replace", "path": "/protected", "value": true},
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.error_message());
    let v = r.json();
    assert_eq!((v["name"].as_str(), v["os_distro"].as_str()), (Some("Fedora 17"), Some("fedora")));
    assert_eq!(v["tags"], json!(["beefy", "fedora"]));
    assert!(v.get("owner_specified.openstack.md5").is_none());
    // The draft-4 form does the same.
    let r = s.send(
        "PATCH",
        &format!("/v2/images/{id}"),
        &[("content-type", "application/openstack-images-v2.0-json-patch")],
        json!([{"replace": "/min_disk", "value": 2}]).to_string(),
    );
    assert_eq!((r.status, r.json()["min_disk"].as_u64()), (200, Some(2)));
    // Refused patches.
    for (ops, status) in [
        (json!([{"op": "replace", "path": "/status", "value": "active"}]), 403),
        (json!([{"op": "replace", "path": "/deleted", "value": "1"}]), 403),
        (json!([{"op": "remove", "path": "/name"}]), 403),
        (json!([{"op": "replace", "path": "/nothing", "value": "x"}]), 409),
        (json!([{"op": "remove", "path": "/nothing"}]), 409),
        (json!([{"op": "copy", "from": "/name", "path": "/x"}]), 400),
        (json!({"op": "replace"}), 400),
        (json!([{"op": "replace", "path": "/min_ram", "value": -1}]), 400),
    ] {
        let r = patch(s, id, &[], ops.clone());
        assert_eq!(r.status, status, "{ops}: {}", r.error_message());
    }
    let r = s.send("PATCH", &format!("/v2/images/{id}"), &[JSON], "[]");
    assert_eq!(r.status, 415);
    assert!(r.header("accept-patch").is_some_and(|a| a.contains("v2.1-json-patch")));

    // Protected images stay.
    let r = s.send("DELETE", &format!("/v2/images/{id}"), &[], Bytes::new());
    assert_eq!(r.status, 403);
    assert!(r.error_message().contains("protected"), "{}", r.error_message());
    patch(s, id, &[], json!([{"op": "replace", "path": "/protected", "value": false}]));
    assert_eq!(s.send("DELETE", &format!("/v2/images/{id}"), &[], Bytes::new()).status, 204);
    assert_eq!(s.get(&format!("/v2/images/{id}")).status, 404);
    assert_eq!(s.send("DELETE", &format!("/v2/images/{id}"), &[], Bytes::new()).status, 404);

    // Known paths answer 405 with Allow; unknown ones 404.
    let r = s.send("PUT", "/v2/images", &[], Bytes::new());
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    assert_eq!(s.get("/v2/nothing").status, 404);
}

#[test]
fn data_up_and_down_with_checksums_and_ranges() {
    let a = api("");
    let s = &a.server;
    let new = || create(s, &[], json!({"name": "d", "disk_format": "raw", "container_format": "bare"}));
    let bytes = data(1_000_000, 7);

    // Sized upload.
    let id = new()["id"].as_str().unwrap().to_owned();
    let empty = s.get(&format!("/v2/images/{id}/file"));
    assert_eq!(empty.status, 204, "no data yet");
    let r = upload(s, &id, &[("x-openstack-image-size", "1000000")], bytes.clone());
    assert_eq!(r.status, 204, "{}", r.error_message());
    let image = s.get(&format!("/v2/images/{id}")).json();
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], 1_000_000);
    assert_eq!(image["checksum"], md5_hex(&bytes));
    assert_eq!(
        (image["os_hash_algo"].as_str(), image["os_hash_value"].as_str()),
        (Some("sha512"), Some(sha512_hex(&bytes).as_str()))
    );
    let down = s.get(&format!("/v2/images/{id}/file"));
    assert_eq!(down.status, 200);
    assert_eq!(down.header("content-md5"), Some(md5_hex(&bytes).as_str()));
    assert_eq!(down.body, bytes);
    // A second upload to an active image is a conflict.
    assert_eq!(upload(s, &id, &[], b"more".to_vec()).status, 409);

    // Ranges: a-b, a-, suffix; unsatisfiable; ignored.
    let range = |spec: &str| s.send("GET", &format!("/v2/images/{id}/file"), &[("range", spec)], Bytes::new());
    let r = range("bytes=10-19");
    assert_eq!((r.status, r.header("content-range")), (206, Some("bytes 10-19/1000000")));
    assert_eq!(r.body, bytes[10..20]);
    assert_eq!(r.header("content-md5"), Some(md5_hex(&bytes).as_str()), "Glance's quirk: the whole image's MD5");
    let r = range("bytes=999990-");
    assert_eq!((r.status, r.body.len()), (206, 10));
    let r = range("bytes=-5");
    assert_eq!((r.status, r.header("content-range")), (206, Some("bytes 999995-999999/1000000")));
    assert_eq!(r.body, bytes[999_995..]);
    let r = range("bytes=999999-2000000");
    assert_eq!((r.status, r.body.len()), (206, 1), "an end past the data is cut to it");
    let r = range("bytes=1000000-");
    assert_eq!((r.status, r.header("content-range")), (416, Some("bytes */1000000")));
    assert_eq!(range("bytes=0-1,5-6").status, 200, "several ranges are ignored, as RFC 9110 allows");

    // Chunked upload, no length.
    let id = new()["id"].as_str().unwrap().to_owned();
    let r = s.send_chunked("PUT", &format!("/v2/images/{id}/file"), bytes.clone(), &[]);
    assert_eq!(r.status, 204, "{}", r.error_message());
    assert_eq!(s.get(&format!("/v2/images/{id}/file")).body, bytes);

    // Chunked with a declared size that the data does not have: nothing is kept.
    let id = new()["id"].as_str().unwrap().to_owned();
    let r =
        s.send_chunked("PUT", &format!("/v2/images/{id}/file"), bytes.clone(), &[("x-openstack-image-size", "999")]);
    assert_eq!(r.status, 400, "{}", r.error_message());
    assert!(r.error_message().contains("x-openstack-image-size"), "{}", r.error_message());
    assert_eq!(s.get(&format!("/v2/images/{id}")).json()["status"], "killed");
    let r = upload(s, new()["id"].as_str().unwrap(), &[("x-openstack-image-size", "5")], b"four".to_vec());
    assert_eq!(r.status, 400, "declared and sent lengths differ");

    // Zero-length body: an empty active image, as Nova's activation uploads it.
    let id = new()["id"].as_str().unwrap().to_owned();
    assert_eq!(upload(s, &id, &[], Vec::new()).status, 204);
    let image = s.get(&format!("/v2/images/{id}")).json();
    assert_eq!((image["status"].as_str(), image["size"].as_u64()), (Some("active"), Some(0)));
    assert_eq!(image["checksum"], md5_hex(b""));

    // Data needs formats first, and the octet-stream type.
    let bare = create(s, &[], json!({"name": "no formats"}))["id"].as_str().unwrap().to_owned();
    let r = upload(s, &bare, &[], b"x".to_vec());
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("disk_format"), "{}", r.error_message());
    let r = s.send("PUT", &format!("/v2/images/{bare}/file"), &[("content-type", "text/plain")], "x");
    assert_eq!(r.status, 415);
    let files = a.deployment.data_files();
    let active = s.get("/v2/images?status=active").json()["images"].as_array().unwrap().len();
    assert_eq!(files.len(), active, "only active images have data files: {files:?}");
}

#[test]
fn lists_filter_sort_and_page() {
    let a = api("");
    let s = &a.server;
    for (n, (name, size)) in
        [("alpha", 30), ("beta", 10), ("gamma", 20), ("delta", 10), ("epsilon", 0)].iter().enumerate()
    {
        let tags: Vec<&str> = if n % 2 == 0 { vec!["even"] } else { vec![] };
        let image = create(
            s,
            &[],
            json!({"name": name, "disk_format": if n < 3 { "qcow2" } else { "raw" }, "container_format": "bare",
                   "tags": tags, "os_distro": if n == 1 { "debian" } else { "other" }}),
        );
        if *size > 0 {
            let id = image["id"].as_str().unwrap();
            assert_eq!(upload(s, id, &[], data(*size, n as u64)).status, 204);
        }
    }
    let list = |q: &str| {
        let r = s.get(&format!("/v2/images?{q}"));
        assert_eq!(r.status, 200, "{q}: {}", r.error_message());
        r
    };
    assert_eq!(names(&list("")), ["epsilon", "delta", "gamma", "beta", "alpha"], "newest first");
    assert_eq!(names(&list("sort=name:asc")), ["alpha", "beta", "delta", "epsilon", "gamma"]);
    assert_eq!(names(&list("sort=size:desc,name:asc")), ["alpha", "gamma", "beta", "delta", "epsilon"]);
    assert_eq!(
        names(&list("sort_key=size&sort_dir=asc&sort_key=name&sort_dir=desc")),
        ["epsilon", "delta", "beta", "gamma", "alpha"]
    );
    assert_eq!(names(&list("name=beta")), ["beta"]);
    assert_eq!(names(&list("name=in:beta,gamma&sort=name:asc")), ["beta", "gamma"]);
    assert_eq!(names(&list("disk_format=raw&sort=name:asc")), ["delta", "epsilon"]);
    assert_eq!(names(&list("status=queued")), ["epsilon"]);
    assert_eq!(names(&list("tag=even&sort=name:asc")), ["alpha", "epsilon", "gamma"]);
    assert_eq!(names(&list("os_distro=debian")), ["beta"], "a custom property filters");
    assert_eq!(names(&list("size_min=15&size_max=25")), ["gamma"]);
    let alpha = list("name=alpha").json()["images"][0].clone();
    let created = alpha["created_at"].as_str().unwrap();
    assert!(names(&list(&format!("created_at=gte:{created}"))).contains(&"alpha".to_string()));
    assert!(names(&list(&format!("created_at=lt:{created}"))).is_empty());
    for bad in [
        "sort=colour",
        "sort=name&sort_key=name",
        "status=sleeping",
        "created_at=gt:yesterday",
        "limit=x",
        "marker=nope",
    ] {
        assert_eq!(s.get(&format!("/v2/images?{bad}")).status, 400, "{bad}");
    }

    // Paging follows `next` to the end, never past it, with the query kept.
    let mut seen = Vec::new();
    let mut path = "/v2/images?limit=2&sort=name:asc".to_owned();
    loop {
        let page = s.get(&path).json();
        assert_eq!(page["schema"], "/v2/schemas/images");
        seen.extend(page["images"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(next) => {
                assert!(next.contains("sort=name:asc") || next.contains("sort=name%3Aasc"), "{next}");
                path = next.to_owned();
            }
            None => break,
        }
        assert!(seen.len() <= 5, "paging runs past the end: {seen:?}");
    }
    assert_eq!(seen, ["alpha", "beta", "delta", "epsilon", "gamma"]);

    // os_hidden images are left out unless asked for.
    let id = alpha["id"].as_str().unwrap();
    patch(s, id, &[], json!([{"op": "replace", "path": "/os_hidden", "value": true}]));
    assert!(!names(&list("")).contains(&"alpha".to_string()));
    assert_eq!(names(&list("os_hidden=true")), ["alpha"]);
}

#[test]
fn sharing_with_members_seen_from_both_sides() {
    let a = api("");
    let s = &a.server;
    let owner = tenant("owner");
    let friend = tenant("friend");
    let image = create(s, &owner, json!({"name": "shared", "disk_format": "raw", "container_format": "bare"}));
    let id = image["id"].as_str().unwrap();
    assert_eq!(image["owner"], "owner");
    assert_eq!(upload(s, id, &owner, b"secret data".to_vec()).status, 204);
    let members = format!("/v2/images/{id}/members");

    // A private image has no members.
    patch(s, id, &owner, json!([{"op": "replace", "path": "/visibility", "value": "private"}]));
    let r = s.send("POST", &members, &with(owner.clone(), &[JSON]), json!({"member": "friend"}).to_string());
    assert_eq!(r.status, 403, "{}", r.error_message());
    patch(s, id, &owner, json!([{"op": "replace", "path": "/visibility", "value": "shared"}]));
    // The friend knows nothing of it yet.
    assert_eq!(s.send("GET", &format!("/v2/images/{id}"), &friend, Bytes::new()).status, 404);

    let r = s.send("POST", &members, &with(owner.clone(), &[JSON]), json!({"member": "friend"}).to_string());
    assert_eq!(r.status, 200, "{}", r.error_message());
    let m = r.json();
    assert_eq!(
        (m["member_id"].as_str(), m["status"].as_str(), m["image_id"].as_str()),
        (Some("friend"), Some("pending"), Some(id))
    );
    let again = s.send("POST", &members, &with(owner.clone(), &[JSON]), json!({"member": "friend"}).to_string());
    assert_eq!(again.status, 409);
    s.send("POST", &members, &with(owner.clone(), &[JSON]), json!({"member": "other"}).to_string());

    // Pending: readable by id, not in the friend's default list (CVE-2013-4354 class).
    let friend_list = |q: &str| names(&s.send("GET", &format!("/v2/images{q}"), &friend, Bytes::new()));
    assert_eq!(s.send("GET", &format!("/v2/images/{id}"), &friend, Bytes::new()).status, 200);
    assert!(friend_list("").is_empty());
    assert_eq!(friend_list("?member_status=pending"), ["shared"]);
    // The friend sees its own membership only; only the owner sees both.
    let seen = s.send("GET", &members, &friend, Bytes::new()).json();
    assert_eq!(seen["members"].as_array().unwrap().len(), 1);
    assert_eq!(s.send("GET", &members, &owner, Bytes::new()).json()["members"].as_array().unwrap().len(), 2);
    assert_eq!(s.send("GET", &format!("{members}/other"), &friend, Bytes::new()).status, 404);
    // Only the member answers the offer; only the owner adds.
    let accept = json!({"status": "accepted"}).to_string();
    let r = s.send("PUT", &format!("{members}/friend"), &with(owner.clone(), &[JSON]), accept.clone());
    assert_eq!(r.status, 403, "the owner sees the image but cannot accept for the member");
    let r = s.send("POST", &members, &with(friend.clone(), &[JSON]), json!({"member": "third"}).to_string());
    assert_eq!(r.status, 404, "a member cannot share further");
    let r = s.send("PUT", &format!("{members}/friend"), &with(friend.clone(), &[JSON]), accept);
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("accepted")));
    assert_eq!(friend_list(""), ["shared"], "accepted: listed");
    let down = s.send("GET", &format!("/v2/images/{id}/file"), &friend, Bytes::new());
    assert_eq!(down.body, &b"secret data"[..]);
    let r = s.send(
        "PUT",
        &format!("{members}/friend"),
        &with(friend.clone(), &[JSON]),
        json!({"status": "rejected"}).to_string(),
    );
    assert_eq!(r.status, 200);
    assert!(friend_list("").is_empty(), "rejected: no longer listed");
    // The member cannot change the image; the owner removes the member.
    let r = patch(s, id, &friend, json!([{"op": "replace", "path": "/name", "value": "mine"}]));
    assert_eq!(r.status, 404, "a member learns nothing more: {}", r.error_message());
    assert_eq!(s.send("DELETE", &format!("{members}/friend"), &owner, Bytes::new()).status, 204);
    assert_eq!(s.send("GET", &format!("/v2/images/{id}"), &friend, Bytes::new()).status, 404);
}

#[test]
fn tags_deactivation_and_info() {
    let a = api("");
    let s = &a.server;
    let image = create(s, &[], json!({"name": "t", "disk_format": "raw", "container_format": "bare"}));
    let id = image["id"].as_str().unwrap();
    assert_eq!(s.send("PUT", &format!("/v2/images/{id}/tags/gold"), &[], Bytes::new()).status, 204);
    assert_eq!(s.send("PUT", &format!("/v2/images/{id}/tags/gold"), &[], Bytes::new()).status, 204, "idempotent");
    assert_eq!(s.send("PUT", &format!("/v2/images/{id}/tags/with%20space"), &[], Bytes::new()).status, 204);
    assert_eq!(s.get(&format!("/v2/images/{id}")).json()["tags"], json!(["gold", "with space"]));
    assert_eq!(s.send("DELETE", &format!("/v2/images/{id}/tags/gold"), &[], Bytes::new()).status, 204);
    assert_eq!(s.send("DELETE", &format!("/v2/images/{id}/tags/gold"), &[], Bytes::new()).status, 404);

    upload(s, id, &[], b"bits".to_vec());
    let owner = tenant("o");
    let mine = create(s, &owner, json!({"name": "o", "disk_format": "raw", "container_format": "bare"}));
    let mine = mine["id"].as_str().unwrap();
    upload(s, mine, &owner, b"mine".to_vec());
    let action = |id: &str, what: &str, h: &[(&str, &str)]| {
        s.send("POST", &format!("/v2/images/{id}/actions/{what}"), h, Bytes::new()).status
    };
    assert_eq!(action(mine, "deactivate", &owner), 204);
    assert_eq!(s.send("GET", &format!("/v2/images/{mine}"), &owner, Bytes::new()).json()["status"], "deactivated");
    assert_eq!(
        s.send("GET", &format!("/v2/images/{mine}/file"), &owner, Bytes::new()).status,
        403,
        "not for non-admins"
    );
    assert_eq!(s.get(&format!("/v2/images/{mine}/file")).body, &b"mine"[..], "admins still read it");
    assert_eq!(action(mine, "reactivate", &owner), 204);
    assert_eq!(s.send("GET", &format!("/v2/images/{mine}/file"), &owner, Bytes::new()).status, 200);
    let queued = create(s, &[], json!({"name": "q"}));
    assert_eq!(action(queued["id"].as_str().unwrap(), "deactivate", &[]), 409, "only active images");
    assert_eq!(s.get(&format!("/v2/images/{id}/actions/deactivate")).status, 405);

    let stores = s.get("/v2/info/stores").json();
    let fs = stores["stores"].as_array().unwrap().iter().find(|st| st["id"] == "fs").expect("the fs store");
    assert_eq!(fs["default"], "true");
    let import = s.get("/v2/info/import").json();
    assert_eq!(import["import-methods"]["type"], "array");
    let text = s.get("/v2/images").body;
    assert!(!String::from_utf8_lossy(&text).contains(a.deployment.datadir().to_str().unwrap()), "no store path leaks");
}

#[test]
fn v1_and_v2_side_by_side() {
    let a = api("");
    let s = &a.server;
    // Made through v1, seen, changed and read through v2.
    let r = s.upload(
        b"from v1",
        &[
            ("x-image-meta-name", "one"),
            ("x-image-meta-disk_format", "raw"),
            ("x-image-meta-container_format", "bare"),
            ("x-image-meta-property-kind", "old"),
        ],
    );
    assert_eq!(r.status, 201);
    let id = r.image_id();
    let v2 = s.get(&format!("/v2/images/{id}")).json();
    assert_eq!(
        (v2["name"].as_str(), v2["kind"].as_str(), v2["status"].as_str()),
        (Some("one"), Some("old"), Some("active"))
    );
    assert_eq!(v2["checksum"], md5_hex(b"from v1"));
    let r = patch(s, &id, &[], json!([{"op": "replace", "path": "/kind", "value": "new"}]));
    assert_eq!(r.status, 200);
    assert_eq!(s.get(&format!("/v2/images/{id}/file")).body, &b"from v1"[..]);
    let head = s.head(&format!("/v1/images/{id}"));
    assert_eq!(head.header("x-image-meta-property-kind"), Some("new"));
    // Made through v2, seen and read through v1.
    let made = create(
        s,
        &[],
        json!({"name": "two", "disk_format": "qcow2", "container_format": "bare", "visibility": "public"}),
    );
    let id2 = made["id"].as_str().unwrap();
    upload(s, id2, &[], b"from v2".to_vec());
    let v1 = s.get(&format!("/v1/images/{id2}"));
    assert_eq!((v1.status, v1.header("x-image-meta-is_public")), (200, Some("True")));
    assert_eq!(v1.body, &b"from v2"[..]);
    let r = s.send("PUT", &format!("/v1/images/{id2}"), &[("x-image-meta-name", "renamed")], Bytes::new());
    assert_eq!(r.status, 200);
    assert_eq!(s.get(&format!("/v2/images/{id2}")).json()["name"], "renamed");
    assert_eq!(s.send("DELETE", &format!("/v1/images/{id2}"), &[], Bytes::new()).status, 200);
    assert_eq!(s.get(&format!("/v2/images/{id2}")).status, 404);
}

#[test]
fn several_stores_of_one_plugin_each_with_its_own_settings() {
    let a = api("[store.fast]\nplugin = \"fs\"\ndatadir = \"var/fast\"");
    let s = &a.server;
    let stores = s.get("/v2/info/stores").json();
    let ids: Vec<&str> = stores["stores"].as_array().unwrap().iter().map(|st| st["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"fs") && ids.contains(&"fast"), "{stores}");
    let fast = stores["stores"].as_array().unwrap().iter().find(|st| st["id"] == "fast").unwrap();
    assert!(fast.get("default").is_none(), "fs is the default: {stores}");

    let image = create(s, &[], json!({"name": "fast one", "disk_format": "raw", "container_format": "bare"}));
    let id = image["id"].as_str().unwrap();
    let bytes = data(70_000, 3);
    assert_eq!(upload(s, id, &[("x-image-meta-store", "fast")], bytes.clone()).status, 204);
    let shown = s.get(&format!("/v2/images/{id}")).json();
    assert_eq!(shown["stores"], "fast");
    assert_eq!(s.get(&format!("/v2/images/{id}/file")).body, bytes);
    let fast_dir = a.deployment.root.path().join("var/fast");
    let in_fast: Vec<_> = std::fs::read_dir(&fast_dir).unwrap().collect();
    assert_eq!(in_fast.len(), 1, "the data is in the instance's own datadir");
    assert!(a.deployment.data_files().is_empty(), "and not in the default store's");
    let other = create(s, &[], json!({"name": "x", "disk_format": "raw", "container_format": "bare"}));
    let r = upload(s, other["id"].as_str().unwrap(), &[("x-image-meta-store", "slow")], b"x".to_vec());
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("slow") && r.error_message().contains("fast"), "{}", r.error_message());

    // One copy only: it stays.
    let r = s.send("DELETE", &format!("/v2/stores/fast/{id}"), &[], Bytes::new());
    assert_eq!(r.status, 409, "{}", r.error_message());
    assert_eq!(s.send("DELETE", &format!("/v2/stores/fs/{id}"), &[], Bytes::new()).status, 400, "no copy there");
    let r = s.send("DELETE", &format!("/v2/images/{id}"), &[], Bytes::new());
    assert_eq!(r.status, 204);
    assert_eq!(std::fs::read_dir(&fast_dir).unwrap().count(), 0, "deleting the image empties the instance's datadir");

    // An instance may not take a plugin's name, and must name an installed plugin.
    for (table, words) in [
        ("[store.fs]\nplugin = \"fs\"", "already a store plugin"),
        ("[store.quick]\nplugin = \"nothing\"", "no store plugin of that name"),
    ] {
        let d = Deployment::new();
        let config = d.behind_proxy(table);
        let (ok, _, err) = tank_tests::tank(&["api", "--config", config.to_str().unwrap()]);
        assert!(!ok && err.contains(words), "{table}: {err}");
    }
}

#[test]
fn locations_are_shown_only_when_the_operator_says_so() {
    let hidden = api("");
    let image = create(&hidden.server, &[], json!({"name": "l", "disk_format": "raw", "container_format": "bare"}));
    let id = image["id"].as_str().unwrap();
    upload(&hidden.server, id, &[], b"where am I".to_vec());
    let v = hidden.server.get(&format!("/v2/images/{id}")).json();
    assert!(v.get("direct_url").is_none() && v.get("locations").is_none(), "{v}");
    assert_eq!(v["stores"], "fs");

    let shown = api("show_image_direct_url = true\nshow_multiple_locations = true");
    let s = &shown.server;
    let image = create(s, &[], json!({"name": "l", "disk_format": "raw", "container_format": "bare"}));
    let id = image["id"].as_str().unwrap();
    upload(s, id, &[], b"where am I".to_vec());
    let v = s.get(&format!("/v2/images/{id}")).json();
    let url = v["direct_url"].as_str().expect("direct_url is shown");
    assert!(url.starts_with("file:///") && url.ends_with(id), "{url}");
    assert_eq!(v["locations"], json!([{"url": url, "metadata": {"store": "fs"}}]));
    let listed = s.get("/v2/images").json();
    assert_eq!(listed["images"][0]["direct_url"], url);
    let r = patch(
        s,
        id,
        &[],
        json!([{"op": "add", "path": "/locations/-", "value": {"url": "http://x/y", "metadata": {}}}]),
    );
    assert_eq!(r.status, 400, "no location is changed through a patch: {}", r.error_message());
}

#[test]
fn web_download_imports_from_a_loopback_nginx_under_the_import_filter() {
    let nginx = tank_tests::nginx::Nginx::start("");
    let bytes = data(3_000_000, 9);
    std::fs::write(nginx.www().join("disk.img"), &bytes).unwrap();
    let d = Deployment::new();
    d.install("http");
    d.behind_proxy(&format!(
        "image_size_cap = 5000000\n[import_filtering_opts]\nallowed_hosts = [\"127.0.0.1\"]\nallowed_ports = [{}]\n[store.http]\n",
        nginx.port
    ));
    let s = d.start();
    assert_eq!(s.get("/v2/info/import").json()["import-methods"]["value"], json!(["web-download", "copy-image"]));
    let new = || {
        let r = s.send(
            "POST",
            "/v2/images",
            &[JSON],
            json!({"name": "w", "disk_format": "raw", "container_format": "bare"}).to_string(),
        );
        assert_eq!(r.header("openstack-image-import-methods"), Some("web-download,copy-image"));
        r.json()["id"].as_str().unwrap().to_owned()
    };
    let import = |id: &str, body: Value| s.send("POST", &format!("/v2/images/{id}/import"), &[JSON], body.to_string());
    let web = |uri: String| json!({"method": {"name": "web-download", "uri": uri}});
    let status = |id: &str| s.get(&format!("/v2/images/{id}")).json()["status"].as_str().unwrap().to_owned();
    let wait_for = |id: &str, want: &str| {
        tank_tests::wait_until(std::time::Duration::from_secs(30), "the import to end", || status(id) == want);
    };

    let id = new();
    let r = import(&id, web(nginx.url("/disk.img")));
    assert_eq!(r.status, 202, "{}", r.error_message());
    wait_for(&id, "active");
    let image = s.get(&format!("/v2/images/{id}")).json();
    assert_eq!((image["size"].as_u64(), image["checksum"].as_str()), (Some(3_000_000), Some(md5_hex(&bytes).as_str())));
    assert_eq!(image["os_hash_value"], sha512_hex(&bytes));
    assert_eq!(s.get(&format!("/v2/images/{id}/file")).body, bytes);
    assert_eq!(import(&id, web(nginx.url("/disk.img"))).status, 409, "only queued images import");

    // Refused before anything starts: the filter, a missing file, methods and stores.
    let id = new();
    let r = import(&id, web("http://10.1.2.3/disk.img".into()));
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("web-download uri"), "{}", r.error_message());
    assert_eq!(import(&id, web(nginx.url("/missing.img"))).status, 400);
    assert_eq!(import(&id, web("file:///etc/passwd".into())).status, 400);
    let r = import(&id, json!({"method": {"name": "glance-direct"}}));
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("web-download"), "{}", r.error_message());
    let mut to_nowhere = web(nginx.url("/disk.img"));
    to_nowhere["stores"] = json!(["nowhere"]);
    assert_eq!(import(&id, to_nowhere).status, 409, "an unknown store is a conflict, as in Glance");
    assert_eq!(status(&id), "queued", "nothing started");

    // Failing while the bytes arrive (past image_size_cap): queued again, the store named.
    std::fs::write(nginx.www().join("big.img"), data(6_000_000, 1)).unwrap();
    let r = import(&id, web(nginx.url("/big.img")));
    assert_eq!(r.status, 202, "{}", r.error_message());
    wait_for(&id, "queued");
    let image = s.get(&format!("/v2/images/{id}")).json();
    assert_eq!(image["os_glance_failed_import"], "fs", "{image}");
    assert_eq!(d.data_files().len(), 1, "only the first import's data is stored");
    // Another try works, and clears the mark.
    assert_eq!(import(&id, web(nginx.url("/disk.img"))).status, 202);
    wait_for(&id, "active");
    assert!(s.get(&format!("/v2/images/{id}")).json().get("os_glance_failed_import").is_none());
}

#[test]
fn glance_direct_stages_then_imports_and_keeps_nothing_staged() {
    let a = api("staging_store = \"staging\"\n[store.staging]\nplugin = \"fs\"\ndatadir = \"var/staging\"");
    let s = &a.server;
    let staging = a.deployment.root.path().join("var/staging");
    let staged_files = || std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        s.get("/v2/info/import").json()["import-methods"]["value"],
        json!(["glance-direct", "web-download", "copy-image"])
    );
    let id = create(s, &[], json!({"name": "gd", "disk_format": "qcow2", "container_format": "bare"}))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let glance_direct = json!({"method": {"name": "glance-direct"}});
    let import = |body: &Value| s.send("POST", &format!("/v2/images/{id}/import"), &[JSON], body.to_string());
    assert_eq!(import(&glance_direct).status, 409, "nothing staged yet");
    let bytes = data(2_000_000, 4);
    let r = s.send_chunked("PUT", &format!("/v2/images/{id}/stage"), bytes.clone(), &[]);
    assert_eq!(r.status, 204, "{}", r.error_message());
    let staged = s.get(&format!("/v2/images/{id}")).json();
    assert_eq!(staged["status"], "uploading");
    assert!(staged.get("stores").is_none(), "staged data is not the image's yet: {staged}");
    assert_eq!(s.get(&format!("/v2/images/{id}/file")).status, 204, "no data to read while staged");
    assert_eq!(staged_files(), 1);
    assert_eq!(
        s.send("PUT", &format!("/v2/images/{id}/stage"), &[("content-type", "application/octet-stream")], "x").status,
        409
    );
    let mut into_staging = glance_direct.clone();
    into_staging["stores"] = json!(["staging"]);
    assert_eq!(import(&into_staging).status, 400, "the staging store is no target");

    assert_eq!(import(&glance_direct).status, 202);
    tank_tests::wait_until(std::time::Duration::from_secs(30), "the import to end", || {
        s.get(&format!("/v2/images/{id}")).json()["status"] == "active"
    });
    let image = s.get(&format!("/v2/images/{id}")).json();
    assert_eq!((image["checksum"].as_str(), image["stores"].as_str()), (Some(md5_hex(&bytes).as_str()), Some("fs")));
    assert_eq!(s.get(&format!("/v2/images/{id}/file")).body, bytes);
    assert_eq!(staged_files(), 0, "the staged copy is gone once imported");
    // The staging store is no store to choose: hidden, and refused for data.
    let stores = s.get("/v2/info/stores").json();
    assert!(stores["stores"].as_array().unwrap().iter().all(|st| st["id"] != "staging"), "{stores}");
    let other = create(s, &[], json!({"name": "x", "disk_format": "raw", "container_format": "bare"}));
    let r = upload(s, other["id"].as_str().unwrap(), &[("x-image-meta-store", "staging")], b"x".to_vec());
    assert_eq!(r.status, 400, "{}", r.error_message());
    assert_eq!(a.deployment.data_files().len(), 1);

    // A staged image that is deleted takes its staged data with it.
    let other = create(s, &[], json!({"name": "gone", "disk_format": "raw", "container_format": "bare"}));
    let other = other["id"].as_str().unwrap();
    s.send("PUT", &format!("/v2/images/{other}/stage"), &[("content-type", "application/octet-stream")], "staged");
    assert_eq!(staged_files(), 1);
    assert_eq!(s.send("DELETE", &format!("/v2/images/{other}"), &[], Bytes::new()).status, 204);
    assert_eq!(staged_files(), 0);

    // Without a staging store, glance-direct is not offered.
    let plain = api("");
    assert_eq!(
        plain.server.get("/v2/info/import").json()["import-methods"]["value"],
        json!(["web-download", "copy-image"])
    );
    let id = create(&plain.server, &[], json!({"name": "n", "disk_format": "raw", "container_format": "bare"}));
    let r = plain.server.send(
        "PUT",
        &format!("/v2/images/{}/stage", id["id"].as_str().unwrap()),
        &[("content-type", "application/octet-stream")],
        "x",
    );
    assert_eq!(r.status, 403, "{}", r.error_message());
    assert!(r.error_message().contains("staging_store"), "{}", r.error_message());
}

#[test]
fn what_the_review_found_stays_fixed() {
    let a = api("image_property_quota = 3\nimage_member_quota = 2");
    let s = &a.server;
    // A v1 property may not pose as a v2 attribute (a forged direct_url would send Nova
    // to another image's data).
    let r = s.send(
        "POST",
        "/v1/images",
        &[("x-image-meta-property-direct_url", "rbd://forged/images/x/snap")],
        Bytes::new(),
    );
    assert_eq!(r.status, 403, "{}", r.error_message());
    let r = s.send("POST", "/v1/images", &[("x-image-meta-property-locations", "[]")], Bytes::new());
    assert_eq!(r.status, 403);

    // Formats describe the data: fixed once it is there.
    let image = create(s, &[], json!({"name": "f", "disk_format": "raw", "container_format": "bare"}));
    let id = image["id"].as_str().unwrap();
    assert_eq!(
        patch(s, id, &[], json!([{"op": "replace", "path": "/disk_format", "value": "qcow2"}])).status,
        200,
        "queued: free"
    );
    upload(s, id, &[], b"qcow2 bytes".to_vec());
    let r = patch(s, id, &[], json!([{"op": "replace", "path": "/disk_format", "value": "raw"}]));
    assert_eq!(r.status, 403, "{}", r.error_message());
    assert!(r.error_message().contains("disk_format"), "{}", r.error_message());

    // Ranges of an empty image, and a range end that would overflow.
    let empty = create(s, &[], json!({"name": "e", "disk_format": "raw", "container_format": "bare"}));
    let empty = empty["id"].as_str().unwrap();
    upload(s, empty, &[], Vec::new());
    for spec in ["bytes=0-", "bytes=-5"] {
        let r = s.send("GET", &format!("/v2/images/{empty}/file"), &[("range", spec)], Bytes::new());
        assert_eq!((r.status, r.header("content-range")), (416, Some("bytes */0")), "{spec}");
    }
    let r = s.send("GET", &format!("/v2/images/{id}/file"), &[("range", "bytes=0-18446744073709551615")], Bytes::new());
    assert_eq!((r.status, r.body.len()), (206, 11));
    assert_eq!(r.header("content-range"), Some("bytes 0-10/11"));

    // Quotas: 413 past image_property_quota.
    let r = patch(
        s,
        id,
        &[],
        json!([{"op": "add", "path": "/a", "value": "1"}, {"op": "add", "path": "/b", "value": "2"},
               {"op": "add", "path": "/c", "value": "3"}, {"op": "add", "path": "/d", "value": "4"}]),
    );
    assert_eq!(r.status, 413, "{}", r.error_message());
    assert!(r.error_message().contains("image_property_quota"), "{}", r.error_message());

    // v1's can_share gives no right to share further in v2.
    let owner = tenant("owner");
    let shared = create(s, &owner, json!({"name": "s", "disk_format": "raw", "container_format": "bare"}));
    let shared = shared["id"].as_str().unwrap();
    let r = s.send(
        "PUT",
        &format!("/v1/images/{shared}/members/friend"),
        &with(owner.clone(), &[JSON]),
        json!({"member": {"can_share": true}}).to_string(),
    );
    assert_eq!(r.status, 204);
    let friend = with(tenant("friend"), &[JSON]);
    let r = s.send("POST", &format!("/v2/images/{shared}/members"), &friend, json!({"member": "third"}).to_string());
    assert_eq!(r.status, 404, "{}", r.error_message());
    assert_eq!(s.send("DELETE", &format!("/v2/images/{shared}/members/friend"), &friend, Bytes::new()).status, 404);

    // v1's member list obeys image_member_quota too.
    let many = json!({"memberships": [{"member_id": "a"}, {"member_id": "b"}, {"member_id": "c"}]});
    let r = s.send("PUT", &format!("/v1/images/{shared}/members"), &with(owner.clone(), &[JSON]), many.to_string());
    assert_eq!(r.status, 413, "{}", r.error_message());

    // A read-only store is refused before anything changes.
    let d = Deployment::new();
    d.install("http");
    d.behind_proxy("[store.http]\n");
    let s = d.start();
    let image = create(&s, &[], json!({"name": "h", "disk_format": "raw", "container_format": "bare"}));
    let id = image["id"].as_str().unwrap();
    let r = upload(&s, id, &[("x-image-meta-store", "http")], b"x".to_vec());
    assert_eq!(r.status, 400, "{}", r.error_message());
    assert_eq!(s.get(&format!("/v2/images/{id}")).json()["status"], "queued", "nothing changed");
}

#[test]
fn copy_image_and_imports_into_several_stores() {
    let a = api(
        "staging_store = \"staging\"\n[store.staging]\nplugin = \"fs\"\ndatadir = \"var/staging\"\n\
         [store.fast]\nplugin = \"fs\"\ndatadir = \"var/fast\"\n[store.cheap]\nplugin = \"fs\"\ndatadir = \"var/cheap\"",
    );
    let s = &a.server;
    let files = |store: &str| {
        let dir = a.deployment.root.path().join(format!("var/{store}"));
        std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
    };
    let import = |id: &str, body: Value| s.send("POST", &format!("/v2/images/{id}/import"), &[JSON], body.to_string());
    let settled = |id: &str| {
        let mut last = Value::Null;
        tank_tests::wait_until(std::time::Duration::from_secs(30), "the copies to end", || {
            last = s.get(&format!("/v2/images/{id}")).json();
            last["status"] == "active" && last.get("os_glance_importing_to_stores").is_none()
        });
        last
    };
    let image = create(s, &[], json!({"name": "copied", "disk_format": "raw", "container_format": "bare"}));
    let id = image["id"].as_str().unwrap().to_owned();
    let bytes = data(3_000_000, 5);
    assert_eq!(upload(s, &id, &[], bytes.clone()).status, 204);

    // copy-image: admins only, the image stays active, each store gets the data.
    let copy = json!({"method": {"name": "copy-image"}, "stores": ["fast", "cheap"]});
    let r = s.send("POST", &format!("/v2/images/{id}/import"), &with(tenant("someone"), &[JSON]), copy.to_string());
    assert_eq!(r.status, 404, "another tenant's private image: {}", r.error_message());
    let r = import(&id, copy.clone());
    assert_eq!(r.status, 202, "{}", r.error_message());
    let done = settled(&id);
    assert_eq!(done["stores"], "fs,fast,cheap");
    assert_eq!(
        (done["checksum"].as_str(), done.get("os_glance_failed_import")),
        (Some(md5_hex(&bytes).as_str()), None)
    );
    assert_eq!((files("fast"), files("cheap"), a.deployment.data_files().len()), (1, 1, 1));
    assert_eq!(s.send("DELETE", &format!("/v2/stores/fs/{id}"), &[], Bytes::new()).status, 204);
    assert_eq!(s.get(&format!("/v2/images/{id}/file")).body, bytes, "read from another copy");
    assert!(a.deployment.data_files().is_empty());

    // What a copy refuses.
    for (body, status, words) in [
        (json!({"method": {"name": "copy-image"}, "stores": ["fast"]}), 409, "store fast already"),
        (json!({"method": {"name": "copy-image"}, "stores": ["nowhere"]}), 409, "nowhere"),
        (json!({"method": {"name": "copy-image"}}), 400, "name the stores"),
        (json!({"method": {"name": "copy-image"}, "stores": ["fs"], "all_stores": true}), 400, "not both"),
        (json!({"method": {"name": "copy-image"}, "all_stores": "yes"}), 400, "true or false"),
    ] {
        let r = import(&id, body.clone());
        assert_eq!(r.status, status, "{body}: {}", r.error_message());
        assert!(r.error_message().contains(words), "{body}: {}", r.error_message());
    }
    // all_stores: only where the data is not yet.
    assert_eq!(import(&id, json!({"method": {"name": "copy-image"}, "all_stores": true})).status, 202);
    assert_eq!(settled(&id)["stores"], "fast,cheap,fs", "copied into fs only");
    let queued = create(s, &[], json!({"name": "q", "disk_format": "raw", "container_format": "bare"}));
    let r = import(queued["id"].as_str().unwrap(), json!({"method": {"name": "copy-image"}, "stores": ["fast"]}));
    assert_eq!(r.status, 409, "only active images are copied: {}", r.error_message());

    // glance-direct into every store: active once all have it, the staged copy gone.
    let staged = create(s, &[], json!({"name": "gd", "disk_format": "raw", "container_format": "bare"}));
    let staged = staged["id"].as_str().unwrap().to_owned();
    let more = data(1_500_000, 6);
    // A Content-MD5 the data does not have: refused, nothing staged, the image queued.
    let wrong = [("content-md5", "nhB9nTcrtoJr2B01QqQZ1g==")];
    let r = s.send_chunked("PUT", &format!("/v2/images/{staged}/stage"), more.clone(), &wrong);
    assert_eq!(r.status, 400, "{}", r.error_message());
    assert_eq!(
        (s.get(&format!("/v2/images/{staged}")).json()["status"].as_str(), files("staging")),
        (Some("queued"), 0)
    );
    assert_eq!(s.send_chunked("PUT", &format!("/v2/images/{staged}/stage"), more.clone(), &[]).status, 204);
    let r = import(&staged, json!({"method": {"name": "glance-direct"}, "all_stores": true}));
    assert_eq!(r.status, 202, "{}", r.error_message());
    let done = settled(&staged);
    assert_eq!(done["stores"], "fs,cheap,fast", "the default store first, then the others by name");
    assert_eq!((files("staging"), files("fast"), files("cheap")), (0, 2, 2));
    // The X-Image-Meta-Store header names the store when the body does not.
    let one = create(s, &[], json!({"name": "one", "disk_format": "raw", "container_format": "bare"}));
    let one = one["id"].as_str().unwrap().to_owned();
    s.send_chunked("PUT", &format!("/v2/images/{one}/stage"), b"one".to_vec(), &[]);
    let r = s.send(
        "POST",
        &format!("/v2/images/{one}/import"),
        &[JSON, ("x-image-meta-store", "cheap")],
        json!({"method": {"name": "glance-direct"}}).to_string(),
    );
    assert_eq!(r.status, 202, "{}", r.error_message());
    assert_eq!(settled(&one)["stores"], "cheap");

    // Deleting an image removes every copy.
    for id in [&id, &staged, &one] {
        assert_eq!(s.send("DELETE", &format!("/v2/images/{id}"), &[], Bytes::new()).status, 204);
    }
    assert_eq!((files("fast"), files("cheap"), a.deployment.data_files().len()), (0, 0, 0));
}
