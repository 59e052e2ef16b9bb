//! `tank registry` end to end: its REST API over the sled driver, the remote registry
//! driver against it (the sdk's registry conformance suite), and two `tank api` servers
//! sharing one registry through the remote driver.

use bytes::Bytes;
use serde_json::{json, Value};
use tank_plugin_remote::RemoteDriver;
use tank_tests::{data, md5_hex, Deployment, Reply, Server, BEHIND_PROXY};

/// A deployment with sled installed and `tank registry` serving it.
fn registry() -> (Deployment, Server) {
    let d = Deployment::empty();
    d.install("sled");
    let config = d.registry_config("limit_param_default = 2");
    let s = Server::start_registry(&config);
    (d, s)
}

/// Identity headers of a confirmed, non-admin caller of `tenant`.
fn tenant(tenant: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![("x-auth-token", "opaque"), ("x-identity-status", "Confirmed"), ("x-tenant", tenant), ("x-role", "member")]
}

fn send_json(s: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: Value) -> Reply {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    s.send(method, path, &h, body.to_string())
}

fn get_as(s: &Server, path: &str, headers: &[(&str, &str)]) -> Reply {
    s.send("GET", path, headers, Bytes::new())
}

fn names(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "list failed: {:?}", reply.body);
    reply.json()["images"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_owned()).collect()
}

fn kind(reply: &Reply) -> String {
    reply.json()["error"]["kind"].as_str().unwrap_or("").to_owned()
}

#[test]
fn the_registry_api_creates_lists_updates_shares_and_deletes() {
    let (_d, s) = registry();
    let secret_location = "file:///srv/registry-test/secret-location";

    // Create: the admin (no token) names every field; a tenant creates an image it owns.
    let alpha = send_json(
        &s,
        "POST",
        "/images",
        &[],
        json!({"image": {"name": "alpha", "status": "active", "disk_format": "qcow2", "container_format": "bare",
            "size": 10, "is_public": true, "location": secret_location, "properties": {"os": "linux"}}}),
    );
    assert_eq!(alpha.status, 200, "{:?}", alpha.body);
    assert_eq!(alpha.header("etag"), Some("\"1\""));
    let alpha_id = alpha.json()["image"]["id"].as_str().unwrap().to_owned();
    assert_eq!(alpha.json()["image"]["location"], secret_location, "the registry is internal: it shows locations");
    let beta = send_json(&s, "POST", "/images", &tenant("t1"), json!({"image": {"name": "beta", "status": "queued"}}));
    assert_eq!(beta.status, 200, "{:?}", beta.body);
    assert_eq!(beta.json()["image"]["owner"], "t1", "a tenant owns what it creates");
    let beta_id = beta.json()["image"]["id"].as_str().unwrap().to_owned();
    let gamma_id = "6f0f4a2b-9c1d-4e6a-8b7e-2d3c4b5a6f70";
    let gamma = send_json(
        &s,
        "POST",
        "/images",
        &[],
        json!({"image": {"id": gamma_id, "name": "gamma", "status": "queued", "is_public": true,
            "properties": {"os": "bsd"}}}),
    );
    assert_eq!(gamma.status, 200, "{:?}", gamma.body);
    assert_eq!(gamma.json()["image"]["id"], gamma_id, "a client-chosen id is kept");

    let dup = send_json(&s, "POST", "/images", &[], json!({"image": {"id": gamma_id, "status": "queued"}}));
    assert_eq!((dup.status, kind(&dup).as_str()), (409, "duplicate"));
    let no_status = send_json(&s, "POST", "/images", &[], json!({"image": {"name": "x"}}));
    assert_eq!(no_status.status, 400);
    assert!(no_status.json()["error"]["message"].as_str().unwrap().contains("status"));
    let bad_format =
        send_json(&s, "POST", "/images", &[], json!({"image": {"status": "queued", "disk_format": "floppy"}}));
    assert_eq!(bad_format.status, 400);

    // Read: unknown, malformed and hidden ids are all plain 404s.
    let got = s.get(&format!("/images/{alpha_id}"));
    assert_eq!((got.status, got.header("etag")), (200, Some("\"1\"")));
    assert_eq!(got.json()["image"]["properties"]["os"], "linux");
    assert_eq!(s.get("/images/00000000-0000-4000-8000-000000000000").status, 404);
    assert_eq!(s.get("/images/not-an-id").status, 404);
    assert_eq!(get_as(&s, &format!("/images/{beta_id}"), &tenant("t2")).status, 404, "beta is t1's and private");
    assert_eq!(get_as(&s, &format!("/images/{beta_id}"), &tenant("t1")).status, 200);

    // Lists: brief and detailed, filters, the configured default page, markers, visibility.
    let brief = s.get("/images?sort_key=name&sort_dir=asc&limit=10");
    assert_eq!(names(&brief), ["alpha", "beta", "gamma"]);
    assert!(brief.json()["images"][0].get("status").is_none(), "brief entries have brief fields only");
    assert_eq!(names(&s.get("/images?property-os=linux")), ["alpha"]);
    assert_eq!(names(&s.get("/images/detail?status=queued&sort_key=name&sort_dir=asc")), ["beta", "gamma"]);
    let detail = s.get("/images/detail?name=alpha");
    assert_eq!(detail.json()["images"][0]["location"], secret_location);
    let page1 = s.get("/images?sort_key=name&sort_dir=asc");
    assert_eq!(names(&page1), ["alpha", "beta"], "limit_param_default = 2 is the page size");
    let page2 = s.get(&format!("/images?sort_key=name&sort_dir=asc&marker={beta_id}"));
    assert_eq!(names(&page2), ["gamma"]);
    assert_eq!(s.get("/images?marker=00000000-0000-4000-8000-000000000000").status, 400);
    let hidden_marker = get_as(&s, &format!("/images?marker={beta_id}"), &tenant("t2"));
    assert_eq!(hidden_marker.status, 400, "an image t2 cannot see is no marker for it either");
    assert_eq!(s.get("/images?limit=-1").status, 400);
    assert_eq!(names(&get_as(&s, "/images?sort_key=name&sort_dir=asc", &tenant("t2"))), ["alpha", "gamma"]);

    // Updates: compare-and-swap with If-Match, a plain update on top of whatever is there.
    let path = format!("/images/{alpha_id}");
    let renamed = send_json(&s, "PUT", &path, &[("if-match", "\"1\"")], json!({"image": {"name": "alpha2"}}));
    assert_eq!((renamed.status, renamed.header("etag")), (200, Some("\"2\"")), "{:?}", renamed.body);
    let stale = send_json(&s, "PUT", &path, &[("if-match", "\"1\"")], json!({"image": {"name": "lost"}}));
    assert_eq!((stale.status, kind(&stale).as_str()), (409, "conflict"));
    assert_eq!(s.get(&path).json()["image"]["name"], "alpha2", "a stale update changes nothing");
    let plain = send_json(&s, "PUT", &path, &[], json!({"image": {"min_ram": 512, "properties": {"arch": "x86"}}}));
    assert_eq!((plain.status, plain.header("etag")), (200, Some("\"3\"")));
    assert_eq!(plain.json()["image"]["properties"], json!({"os": "linux", "arch": "x86"}), "properties merge");
    let purged = send_json(
        &s,
        "PUT",
        &path,
        &[("x-glance-registry-purge-props", "true")],
        json!({"image": {"properties": {"arch": "arm"}}}),
    );
    assert_eq!(purged.json()["image"]["properties"], json!({"arch": "arm"}), "purge replaces them");
    let back = send_json(&s, "PUT", &path, &[], json!({"image": {"status": "queued"}}));
    assert_eq!(back.status, 400, "active → queued is no transition");
    let t2_public = send_json(&s, "PUT", &path, &tenant("t2"), json!({"image": {"name": "mine"}}));
    assert_eq!(t2_public.status, 403, "a public image another tenant sees but does not own");
    let t2_private = send_json(&s, "PUT", &format!("/images/{beta_id}"), &tenant("t2"), json!({"image": {}}));
    assert_eq!(t2_private.status, 404, "a private image stays hidden");

    // Members: add, replace, list, shared-images, remove.
    let members = format!("/images/{beta_id}/members");
    assert_eq!(s.send("PUT", &format!("{members}/t2"), &tenant("t1"), Bytes::new()).status, 204);
    assert_eq!(get_as(&s, &format!("/images/{beta_id}"), &tenant("t2")).status, 200, "t2 is now a member");
    assert_eq!(s.get(&members).json()["members"], json!([{"member_id": "t2", "can_share": false}]));
    let replace = json!({"memberships": [{"member_id": "t3", "can_share": true}, {"member_id": "t2"}]});
    assert_eq!(send_json(&s, "PUT", &members, &tenant("t1"), replace).status, 204);
    let listed = s.get(&members).json()["members"].clone();
    assert_eq!(listed, json!([{"member_id": "t3", "can_share": true}, {"member_id": "t2", "can_share": false}]));
    let shared = s.get("/shared-images/t3").json();
    assert_eq!(shared, json!({"shared_images": [{"image_id": beta_id, "can_share": true}]}));
    assert_eq!(s.send("DELETE", &format!("{members}/t2"), &tenant("t1"), Bytes::new()).status, 204);
    assert_eq!(get_as(&s, &format!("/images/{beta_id}"), &tenant("t2")).status, 404, "membership gone, image hidden");
    assert_eq!(s.send("DELETE", &format!("{members}/t2"), &tenant("t1"), Bytes::new()).status, 404);
    let by_stranger = s.send("PUT", &format!("{members}/t9"), &tenant("t2"), Bytes::new());
    assert_eq!(by_stranger.status, 404, "who cannot see an image cannot share it");

    // Delete: a soft delete admins still read; lists and tenants no longer see it.
    let deleted = s.send("DELETE", &format!("/images/{gamma_id}"), &[], Bytes::new());
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json()["image"]["status"], "deleted");
    assert_eq!(s.get(&format!("/images/{gamma_id}")).json()["image"]["deleted"], true);
    assert_eq!(get_as(&s, &format!("/images/{gamma_id}"), &tenant("t2")).status, 404);
    assert_eq!(names(&s.get("/images?sort_key=name&sort_dir=asc")), ["alpha2", "beta"]);

    // The Tank extension: statuses and removal, for admins only.
    let by_status = s.get("/tank/images?status=deleted&status=queued").json();
    let mut found: Vec<&str> =
        by_status["images"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    found.sort();
    let mut want = vec![gamma_id, beta_id.as_str()];
    want.sort();
    assert_eq!(found, want);
    assert_eq!(get_as(&s, "/tank/images?status=deleted", &tenant("t1")).status, 403);
    assert_eq!(s.send("DELETE", &format!("/tank/images/{gamma_id}"), &[], Bytes::new()).status, 204);
    assert_eq!(s.get(&format!("/images/{gamma_id}")).status, 404, "removed entirely");
    assert_eq!(s.send("DELETE", &format!("/tank/images/{gamma_id}"), &[], Bytes::new()).status, 404);

    let log = s.stop();
    assert!(log.contains(&format!("/images/{alpha_id}")), "requests are logged with their path:\n{log}");
    assert!(!log.contains("secret-location"), "locations are never logged:\n{log}");
}

#[test]
fn the_remote_driver_passes_the_registry_conformance_suite() {
    let (_d, s) = registry();
    let dir = tempfile::tempdir().unwrap();
    tank_sdk::conformance::registry::run::<RemoteDriver>(json!({ "url": format!("http://{}", s.addr) }), dir.path());
}

#[test]
fn two_api_servers_share_one_registry_through_the_remote_driver() {
    let d = Deployment::empty();
    let registry = d.start_registry("limit_param_default = 2", BEHIND_PROXY);
    let a = d.start();
    let b = d.start();
    assert_ne!(a.addr, b.addr);

    let bytes = data(3 * 1024 * 1024 + 7, 9);
    let up = a.upload(
        &bytes,
        &[
            ("x-image-meta-name", "shared"),
            ("x-image-meta-disk_format", "raw"),
            ("x-image-meta-container_format", "bare"),
        ],
    );
    assert_eq!(up.status, 201, "{:?}", up.body);
    let id = up.json()["image"]["id"].as_str().unwrap().to_owned();

    let listed = b.get("/v1/images?is_public=none").json();
    assert_eq!(listed["images"][0]["id"], id.as_str(), "B lists what A uploaded: {listed}");
    let head = b.head(&format!("/v1/images/{id}"));
    assert_eq!(head.header("x-image-meta-status"), Some("active"));
    assert_eq!(head.header("x-image-meta-checksum"), Some(md5_hex(&bytes).as_str()));
    let download = b.get(&format!("/v1/images/{id}"));
    assert_eq!(download.status, 200);
    assert!(download.body == bytes, "B serves the bytes A stored");

    // The registry holds the record, with the location the API servers need.
    let record = registry.get(&format!("/images/{id}")).json();
    assert_eq!(record["image"]["status"], "active");
    assert!(record["image"]["location"].as_str().unwrap().starts_with("file://"));

    assert_eq!(b.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new()).status, 200);
    assert_eq!(a.head(&format!("/v1/images/{id}")).status, 404, "A sees B's delete");
    assert!(d.data_files().is_empty());

    // The remote drivers keep their connections: far fewer connections than requests.
    let log = registry.stop();
    let peers: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("/tank/"))
        .filter_map(|l| l.split("127.0.0.1:").nth(1))
        .map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next().unwrap_or(""))
        .collect();
    let mut distinct = peers.clone();
    distinct.sort();
    distinct.dedup();
    eprintln!("registry: {} /tank/ requests over {} connections", peers.len(), distinct.len());
    assert!(peers.len() >= 10, "the API servers went through the registry: {} requests", peers.len());
    assert!(
        distinct.len() <= 4,
        "{} connections for {} requests: keep-alive is not working",
        distinct.len(),
        peers.len()
    );
}

#[test]
fn a_mistyped_registry_key_stops_the_start_with_one_line() {
    let d = Deployment::empty();
    let config = d.registry_config("registry_prot = 9191");
    let (ok, _, err) = tank_tests::tank(&["registry", "--config", config.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&config.display().to_string()) && err.contains("registry_prot"), "{err}");
}

#[test]
fn api_server_names_an_unreachable_registry() {
    let d = Deployment::empty();
    let registry = d.start_registry("", BEHIND_PROXY);
    let url = format!("http://{}", registry.addr);
    let _ = registry.stop();
    let (ok, _, err) = tank_tests::tank(&["api", "--config", d.root.path().join("tank.toml").to_str().unwrap()]);
    assert!(!ok, "tank api must not serve without its registry");
    assert!(err.contains(&format!("registry at {url} is unreachable")), "{err}");
}
