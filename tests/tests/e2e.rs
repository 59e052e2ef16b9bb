//! End to end through the real binary: images go in and out of `tank api` over HTTP, with
//! data in the fs store and metadata in sled, both loaded as plugins from a plugin dir.

use std::time::Duration;

use bytes::Bytes;
use tank_tests::{data, md5_hex, tank, wait_until, ChannelBody, Deployment};

fn created_id(reply: &tank_tests::Reply) -> String {
    assert_eq!(reply.status, 201, "create failed: {:?}", reply.body);
    reply.json()["image"]["id"].as_str().expect("the image has an id").to_owned()
}

#[test]
fn upload_head_list_download_delete() {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let bytes = data(5 * 1024 * 1024 + 123, 1);
    let reply = s.upload(
        &bytes,
        &[
            ("x-image-meta-name", "cirros"),
            ("x-image-meta-disk_format", "qcow2"),
            ("x-image-meta-container-format", "bare"),
            ("x-image-meta-is_public", "true"),
            ("x-image-meta-property-os-distro", "cirros"),
        ],
    );
    let id = created_id(&reply);
    let image = &reply.json()["image"];
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], bytes.len() as u64);
    assert_eq!(image["checksum"], md5_hex(&bytes));
    assert_eq!(image["properties"]["os_distro"], "cirros");
    assert_eq!(reply.header("location"), Some(format!("/v1/images/{id}").as_str()));
    assert_eq!(reply.header("etag"), Some(md5_hex(&bytes).as_str()));

    let head = s.head(&format!("/v1/images/{id}"));
    assert_eq!(head.status, 200);
    assert_eq!(head.header("x-image-meta-status"), Some("active"));
    assert_eq!(head.header("x-image-meta-name"), Some("cirros"));
    assert_eq!(head.header("x-image-meta-size"), Some(bytes.len().to_string().as_str()));
    assert_eq!(head.header("x-image-meta-disk_format"), Some("qcow2"));
    assert_eq!(head.header("x-image-meta-is_public"), Some("True"));
    assert_eq!(head.header("x-image-meta-property-os_distro"), Some("cirros"));

    let brief = s.get("/v1/images").json();
    assert_eq!(brief["images"][0]["id"], id.as_str());
    assert_eq!(brief["images"][0]["size"], bytes.len() as u64);
    assert!(brief["images"][0].get("status").is_none(), "the brief list has only the brief fields");
    let detail = s.get("/v1/images/detail");
    assert_eq!(detail.json()["images"][0]["status"], "active");
    let text = String::from_utf8_lossy(&detail.body);
    assert!(!text.contains("location") && !text.contains(d.datadir().to_str().unwrap()), "{text}");

    let download = s.get(&format!("/v1/images/{id}"));
    assert_eq!(download.status, 200);
    assert_eq!(download.header("content-type"), Some("application/octet-stream"));
    assert_eq!(download.header("x-image-meta-checksum"), Some(md5_hex(&bytes).as_str()));
    assert!(download.body == bytes, "downloaded bytes differ from the uploaded ones");
    assert!(download.headers.get_all("location").iter().all(|v| v.to_str().unwrap().starts_with("/v1/")));

    assert_eq!(d.data_files(), vec![id.clone()]);
    let deleted = s.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new());
    assert_eq!(deleted.status, 200);
    assert_eq!(s.head(&format!("/v1/images/{id}")).status, 404);
    assert_eq!(s.get(&format!("/v1/images/{id}")).status, 404);
    assert!(s.get("/v1/images?is_public=none").json()["images"].as_array().unwrap().is_empty());
    assert!(d.data_files().is_empty(), "the data file must go with the image: {:?}", d.data_files());
}

#[test]
fn checksum_mismatch_kills_the_image_and_keeps_no_data() {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let bytes = data(3 * 1024 * 1024, 2);
    let wrong = md5_hex(b"something else");
    let reply = s.upload(&bytes, &[("x-image-meta-name", "bad"), ("x-image-meta-checksum", &wrong)]);
    assert_eq!(reply.status, 400);
    let message = reply.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("checksum") && message.contains(&md5_hex(&bytes)), "{message}");
    assert!(d.data_files().is_empty(), "no data may stay behind: {:?}", d.data_files());
    let listed = s.get("/v1/images/detail?is_public=none").json();
    assert!(listed["images"].as_array().unwrap().is_empty(), "killed images are not listed: {listed}");

    // The right checksum is accepted.
    let good = s.upload(&bytes, &[("x-image-meta-checksum", &md5_hex(&bytes))]);
    assert_eq!(good.json()["image"]["status"], "active");
}

#[test]
fn size_mismatch_is_refused_and_keeps_no_data() {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let bytes = data(4096, 3);
    let reply = s.upload(&bytes, &[("x-image-meta-size", "4095")]);
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"]["message"].as_str().unwrap().contains("4095"));
    assert!(d.data_files().is_empty());
}

#[test]
fn reserve_then_upload_with_put() {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let reply = s.send("POST", "/v1/images", &[("x-image-meta-name", "later")], Bytes::new());
    let id = created_id(&reply);
    assert_eq!(reply.json()["image"]["status"], "queued");
    assert_eq!(s.get(&format!("/v1/images/{id}")).status, 404, "a queued image has no data to download");

    let bytes = data(70_000, 4);
    let put = s.send(
        "PUT",
        &format!("/v1/images/{id}"),
        &[("content-type", "application/octet-stream")],
        Bytes::copy_from_slice(&bytes),
    );
    assert_eq!(put.status, 200, "{:?}", put.body);
    assert_eq!(put.json()["image"]["status"], "active");
    assert_eq!(put.json()["image"]["name"], "later", "an upload keeps the metadata");
    assert!(s.get(&format!("/v1/images/{id}")).body == bytes);

    let again = s.send(
        "PUT",
        &format!("/v1/images/{id}"),
        &[("content-type", "application/octet-stream")],
        Bytes::from_static(b"more"),
    );
    assert_eq!(again.status, 409, "data goes only into queued images");

    let renamed = s.send("PUT", &format!("/v1/images/{id}"), &[("x-image-meta-name", "renamed")], Bytes::new());
    assert_eq!(renamed.json()["image"]["name"], "renamed");
    assert_eq!(renamed.json()["image"]["checksum"], md5_hex(&bytes));
}

#[test]
fn bad_requests_get_clear_errors_and_create_nothing() {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("x-image-meta-status", "active")], "read-only"),
        (&[("x-image-meta-colour", "red")], "x-image-meta-property-colour"),
        (&[("x-image-meta-disk_format", "floppy")], "disk_format"),
        (&[("x-image-meta-disk_format", "aki"), ("x-image-meta-container_format", "bare")], "aki"),
        (&[("x-image-meta-store", "nowhere")], "nowhere"),
    ];
    for (headers, expect) in cases {
        let r = s.send("POST", "/v1/images", headers, Bytes::new());
        assert_eq!(r.status, 400, "{headers:?}");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(msg.contains(expect), "{headers:?}: {msg}");
    }
    let r = s.send("POST", "/v1/images", &[("content-type", "text/plain")], Bytes::from_static(b"data"));
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("application/octet-stream"));
    let all = s.get("/v1/images/detail?changes-since=2000-01-01T00:00:00&is_public=none").json();
    assert!(all["images"].as_array().unwrap().is_empty(), "nothing was created: {all}");
    assert!(d.data_files().is_empty());

    let id = created_id(&s.upload(b"x", &[]));
    let dup = s.upload(b"y", &[("x-image-meta-id", &id)]);
    assert_eq!(dup.status, 409);
    assert_eq!(s.get("/v1/images/not-an-id").status, 404);
}

#[test]
fn protected_images_cannot_be_deleted() {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let id = created_id(&s.upload(b"keep me", &[("x-image-meta-protected", "true")]));
    let r = s.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new());
    assert_eq!(r.status, 403);
    assert_eq!(s.get(&format!("/v1/images/{id}")).body.as_ref(), b"keep me");
}

#[test]
fn versions_document_answers_unversioned_paths() {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    for path in ["/", "/images", "/versions", "/v1.1/images", "/v3/images"] {
        let r = s.get(path);
        assert_eq!(r.status, if path == "/versions" { 200 } else { 300 }, "{path}");
        let versions = r.json()["versions"].as_array().unwrap().clone();
        assert_eq!(versions.last().unwrap()["id"], "v1.0", "{path}");
        assert_eq!(versions[0]["status"], "CURRENT", "{path}");
    }
    assert_eq!(s.get("/v1").status, 200);
    assert_eq!(s.send("PATCH", "/v1/images", &[], Bytes::new()).status, 405);
}

#[test]
fn chunked_upload_streams_into_the_store() {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let bytes = data(3 * 1024 * 1024 + 7, 5);
    let url = s.url("/v1/images");
    let expected = bytes.clone();
    let reply = s.block_on(async move {
        use http_body_util::BodyExt;
        let (tx, body) = ChannelBody::new(4);
        tokio::spawn(async move {
            for piece in expected.chunks(100_000) {
                tx.send(Bytes::copy_from_slice(piece)).await.unwrap();
            }
        });
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let req = http::Request::post(url)
            .header("content-type", "application/octet-stream")
            .header("x-image-meta-name", "chunked")
            .body(body)
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert!(resp.headers().get("content-length").is_some());
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    });
    assert_eq!(reply.0, 201, "{:?}", reply.1);
    let image: serde_json::Value = serde_json::from_slice(&reply.1).unwrap();
    assert_eq!(image["image"]["size"], bytes.len() as u64);
    assert_eq!(image["image"]["checksum"], md5_hex(&bytes));
}

#[test]
fn restart_keeps_images_and_data() {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let bytes = data(2 * 1024 * 1024, 6);
    let id = created_id(&s.upload(&bytes, &[("x-image-meta-name", "durable")]));
    s.stop();
    let s = d.start();
    let head = s.head(&format!("/v1/images/{id}"));
    assert_eq!(head.header("x-image-meta-name"), Some("durable"));
    assert!(s.get(&format!("/v1/images/{id}")).body == bytes);
}

#[test]
fn crash_while_saving_leaves_a_killed_image_and_no_data() {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let url = s.url("/v1/images");
    // Send part of a declared 64 MiB upload, then hold the connection open.
    let (tx, body) = ChannelBody::new(1);
    s.block_on(async {
        tokio::spawn(async move {
            let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
            let req = http::Request::post(url)
                .header("content-type", "application/octet-stream")
                .header("x-image-meta-name", "interrupted")
                .header("x-image-meta-size", (64u64 << 20).to_string())
                .body(body)
                .unwrap();
            let _ = client.request(req).await;
        });
    });
    let piece = Bytes::from(data(4 << 20, 7));
    s.block_on(async {
        for _ in 0..3 {
            tx.send(piece.clone()).await.unwrap();
        }
    });
    wait_until(Duration::from_secs(30), "partial data in the datadir", || {
        d.data_files().iter().any(|f| f.ends_with(".partial"))
    });
    let saving = s.get("/v1/images/detail?is_public=none").json();
    assert_eq!(saving["images"][0]["status"], "saving");
    let id = saving["images"][0]["id"].as_str().unwrap().to_owned();
    s.crash();
    drop(tx);

    let s = d.start();
    let head = s.head(&format!("/v1/images/{id}"));
    assert_eq!(head.header("x-image-meta-status"), Some("killed"));
    assert!(d.data_files().is_empty(), "partial data must be removed at start: {:?}", d.data_files());
    assert!(s.log().contains("killed"), "the recovery is logged");
}

#[test]
fn a_wrong_config_key_fails_with_one_line_naming_it() {
    let d = Deployment::new();
    let config = d.config("api_prot = 9292");
    let (ok, _, err) = tank(&["api", "--config", config.to_str().unwrap()]);
    assert!(!ok);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("api_prot") && lines[0].contains("tank.toml"), "{err}");
}
