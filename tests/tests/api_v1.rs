//! The v1 API's identity, visibility, sharing and list rules (reference §1.5, §1.7, §1.8)
//! against the real binary: who sees which image, who may change it, every list filter,
//! paging and the configured limits.

use bytes::Bytes;
use serde_json::Value;
use tank_tests::{Deployment, Server};

/// Identity headers of a confirmed caller from tenant `tenant`, as a trusted proxy sends them.
fn as_tenant(tenant: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![("x-auth-token", "token"), ("x-identity-status", "Confirmed"), ("x-user", "someone"), ("x-tenant", tenant)]
}

fn with(
    mut base: Vec<(&'static str, &'static str)>,
    more: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    base.extend_from_slice(more);
    base
}

fn create(s: &Server, headers: &[(&str, &str)]) -> String {
    let r = s.send("POST", "/v1/images", headers, Bytes::new());
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()["image"]["id"].as_str().unwrap().to_owned()
}

fn ids(reply: &Value) -> Vec<String> {
    reply["images"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

fn status(s: &Server, method: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
    s.send(method, path, headers, Bytes::new()).status
}

#[test]
fn tenants_see_public_own_and_shared_images_and_change_only_their_own() {
    let d = Deployment::new();
    d.behind_proxy("");
    let s = d.start();
    let (acme, other) = (as_tenant("acme"), as_tenant("other"));
    // A tenant's image is its own, whatever owner it asks for.
    let private = create(&s, &with(acme.clone(), &[("x-image-meta-name", "p"), ("x-image-meta-owner", "other")]));
    let path = format!("/v1/images/{private}");
    let head = s.send("HEAD", &path, &acme, Bytes::new());
    assert_eq!(head.header("x-image-meta-owner"), Some("acme"));

    // Another tenant learns nothing of a private image: 404 everywhere, never 403.
    for method in ["HEAD", "GET", "PUT", "DELETE"] {
        assert_eq!(status(&s, method, &path, &other), 404, "{method}");
    }
    assert!(!ids(&s.send("GET", "/v1/images?is_public=none", &other, Bytes::new()).json()).contains(&private));
    assert_eq!(ids(&s.send("GET", "/v1/images", &acme, Bytes::new()).json()), vec![private.clone()]);

    // Public: everyone sees it, only the owner (or an admin) changes it, others get 403.
    let r = s.send("PUT", &path, &with(acme.clone(), &[("x-image-meta-is_public", "true")]), Bytes::new());
    assert_eq!(r.status, 200);
    assert_eq!(status(&s, "HEAD", &path, &other), 200);
    assert_eq!(ids(&s.send("GET", "/v1/images", &other, Bytes::new()).json()), vec![private.clone()]);
    assert_eq!(status(&s, "PUT", &path, &with(other.clone(), &[("x-image-meta-name", "mine now")])), 403);
    assert_eq!(status(&s, "DELETE", &path, &other), 403);
    let admin = with(as_tenant("ops"), &[("x-role", "member,admin")]);
    assert_eq!(status(&s, "PUT", &path, &with(admin.clone(), &[("x-image-meta-owner", "ops")])), 200);
    assert_eq!(s.head(&path).header("x-image-meta-owner"), Some("ops"), "admins may give images away");

    // A token the proxy did not confirm is refused outright.
    let unconfirmed = [("x-auth-token", "token"), ("x-identity-status", "Invalid"), ("x-tenant", "acme")];
    assert_eq!(status(&s, "GET", "/v1/images", &unconfirmed), 401);
    assert_eq!(status(&s, "DELETE", &path, &acme), 403, "acme no longer owns the public image");
    assert_eq!(status(&s, "DELETE", &path, &admin), 200);
}

#[test]
fn the_noauth_admin_lists_public_images_unless_asked_for_all() {
    let d = Deployment::new();
    d.behind_proxy("");
    let s = d.start();
    let public = create(&s, &[("x-image-meta-is_public", "true")]);
    let private = create(&s, &[]);
    assert_eq!(ids(&s.get("/v1/images").json()), vec![public.clone()]);
    assert_eq!(ids(&s.get("/v1/images?is_public=none").json()), [private.clone(), public.clone()]);
    assert_eq!(ids(&s.get("/v1/images?is_public=false").json()), vec![private.clone()]);
    // Every image is visible to the admin one by one.
    assert_eq!(s.head(&format!("/v1/images/{private}")).status, 200);
}

#[test]
fn members_see_shared_images_and_can_share_lets_them_share_further() {
    let d = Deployment::new();
    d.behind_proxy("");
    let s = d.start();
    let (acme, friend, guest) = (as_tenant("acme"), as_tenant("friend"), as_tenant("guest"));
    let id = create(&s, &with(acme.clone(), &[("x-image-meta-name", "shared")]));
    let image = format!("/v1/images/{id}");
    let members = format!("{image}/members");

    assert_eq!(status(&s, "PUT", &format!("{members}/friend"), &acme), 204);
    assert_eq!(status(&s, "HEAD", &image, &friend), 200);
    assert_eq!(ids(&s.send("GET", "/v1/images", &friend, Bytes::new()).json()), vec![id.clone()]);
    let listed = s.send("GET", &members, &acme, Bytes::new()).json();
    assert_eq!(listed, serde_json::json!({"members": [{"member_id": "friend", "can_share": false}]}));

    // Without can_share a member may not share; it only sees the image.
    assert_eq!(status(&s, "PUT", &format!("{members}/guest"), &friend), 404);
    assert_eq!(status(&s, "PUT", &image, &with(friend.clone(), &[("x-image-meta-name", "x")])), 404);
    let grant = s.send("PUT", &format!("{members}/friend"), &acme, Bytes::from(r#"{"member": {"can_share": true}}"#));
    assert_eq!(grant.status, 204);
    assert_eq!(status(&s, "PUT", &format!("{members}/guest"), &friend), 204);
    assert_eq!(status(&s, "HEAD", &image, &guest), 200);
    // Adding an existing member without a body leaves its can_share alone.
    assert_eq!(status(&s, "PUT", &format!("{members}/friend"), &acme), 204);
    let shared = s.send("GET", "/v1/shared-images/friend", &acme, Bytes::new()).json();
    assert_eq!(shared, serde_json::json!({"shared_images": [{"image_id": id, "can_share": true}]}));

    // Replacing: unnamed members go, named ones keep can_share unless given.
    let body = r#"{"memberships": [{"member_id": "friend"}, {"member_id": "newcomer", "can_share": true}]}"#;
    assert_eq!(s.send("PUT", &members, &acme, Bytes::from(body)).status, 204);
    let listed = s.send("GET", &members, &acme, Bytes::new()).json();
    assert_eq!(
        listed,
        serde_json::json!({"members": [
            {"member_id": "friend", "can_share": true}, {"member_id": "newcomer", "can_share": true}]})
    );
    assert_eq!(status(&s, "HEAD", &image, &guest), 404, "guest was not named, so it is no longer a member");

    assert_eq!(status(&s, "DELETE", &format!("{members}/friend"), &acme), 204);
    assert_eq!(status(&s, "HEAD", &image, &friend), 404);
    assert_eq!(status(&s, "DELETE", &format!("{members}/friend"), &acme), 404, "not a member any more");

    // Bad bodies, unsupported methods, and sharing without a tenant.
    let bad = s.send("PUT", &members, &acme, Bytes::from(r#"{"members": []}"#));
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"]["message"].as_str().unwrap().contains("memberships"));
    assert_eq!(status(&s, "GET", &format!("{members}/newcomer"), &acme), 405);
    assert_eq!(status(&s, "POST", &members, &acme), 405);
    assert_eq!(status(&s, "PUT", &format!("{members}/x"), &[]), 401, "the noauth admin has no tenant to share from");
}

#[test]
fn every_list_filter_sort_and_page_works_and_bad_values_are_named() {
    let d = Deployment::new();
    d.behind_proxy("limit_param_default = 2\napi_limit_max = 3\n");
    let s = d.start();
    let small = create(
        &s,
        &[
            ("x-image-meta-name", "small"),
            ("x-image-meta-is_public", "true"),
            ("x-image-meta-disk_format", "raw"),
            ("x-image-meta-container_format", "bare"),
            ("x-image-meta-size", "10"),
            ("x-image-meta-min_ram", "512"),
            ("x-image-meta-property-os_distro", "debian"),
        ],
    );
    let big = create(
        &s,
        &[
            ("x-image-meta-name", "big"),
            ("x-image-meta-is_public", "true"),
            ("x-image-meta-disk_format", "qcow2"),
            ("x-image-meta-container_format", "ovf"),
            ("x-image-meta-size", "1000"),
            ("x-image-meta-min_disk", "20"),
            ("x-image-meta-protected", "true"),
            ("x-image-meta-property-os_distro", "fedora"),
        ],
    );
    let private = create(&s, &[("x-image-meta-name", "private"), ("x-image-meta-size", "500")]);
    let all = "is_public=none&limit=3";
    let cases: &[(&str, &[&String])] = &[
        ("name=small", &[&small]),
        ("disk_format=qcow2", &[&big]),
        ("container_format=bare", &[&small]),
        ("status=queued&sort_key=name&sort_dir=asc", &[&big, &private, &small]),
        ("size_min=500", &[&private, &big]),
        ("size_max=500", &[&private, &small]),
        ("min_ram=256", &[&small]),
        ("min_disk=10", &[&big]),
        ("protected=true", &[&big]),
        ("protected=false", &[&private, &small]),
        ("property-os_distro=fedora", &[&big]),
        ("is_public=false", &[&private]),
        ("sort_key=size&sort_dir=desc", &[&big, &private, &small]),
        ("changes-since=2000-01-01T00:00:00", &[&private, &big, &small]),
    ];
    for (filter, want) in cases {
        let got = ids(&s.get(&format!("/v1/images/detail?{all}&{filter}")).json());
        let want: Vec<String> = want.iter().map(|w| w.to_string()).collect();
        assert_eq!(got, want, "{filter}");
    }
    // Pages: the default size is limit_param_default, no page is larger than api_limit_max,
    // and the marker walks on without a gap or a repeat.
    let first = ids(&s.get("/v1/images?is_public=none").json());
    assert_eq!(first, [private.clone(), big.clone()]);
    let second = ids(&s.get(&format!("/v1/images?is_public=none&marker={big}")).json());
    assert_eq!(second, vec![small.clone()]);
    assert_eq!(ids(&s.get("/v1/images?is_public=none&limit=1000").json()).len(), 3);

    for (query, param) in [
        ("limit=-1", "limit"),
        ("marker=not-an-id", "marker"),
        ("marker=0b7c3a2e-8f4b-4a9e-9d3c-2f1e5b6a7c8d", "marker"),
        ("sort_key=colour", "sort_key"),
        ("size_min=small", "size_min"),
        ("is_public=maybe", "is_public"),
        ("disk_format=floppy", "disk_format"),
        ("changes-since=last+week", "changes-since"),
        ("colour=blue", "colour"),
    ] {
        let r = s.get(&format!("/v1/images?{query}"));
        assert_eq!(r.status, 400, "{query}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(param), "{query}: {message}");
    }
}

#[test]
fn image_size_cap_counts_the_bytes_that_arrive_and_keeps_nothing_past_it() {
    let d = Deployment::new();
    d.behind_proxy("image_size_cap = 1000000\n");
    let s = d.start();
    // Chunked: no declared size, so only counting the bytes can stop it.
    let r = s.upload_chunked(tank_tests::data(3 << 20, 1), &[("x-image-meta-name", "huge")]);
    let reply = r.json();
    assert_eq!(r.status, 413, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("image_size_cap"), "{reply}");
    assert!(d.data_files().is_empty(), "{:?}", d.data_files());
    let all = s.get("/v1/images/detail?is_public=none&changes-since=2000-01-01T00:00:00").json();
    assert_eq!(all["images"][0]["status"], "killed", "{all}");

    // A declared size over the cap is refused before anything is created.
    let r = s.upload(&tank_tests::data(1_000_001, 2), &[("x-image-meta-name", "declared")]);
    assert_eq!(r.status, 413);
    let all = s.get("/v1/images/detail?is_public=none&changes-since=2000-01-01T00:00:00").json();
    assert_eq!(all["images"].as_array().unwrap().len(), 1, "only the killed one: {all}");
    assert_eq!(s.upload(&tank_tests::data(1_000_000, 3), &[]).status, 201, "the cap itself is allowed");
}

#[test]
fn user_storage_quota_is_per_owner() {
    let d = Deployment::new();
    d.behind_proxy("user_storage_quota = 3000000\n");
    let s = d.start();
    let acme = as_tenant("acme");
    assert_eq!(s.upload_chunked(tank_tests::data(2_000_000, 1), &acme).status, 201);
    let r = s.upload_chunked(tank_tests::data(2_000_000, 2), &acme);
    let reply = r.json();
    assert_eq!(r.status, 413, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("user_storage_quota") && message.contains("1000000 of 3000000"), "{message}");
    assert_eq!(d.data_files().len(), 1, "only the first image's data: {:?}", d.data_files());
    // Another owner has its own quota; and what is left still fits.
    assert_eq!(s.upload_chunked(tank_tests::data(2_000_000, 3), &as_tenant("other")).status, 201);
    assert_eq!(s.upload_chunked(tank_tests::data(1_000_000, 4), &acme).status, 201);
}

#[test]
fn deleting_an_image_while_it_uploads_stops_the_upload_and_keeps_no_data() {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let url = s.url("/v1/images");
    let (tx, body) = tank_tests::ChannelBody::new(1);
    let (answer_tx, answer) = std::sync::mpsc::channel();
    s.block_on(async move {
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let req = http::Request::post(url)
            .header("content-type", "application/octet-stream")
            .header("x-image-meta-name", "doomed")
            .body(body)
            .unwrap();
        tokio::spawn(async move {
            let _ = answer_tx.send(client.request(req).await.map(|r| r.status().as_u16()));
        });
    });
    let piece = Bytes::from(tank_tests::data(2 << 20, 7));
    s.block_on(async {
        tx.send(piece.clone()).await.unwrap();
        tx.send(piece).await.unwrap();
    });
    tank_tests::wait_until(std::time::Duration::from_secs(30), "partial data in the datadir", || {
        d.data_files().iter().any(|f| f.ends_with(".partial"))
    });
    let saving = s.get("/v1/images/detail?is_public=none").json();
    assert_eq!(saving["images"][0]["status"], "saving");
    let id = saving["images"][0]["id"].as_str().unwrap().to_owned();

    assert_eq!(s.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new()).status, 200);
    // The upload ends at once, with the client's body still open.
    let status = answer.recv_timeout(std::time::Duration::from_secs(30)).expect("the upload was not stopped");
    assert_eq!(status.unwrap(), 409);
    drop(tx);
    assert!(d.data_files().is_empty(), "partial data must go: {:?}", d.data_files());
    assert_eq!(s.head(&format!("/v1/images/{id}")).status, 404);
}

#[test]
fn delayed_delete_keeps_the_data_until_the_scrubber_removes_it_after_scrub_time() {
    let d = Deployment::new();
    // A long scrub_time: the deleted image's data must wait.
    let config = d.behind_proxy("delayed_delete = true\nscrub_time = 3600\n");
    let config = config.to_str().unwrap().to_owned();
    let s = d.start();
    let id = s.upload(&tank_tests::data(100_000, 1), &[]).json()["image"]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new()).status, 200);
    assert_eq!(s.head(&format!("/v1/images/{id}")).status, 404, "a deleted image is gone for clients");
    let listed = s.get("/v1/images/detail?is_public=none&changes-since=2000-01-01T00:00:00").json();
    assert_eq!(listed["images"][0]["status"], "pending_delete", "{listed}");
    assert_eq!(d.data_files(), vec![id.clone()]);
    s.stop();

    // One pass of the scrubber leaves it, since scrub_time has not passed.
    let (ok, out, err) = tank_tests::tank(&["scrubber", "--config", &config]);
    assert!(ok, "{err}");
    assert!(out.contains("scrubbed 0, waiting 1"), "{out}");
    assert_eq!(d.data_files(), vec![id.clone()]);

    // With scrub_time passed, the pass removes the data, and the image is deleted for good.
    d.behind_proxy("delayed_delete = true\nscrub_time = 0\n");
    let (ok, out, err) = tank_tests::tank(&["scrubber", "--config", &config]);
    assert!(ok, "{err}");
    assert!(out.contains("scrubbed 1, waiting 0"), "{out}");
    assert!(d.data_files().is_empty(), "{:?}", d.data_files());
    let s = d.start();
    let listed = s.get("/v1/images/detail?is_public=none&changes-since=2000-01-01T00:00:00").json();
    assert_eq!(listed["images"][0]["status"], "deleted", "{listed}");
}

#[test]
fn the_api_server_scrubs_by_itself_when_delayed_delete_is_on() {
    let d = Deployment::new();
    d.behind_proxy("delayed_delete = true\nscrub_time = 0\nwakeup_time = 1\n");
    let s = d.start();
    let id = s.upload(&tank_tests::data(100_000, 1), &[]).json()["image"]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new()).status, 200);
    tank_tests::wait_until(std::time::Duration::from_secs(20), "the scrubber to remove the data", || {
        d.data_files().is_empty()
    });
    tank_tests::wait_until(std::time::Duration::from_secs(20), "the image to be deleted for good", || {
        let listed = s.get("/v1/images/detail?is_public=none&changes-since=2000-01-01T00:00:00").json();
        listed["images"][0]["status"] == "deleted"
    });
}
