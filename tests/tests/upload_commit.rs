//! The upload commit path against the real binary: what may happen to an image while its
//! bytes arrive (metadata, member and tag changes are kept and the upload succeeds; a
//! restart of another server on the same registry leaves it alone), and what a crash
//! leaves behind (no image `saving`, none active with wrong data, no orphaned data). See
//! docs/images-service.md, "The upload commit".

use std::time::Duration;

use serde_json::{json, Value};
use tank_tests::{data, md5_hex, tank, wait_until, Deployment, RawUpload, Server, BEHIND_PROXY};

const MIB: usize = 1 << 20;

/// An admin with a tenant (sharing needs a tenant to share from).
const OPS: &[(&str, &str)] =
    &[("x-auth-token", "t"), ("x-identity-status", "Confirmed"), ("x-tenant", "ops"), ("x-role", "admin")];

/// The id of the one image `server` lists as `saving`, once there is one.
fn saving_image(server: &Server) -> String {
    let mut id = String::new();
    wait_until(Duration::from_secs(30), "an image in saving", || {
        let list = server.get("/v1/images/detail?is_public=none").json();
        let found = list["images"].as_array().unwrap().iter().find(|i| i["status"] == "saving").cloned();
        found.map(|i| id = i["id"].as_str().unwrap().to_owned()).is_some()
    });
    id
}

/// Every image `server` has ever had, deleted ones too.
fn everything(server: &Server) -> Vec<Value> {
    let all = server.get("/v1/images/detail?changes-since=2000-01-01T00:00:00&is_public=none").json();
    all["images"].as_array().unwrap().clone()
}

/// Checks that every active image downloads as its checksum says, that nothing is left
/// `saving`, and that the datadir holds exactly the active images' data.
fn consistent(d: &Deployment, server: &Server) -> Vec<String> {
    let mut active = Vec::new();
    for image in everything(server) {
        let (id, status) = (image["id"].as_str().unwrap(), image["status"].as_str().unwrap());
        assert!(matches!(status, "active" | "killed" | "deleted"), "image {id} is {status}");
        if status == "active" {
            let got = server.get(&format!("/v1/images/{id}"));
            assert_eq!(got.status, 200, "{id}");
            assert_eq!(md5_hex(&got.body), image["checksum"].as_str().unwrap(), "image {id}'s data");
            assert_eq!(got.body.len() as u64, image["size"].as_u64().unwrap(), "image {id}'s size");
            active.push(id.to_owned());
        }
    }
    active.sort();
    assert_eq!(d.data_files(), active, "the datadir holds the active images' data and nothing else");
    active
}

/// Two API servers on `d`'s registry and datadir, each named after its config file (the
/// second's config is returned, for restarts).
fn two_servers(d: &Deployment) -> (Server, Server, std::path::PathBuf) {
    let first = d.root.path().join("tank.toml");
    let second = d.root.path().join("tank-second.toml");
    std::fs::copy(&first, &second).unwrap();
    (Server::start(&first), Server::start(&second), second)
}

#[test]
fn metadata_member_and_tag_changes_during_an_upload_are_kept_and_the_upload_succeeds() {
    let d = Deployment::new();
    let registry = d.start_registry("", BEHIND_PROXY);
    let s = d.start();
    let bytes = data(12 * MIB, 21);
    let headers = [OPS, &[("x-image-meta-name", "busy"), ("x-image-meta-property-os", "linux")]].concat();
    let mut upload = RawUpload::start(&s, &headers, Some(bytes.len()));
    upload.send(&bytes[..4 * MIB]);
    let id = saving_image(&s);
    let image = format!("/v1/images/{id}");

    // A metadata update, a member added and a tag set through the registry API, while
    // the bytes are still coming.
    // v1's PUT replaces the properties unless told to merge them.
    let merge = ("x-glance-registry-purge-props", "false");
    let update =
        s.send("PUT", &image, &[merge, ("x-image-meta-property-color", "blue"), ("x-image-meta-min_ram", "512")], "");
    assert_eq!(update.status, 200, "{:?}", update.body);
    assert_eq!(update.json()["image"]["status"], "saving");
    let share = s.send("PUT", &format!("{image}/members/friend"), OPS, "");
    assert_eq!(share.status, 204, "{:?}", share.body);
    let tag = registry.send("PUT", &format!("/images/{id}"), &[], json!({"image": {"tags": ["gold"]}}).to_string());
    assert_eq!(tag.status, 200, "{:?}", tag.body);
    upload.send(&bytes[4 * MIB..8 * MIB]);
    let again = s.send("PUT", &image, &[merge, ("x-image-meta-property-color", "green")], "");
    assert_eq!(again.status, 200, "{:?}", again.body);

    let (status, body) = upload.finish(&bytes[8 * MIB..]);
    assert_eq!(status, 201, "{body}");
    let done = &body["image"];
    assert_eq!(done["status"], "active");
    assert_eq!(done["checksum"], md5_hex(&bytes));
    assert_eq!(done["properties"], json!({"os": "linux", "color": "green"}), "the changes made meanwhile are kept");
    assert_eq!(done["min_ram"], 512);

    let members = s.get(&format!("{image}/members")).json();
    assert_eq!(members["members"], json!([{"member_id": "friend", "can_share": false}]));
    let record = registry.get(&format!("/images/{id}")).json();
    assert_eq!(record["image"]["tags"], json!(["gold"]), "{record}");
    assert_eq!(record["image"]["status"], "active");
    assert_eq!(consistent(&d, &s), [id]);
}

#[test]
fn restarting_one_api_server_leaves_another_servers_upload_on_the_same_registry_alone() {
    let d = Deployment::new();
    let _registry = d.start_registry("", BEHIND_PROXY);
    let (a, b, second) = two_servers(&d);

    let bytes = data(10 * MIB, 22);
    let mut upload = RawUpload::start(&a, &[("x-image-meta-name", "long")], Some(bytes.len()));
    upload.send(&bytes[..3 * MIB]);
    let id = saving_image(&a);
    let log = b.stop();
    assert!(!log.contains(&id), "b never touched a's upload: {log}");
    let b = Server::start(&second);
    // b's start (its recovery of its own uploads) is over once it listens, and named
    // nothing of a's.
    assert!(!b.log().contains(&id), "{}", b.log());
    assert_eq!(b.image_status(&id), "saving", "b's restart left a's upload alone");

    let (status, body) = upload.finish(&bytes[3 * MIB..]);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["image"]["checksum"], md5_hex(&bytes));
    assert_eq!(b.image_status(&id), "active");
    let got = b.get(&format!("/v1/images/{id}"));
    assert!(got.body == bytes, "b serves the bytes a stored");
    assert_eq!(consistent(&d, &b), [id]);
}

#[test]
fn kill_9_during_uploads_leaves_nothing_saving_nothing_wrong_and_no_orphaned_data() {
    let d = Deployment::new();
    d.behind_proxy("");
    let s = d.start();
    let stored = s.upload(&data(MIB, 30), &[("x-image-meta-name", "before")]);
    assert_eq!(stored.status, 201);

    // Uploads cut at different points: barely begun, nearly done, chunked.
    let mut cut = Vec::new();
    for (size, sent) in [(Some(8 * MIB), 64 << 10), (Some(8 * MIB), 8 * MIB - 1), (None, 5 * MIB)] {
        let mut upload = RawUpload::start(&s, &[("x-image-meta-name", "cut")], size);
        upload.send(&data(sent, 31));
        cut.push(upload);
    }
    wait_until(Duration::from_secs(30), "three uploads saving", || {
        everything(&s).iter().filter(|i| i["status"] == "saving").count() == 3
    });
    wait_until(Duration::from_secs(30), "their partial data", || {
        d.data_files().iter().filter(|f| f.ends_with(".partial")).count() == 3
    });
    s.crash();
    drop(cut);

    let s = d.start();
    let active = consistent(&d, &s);
    assert_eq!(active, [stored.image_id()], "the image stored before the crash is intact");
    let statuses: Vec<_> = everything(&s).iter().map(|i| i["status"].as_str().unwrap().to_owned()).collect();
    assert_eq!(statuses.iter().filter(|s| *s == "killed").count(), 3, "{statuses:?}");
    assert!(s.log().contains("killed"), "the recovery is logged");
}

#[test]
fn an_upload_of_a_dead_server_is_ended_by_another_once_its_lease_passes_and_a_live_one_is_not() {
    let d = Deployment::new();
    let _registry = d.start_registry("", &format!("{BEHIND_PROXY}upload_lease_secs = 2"));
    let (a, b, _) = two_servers(&d);

    // A live upload outlasts its lease several times over: a renews it, b leaves it.
    let bytes = data(6 * MIB, 40);
    let mut live = RawUpload::start(&a, &[("x-image-meta-name", "slow")], Some(bytes.len()));
    let started = std::time::Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(7) {
        live.send(&bytes[sent..sent + (128 << 10)]);
        sent += 128 << 10;
        std::thread::sleep(Duration::from_millis(250));
    }
    let (status, body) = live.finish(&bytes[sent..]);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["image"]["checksum"], md5_hex(&bytes));

    // a dies mid-upload: once the lease has passed, b ends the upload and removes the
    // partial data from the datadir both share.
    let mut dead = RawUpload::start(&a, &[("x-image-meta-name", "orphan")], Some(4 * MIB));
    dead.send(&data(MIB, 41));
    let id = saving_image(&a);
    a.crash();
    drop(dead);
    wait_until(Duration::from_secs(30), "b to end the dead server's upload", || b.image_status(&id) == "killed");
    assert_eq!(consistent(&d, &b), [body["image"]["id"].as_str().unwrap()]);
    assert!(b.log().contains("uploads whose server stopped were ended"), "{}", b.log());
}

#[test]
fn a_second_process_started_with_a_running_servers_config_fails_on_the_port_and_ends_nothing() {
    let d = Deployment::new();
    // A registry server, since two processes cannot open one sled database anyway.
    let _registry = d.start_registry("", BEHIND_PROXY);
    let config = d.root.path().join("tank.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let text = std::fs::read_to_string(&config).unwrap().replace("api_port = 0", &format!("api_port = {port}"));
    std::fs::write(&config, text).unwrap();
    let s = d.start();
    let bytes = data(4 * MIB, 50);
    let mut upload = RawUpload::start(&s, &[("x-image-meta-name", "running")], Some(bytes.len()));
    upload.send(&bytes[..MIB]);
    let id = saving_image(&s);

    // The same config, so the same node_id: only the port tells the two apart.
    let (ok, _, err) = tank(&["api", "--config", config.to_str().unwrap()]);
    assert!(!ok && err.contains("cannot listen"), "{err}");
    assert!(!err.contains(&id), "the second process ended nothing: {err}");
    assert_eq!(s.image_status(&id), "saving");
    let (status, body) = upload.finish(&bytes[MIB..]);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["image"]["checksum"], md5_hex(&bytes));
}

/// An http server on a free loopback port that announces `size` bytes and sends them
/// slowly (64 KiB every 20 ms): an import from it runs long enough to be cut.
fn slow_source(size: usize) -> u16 {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut request = [0u8; 4096];
                let _ = std::io::Read::read(&mut conn, &mut request);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nContent-Type: application/octet-stream\r\n\r\n"
                );
                if conn.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let piece = data(64 << 10, 8);
                let mut sent = 0;
                while sent < size {
                    let n = piece.len().min(size - sent);
                    if conn.write_all(&piece[..n]).is_err() {
                        return;
                    }
                    sent += n;
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
    });
    port
}

#[test]
fn kill_9_during_an_import_leaves_it_queued_with_the_failure_named_and_no_orphaned_data() {
    let port = slow_source(64 * MIB);
    let d = Deployment::new();
    d.install("http");
    d.behind_proxy(&format!(
        "[import_filtering_opts]\nallowed_hosts = [\"127.0.0.1\"]\nallowed_ports = [{port}]\n[store.http]\n"
    ));
    let s = d.start();
    let create = s.send(
        "POST",
        "/v2/images",
        &[("content-type", "application/json")],
        json!({"name": "cut import", "disk_format": "raw", "container_format": "bare"}).to_string(),
    );
    let id = create.json()["id"].as_str().unwrap().to_owned();
    let body = json!({"method": {"name": "web-download", "uri": format!("http://127.0.0.1:{port}/disk.img")}});
    let r =
        s.send("POST", &format!("/v2/images/{id}/import"), &[("content-type", "application/json")], body.to_string());
    assert_eq!(r.status, 202, "{}", r.error_message());
    assert_eq!(s.get(&format!("/v2/images/{id}")).json()["status"], "importing");
    wait_until(Duration::from_secs(30), "the import's partial data", || {
        d.data_files().iter().any(|f| f.ends_with(".partial"))
    });
    s.crash();

    // At its restart the server ends its own import: queued again, the store named,
    // nothing in the datadir.
    let s = d.start();
    let image = s.get(&format!("/v2/images/{id}")).json();
    assert_eq!(image["status"], "queued", "{image}");
    assert_eq!(image["os_glance_failed_import"], "fs", "{image}");
    assert!(d.data_files().is_empty(), "no orphaned data: {:?}", d.data_files());
}
