//! The rbd store against a real Ceph cluster (Debian's packages: one monitor, one memstore
//! OSD, no radosgw; started on loopback once for this binary by `tests/servers/ceph.sh`):
//! the sdk's conformance suite with the pool checked empty (`rbd ls`) after every case,
//! images up and down through `tank api` with their protected snapshot, 1 GiB streamed both
//! ways with bounded memory, an upload cut by its client that leaves no RBD image, a
//! snapshot in use by a clone refused for deletion (409) until the clone is gone, what a
//! crash left removed by `discard`, Glance's older locations read and other clusters'
//! refused, and a cluster that is down (from the start, or whose OSD stops once the store
//! is connected) answered with 503 naming the store within the configured timeout: never a
//! hang, never the key in a response or in the log.

use std::{
    io::Write,
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use bytes::Bytes;
use serde_json::Value;
use tank_plugin_rbd::RbdStore;
use tank_sdk::{conformance::pattern, ErrorKind, OpenContext, Store};
use tank_tests::{
    ceph::Rbd,
    closed_port, data, md5_hex, merged, tank,
    transfer::{peak_memory, read_all, seen, stream_download, stream_upload},
    wait_until, Deployment,
};

/// A deployment with the fs, sled and rbd plugins, and `[store.rbd]` on `pool` with
/// `extra` lines.
fn deployment(ceph: &Rbd, pool: &str, extra: &str) -> Deployment {
    let d = Deployment::new();
    d.install("rbd");
    d.config(&format!("[store.rbd]\n{}", ceph.store_table(pool, extra)));
    d
}

/// The rbd store opened in this process with `config`.
fn open(config: Value) -> RbdStore {
    RbdStore::open(&OpenContext { name: "rbd".into(), config, config_dir: Path::new("/").into() })
        .unwrap_or_else(|e| panic!("opening the rbd store failed: {e}"))
}

/// The secret of client.admin's key, as its keyring holds it.
fn admin_key(ceph: &Rbd) -> String {
    let text = std::fs::read_to_string(&ceph.keyring).unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("key = "))
        .unwrap_or_else(|| panic!("no key in {}", ceph.keyring))
        .trim()
        .to_owned()
}

/// Fails if `text` (named `what`) shows the cluster's key.
fn assert_no_key(ceph: &Rbd, what: &str, text: &str) {
    let key = admin_key(ceph);
    assert!(!text.contains(&key), "{what} shows the key: {text}");
}

/// The snapshots of `pool/image` as (name, protected, size), as `rbd snap ls` shows them.
fn snapshots(ceph: &Rbd, pool: &str, image: &str) -> Vec<(String, bool, u64)> {
    let json: Value = serde_json::from_str(&ceph.rbd(&["snap", "ls", "--format", "json", &format!("{pool}/{image}")]))
        .expect("rbd snap ls prints JSON");
    json.as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_owned(), s["protected"] == "true", s["size"].as_u64().unwrap()))
        .collect()
}

/// `rbd info` of `pool/image`.
fn info(ceph: &Rbd, pool: &str, image: &str) -> Value {
    serde_json::from_str(&ceph.rbd(&["info", "--format", "json", &format!("{pool}/{image}")])).unwrap()
}

/// The sdk's store conformance suite on a pool of its own with `extra` options, the pool
/// checked empty (`rbd ls`) after every case, so an aborted upload's image counts as a
/// leftover.
fn conformance(prefix: &str, extra: Value) {
    let ceph = Rbd::get();
    let pool = ceph.pool(prefix);
    let config = merged(ceph.store_json(&pool), extra);
    let dir = tempfile::tempdir().unwrap();
    tank_sdk::conformance::store::run_with::<RbdStore>(config, dir.path(), &["rbd"], || ceph.images(&pool));
}

#[test]
fn passes_the_conformance_suite_with_the_default_chunk_size() {
    conformance("conformance", serde_json::json!({}));
}

#[test]
fn passes_the_conformance_suite_with_1_mb_chunks() {
    // The suite's 20 MiB image in twenty chunks, its uneven writes across many chunk
    // boundaries, and its uploads of unknown size grown chunk by chunk.
    conformance("small-chunks", serde_json::json!({"chunk_size": 1}));
}

#[test]
fn images_go_up_and_down_through_tank_api_with_a_protected_snapshot_and_delete_leaves_nothing() {
    let ceph = Rbd::get();
    let pool = ceph.pool("api");
    let d = deployment(ceph, &pool, "chunk_size = 4");
    let s = d.start();
    let mut everything_seen = String::new();

    // With a length (created at that size) and chunked without one (grown 4 MiB at a time
    // and trimmed at the end); one is smaller than a chunk.
    let images = [
        ("small", data(3 << 10, 1), false),
        ("sized", data((9 << 20) + 7, 2), false),
        ("chunked", data((17 << 20) + 3, 3), true),
    ];
    let mut ids = Vec::new();
    for (name, bytes, chunked) in &images {
        let headers =
            [("x-image-meta-store", "rbd"), ("x-image-meta-name", *name), ("x-image-meta-disk_format", "raw")];
        let r = if *chunked { s.upload_chunked(bytes.clone(), &headers) } else { s.upload(bytes, &headers) };
        everything_seen.push_str(&seen(&r));
        assert_eq!(r.status, 201, "{name}: {}", seen(&r));
        assert_eq!(r.json()["image"]["checksum"], md5_hex(bytes), "{name}");
        assert_eq!(r.json()["image"]["size"], bytes.len() as u64, "{name}");
        let id = r.image_id();
        // One RBD image named by the id, of exactly the image's size, with 4 MiB objects,
        // and its snapshot `snap`, protected so that clones can be made of it.
        let info = info(ceph, &pool, &id);
        assert_eq!(info["size"], bytes.len() as u64, "{name}: {info}");
        assert_eq!(info["object_size"], 4 << 20, "{name}: {info}");
        assert!(info["features"].as_array().unwrap().iter().any(|f| f == "layering"), "{name}: {info}");
        assert_eq!(snapshots(ceph, &pool, &id), [("snap".to_owned(), true, bytes.len() as u64)], "{name}");
        ids.push(id);
    }
    let mut want = ids.clone();
    want.sort();
    assert_eq!(ceph.images(&pool), want);

    for ((name, bytes, _), id) in images.iter().zip(&ids) {
        let got = s.get(&format!("/v1/images/{id}"));
        assert_eq!(got.status, 200, "{name}");
        assert_eq!(got.header("content-length"), Some(bytes.len().to_string().as_str()));
        assert_eq!(md5_hex(&got.body), md5_hex(bytes), "{name}: the download is what was uploaded");
        everything_seen.push_str(&seen(&s.head(&format!("/v1/images/{id}"))));
    }
    // The snapshot is what other services read: `rbd export` of it is the image.
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("exported");
    ceph.rbd(&["export", &format!("{pool}/{}@snap", ids[1]), exported.to_str().unwrap()]);
    assert_eq!(md5_hex(&std::fs::read(&exported).unwrap()), md5_hex(&images[1].1), "rbd export of the snapshot");
    let detail = s.get("/v1/images/detail?is_public=none");
    everything_seen.push_str(&seen(&detail));
    assert!(!everything_seen.contains("rbd://"), "a location was shown: {everything_seen}");
    assert_no_key(ceph, "the responses", &everything_seen);

    for id in &ids {
        let r = s.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new());
        assert_eq!(r.status, 200, "{}", seen(&r));
        assert_eq!(s.get(&format!("/v1/images/{id}")).status, 404);
    }
    assert_eq!(ceph.images(&pool), Vec::<String>::new(), "delete leaves no RBD image behind");
    let log = s.stop();
    assert!(log.contains("connected to the Ceph cluster"), "{log}");
    assert_no_key(ceph, "the server log", &log);
}

#[test]
fn a_1_gib_image_goes_up_and_back_streamed_with_bounded_memory() {
    const SIZE: u64 = 1 << 30;
    let ceph = Rbd::get();
    let pool = ceph.pool("gib");
    let d = deployment(ceph, &pool, "");
    let s = d.start();
    // Chunked, without a declared size: the image grows 8 MiB at a time.
    let (r, md5) = stream_upload(&s, SIZE, &[("x-image-meta-store", "rbd")]);
    assert_eq!(r.status, 201, "{}", seen(&r));
    assert_eq!(r.json()["image"]["checksum"], md5.as_str());
    assert_eq!(r.json()["image"]["size"], SIZE);
    let id = r.image_id();
    let info = info(ceph, &pool, &id);
    assert_eq!((info["size"].as_u64(), info["object_size"].as_u64()), (Some(SIZE), Some(8 << 20)), "{info}");
    assert_eq!(snapshots(ceph, &pool, &id), [("snap".to_owned(), true, SIZE)]);

    let (status, len, got) = stream_download(&s, &format!("/v1/images/{id}"));
    assert_eq!((status, len), (200, SIZE));
    assert_eq!(got, md5, "the download is what was uploaded");

    // Neither direction held the image: the server's peak memory stays far below 1 GiB
    // (one 8 MiB chunk in the store each way, the host's few chunks, librados' buffers,
    // the binary and the registry).
    let peak = peak_memory(s.pid());
    assert!(peak < 400 << 20, "tank api peaked at {} MiB", peak >> 20);

    assert_eq!(s.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new()).status, 200);
    assert_eq!(ceph.images(&pool), Vec::<String>::new());
}

#[test]
fn an_upload_cut_by_its_client_leaves_no_rbd_image() {
    let ceph = Rbd::get();
    let pool = ceph.pool("cut");
    let d = deployment(ceph, &pool, "chunk_size = 1");
    let s = d.start();
    let size: u64 = 200 << 20;
    // The client never sees an answer, so it names the image itself.
    let id = "6f1b2c3d-0000-4000-8000-000000000007";
    let mut client = TcpStream::connect(&s.addr).unwrap();
    write!(
        client,
        "POST /v1/images HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {size}\r\nx-image-meta-store: rbd\r\nx-image-meta-id: {id}\r\n\r\n",
        s.addr
    )
    .unwrap();
    for n in 0..40 {
        client.write_all(&pattern(1 << 20, n)).unwrap();
    }
    // The upload is under way: its RBD image exists.
    wait_until(Duration::from_secs(60), "the upload's RBD image", || ceph.images(&pool) == [id]);
    drop(client);

    wait_until(Duration::from_secs(60), "the cut upload to be killed", || s.image_status(id) == "killed");
    assert_eq!(ceph.images(&pool), Vec::<String>::new(), "the partial image was removed");
    let log = s.stop();
    assert!(log.contains("upload failed"), "{log}");
    assert_no_key(ceph, "the server log", &log);
}

#[test]
fn a_snapshot_with_clones_is_in_use_and_its_image_is_kept_until_they_are_gone() {
    let ceph = Rbd::get();
    let pool = ceph.pool("clones");
    let d = deployment(ceph, &pool, "");
    let s = d.start();
    let bytes = data(5 << 20, 6);
    let r = s.upload(&bytes, &[("x-image-meta-store", "rbd")]);
    assert_eq!(r.status, 201, "{}", seen(&r));
    let id = r.image_id();
    // What Nova or Cinder do: a copy-on-write clone of the snapshot.
    ceph.rbd(&["clone", &format!("{pool}/{id}@snap"), &format!("{pool}/vm-disk")]);

    let r = s.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new());
    assert_eq!(r.status, 409, "{}", seen(&r));
    let m = r.error_message();
    assert!(m.contains("store 'rbd'") && m.contains("in use") && m.contains(&format!("{pool}/{id}@snap")), "{m}");
    // Nothing was lost: the image is active and whole, its snapshot still protected.
    assert_eq!(s.image_status(&id), "active");
    assert_eq!(md5_hex(&s.get(&format!("/v1/images/{id}")).body), md5_hex(&bytes));
    assert_eq!(snapshots(ceph, &pool, &id), [("snap".to_owned(), true, bytes.len() as u64)]);

    ceph.rbd(&["rm", &format!("{pool}/vm-disk")]);
    assert_eq!(s.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new()).status, 200);
    assert_eq!(ceph.images(&pool), Vec::<String>::new());
}

#[test]
fn discard_removes_what_a_crash_left_and_keeps_finished_images() {
    let ceph = Rbd::get();
    let pool = ceph.pool("crash");
    let store = open(merged(ceph.store_json(&pool), serde_json::json!({"chunk_size": 1})));
    let kept = "6f1b2c3d-0000-4000-8000-000000000001";
    let mut w = store.add(kept, None).unwrap();
    w.write(b"finished").unwrap();
    let location = w.finish().unwrap();
    assert_eq!(location, format!("rbd://{}/{pool}/{kept}/snap", ceph.fsid));

    // What a crash leaves: an image without its snapshot (the writer died while writing),
    // or with the snapshot not yet protected (it died inside finish).
    let crashed = "6f1b2c3d-0000-4000-8000-000000000002";
    ceph.rbd(&["create", "--size", "3M", &format!("{pool}/{crashed}")]);
    let in_finish = "6f1b2c3d-0000-4000-8000-000000000003";
    ceph.rbd(&["create", "--size", "1M", &format!("{pool}/{in_finish}")]);
    ceph.rbd(&["snap", "create", &format!("{pool}/{in_finish}@snap")]);
    assert_eq!(ceph.images(&pool), [kept, crashed, in_finish]);

    for id in [crashed, in_finish, kept, "6f1b2c3d-0000-4000-8000-00000000beef"] {
        store.discard(id).unwrap_or_else(|e| panic!("discard {id}: {e}"));
    }
    assert_eq!(ceph.images(&pool), [kept]);
    assert_eq!(snapshots(ceph, &pool, kept), [("snap".to_owned(), true, 8)]);
    assert_eq!(read_all(store.get(&location, 0, None).unwrap()), b"finished");
    store.delete(&location).unwrap();
}

#[test]
fn glance_locations_are_read_and_other_clusters_refused() {
    let ceph = Rbd::get();
    let pool = ceph.pool("glance");
    let store = open(ceph.store_json(&pool));
    // An image as early Glance left it: no snapshot, location rbd://<id>.
    let id = "6f1b2c3d-0000-4000-8000-000000000003";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("image");
    std::fs::write(&file, b"from an old glance").unwrap();
    ceph.rbd(&["import", file.to_str().unwrap(), &format!("{pool}/{id}")]);
    let old = format!("rbd://{id}");
    assert_eq!(store.size(&old).unwrap(), 18);
    assert_eq!(read_all(store.get(&old, 5, Some(3)).unwrap()), b"an ");
    assert_eq!(read_all(store.get(&old, 0, None).unwrap()), b"from an old glance");
    // Glance's later form names the snapshot; a location of another cluster is refused by
    // name, not looked up here.
    let other = format!("rbd://00000000-0000-4000-8000-000000000000/{pool}/{id}/snap");
    let e = store.get(&other, 0, None).err().unwrap();
    assert_eq!(e.kind, ErrorKind::INVALID_INPUT, "{}", e.message);
    assert!(
        e.message.contains("00000000-0000-4000-8000-000000000000") && e.message.contains(&ceph.fsid),
        "{}",
        e.message
    );
    // Malformed locations never reach librados.
    for bad in [format!("rbd://{}/{pool}/{id};x/snap", ceph.fsid), format!("rbd://{}/{pool}/{id}", ceph.fsid)] {
        assert_eq!(store.size(&bad).unwrap_err().kind, ErrorKind::INVALID_INPUT, "{bad}");
    }
    store.delete(&old).unwrap();
    assert_eq!(ceph.images(&pool), Vec::<String>::new());
    assert_eq!(store.delete(&old).unwrap_err().kind, ErrorKind::NOT_FOUND);
}

#[test]
fn checks_name_a_missing_pool_and_a_refused_key_without_showing_it() {
    let ceph = Rbd::get();
    let e = open(ceph.store_json("no-such-pool")).check().unwrap_err();
    assert_eq!(e.kind, ErrorKind::NOT_FOUND, "{}", e.message);
    assert!(e.message.contains("rbd pool init no-such-pool"), "{}", e.message);

    // A keyring whose key the monitors do not know.
    let dir = tempfile::tempdir().unwrap();
    let keyring = dir.path().join("keyring");
    let secret = wrong_key();
    std::fs::write(&keyring, format!("[client.admin]\n\tkey = {secret}\n")).unwrap();
    let pool = ceph.pool("keys");
    let wrong = open(merged(ceph.store_json(&pool), serde_json::json!({"keyring": keyring, "timeout": 5})));
    let e = wrong.check().unwrap_err();
    assert_eq!(e.kind, ErrorKind::PERMISSION_DENIED, "{}", e.message);
    assert!(e.message.starts_with("store 'rbd': connecting to the cluster"), "{}", e.message);
    assert!(e.message.contains(keyring.to_str().unwrap()), "{}", e.message);
    assert!(!e.message.contains(&secret), "{}", e.message);
}

/// A well-formed cephx key no cluster knows.
fn wrong_key() -> String {
    let out = std::process::Command::new("ceph-authtool").arg("--gen-print-key").output().expect("ceph-authtool runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_cluster_that_is_down_answers_503_naming_the_store_within_the_timeout_and_verify_reports_it() {
    // A monitor address where nothing listens, and one that accepts connections and never
    // answers.
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_port = hung.local_addr().unwrap().port();
    let dead = closed_port();
    let dead_port = dead.port;
    let secret = wrong_key();
    for (name, port) in [("dead", dead_port), ("hung", hung_port)] {
        let d = Deployment::new();
        d.install("rbd");
        std::fs::write(
            d.root.path().join("ceph.conf"),
            format!("[global]\nfsid = 1d5b6c1e-8f3a-4b7e-9c1d-2e3f4a5b6c7d\nmon host = 127.0.0.1:{port}\n"),
        )
        .unwrap();
        std::fs::write(d.root.path().join("keyring"), format!("[client.admin]\n\tkey = {secret}\n")).unwrap();
        d.config("[store.rbd]\nceph_conf = \"ceph.conf\"\nkeyring = \"keyring\"\npool = \"images\"\ntimeout = 2\n");
        // The server starts anyway (the fs store is the default), and says what is wrong.
        let s = d.start();
        let started = Instant::now();
        let r = s.upload(&data(1 << 20, 4), &[("x-image-meta-store", "rbd"), ("x-image-meta-name", name)]);
        let took = started.elapsed();
        assert_eq!(r.status, 503, "{name}: {}", seen(&r));
        let m = r.error_message();
        assert!(m.contains("store 'rbd'") && m.contains("no monitor answered within 2 s"), "{name}: {m}");
        assert!(!seen(&r).contains(&secret), "{name}: {}", seen(&r));
        // Bounded by the store's 2 s timeout, not a hang (the bound leaves room for a slow
        // machine; the point is that it ends).
        assert!(took < Duration::from_secs(30), "{name}: the upload took {took:?}");
        let all = s.get("/v1/images/detail?is_public=none&changes-since=2000-01-01T00:00:00").json();
        let failed: Vec<&Value> = all["images"].as_array().unwrap().iter().filter(|i| i["name"] == name).collect();
        assert!(failed.len() == 1 && failed[0]["status"] == "killed", "{name}: {failed:?}");
        // The fs store is untouched by the rbd store's trouble.
        assert_eq!(s.upload(b"fine", &[]).status, 201);

        let config = d.root.path().join("tank.toml");
        let (_, out, _) = tank(&["plugins", "--config", config.to_str().unwrap(), "--json", "--verify"]);
        let list: Value = serde_json::from_str(&out).unwrap();
        let entry = list.as_array().unwrap().iter().find(|e| e["name"] == "rbd").unwrap();
        assert_eq!(entry["status"], "check-failed", "{name}: {entry}");
        let reason = entry["reason"].as_str().unwrap();
        assert!(
            reason.contains("store 'rbd': connecting to the cluster") && reason.contains("ceph.conf"),
            "{name}: {reason}"
        );
        assert!(!out.contains(&secret), "{name}: {out}");

        let log = s.stop();
        assert!(log.contains("store 'rbd' opened, but its check failed"), "{name}: {log}");
        assert!(!log.contains(&secret), "{name}: {log}");
    }
    drop(hung);
}

#[test]
fn a_cluster_that_goes_down_after_connecting_answers_503_within_the_timeout() {
    // A cluster of its own, whose OSD this test stops.
    let ceph = Rbd::start();
    let pool = ceph.pool("down");
    let d = deployment(&ceph, &pool, "timeout = 3");
    let s = d.start();
    let bytes = data(3 << 20, 8);
    let r = s.upload(&bytes, &[("x-image-meta-store", "rbd")]);
    assert_eq!(r.status, 201, "{}", seen(&r));
    let id = r.image_id();

    ceph.stop_osd();
    // The store is connected and the monitor answers, but no OSD does: each request ends
    // with librados' OSD timeout, 503 naming the store, instead of hanging.
    let started = Instant::now();
    let got = s.get(&format!("/v1/images/{id}"));
    let took = started.elapsed();
    assert_eq!(got.status, 503, "{}", seen(&got));
    let m = got.error_message();
    assert!(m.contains("store 'rbd'") && m.contains("timed out"), "{}", seen(&got));
    assert!(took < Duration::from_secs(30), "the download took {took:?}");
    let started = Instant::now();
    let up = s.upload(&bytes, &[("x-image-meta-store", "rbd"), ("x-image-meta-name", "while down")]);
    let took = started.elapsed();
    assert_eq!(up.status, 503, "{}", seen(&up));
    let m = up.error_message();
    assert!(m.contains("store 'rbd'") && m.contains("timed out"), "{}", seen(&up));
    assert!(took < Duration::from_secs(30), "the upload took {took:?}");
    let log = s.stop();
    assert_no_key(&ceph, "the server log", &log);
}

#[test]
fn a_configuration_error_is_reported_naming_the_key() {
    let ceph = Rbd::get();
    let d = Deployment::new();
    d.install("rbd");
    d.config(&format!("[store.rbd]\n{}", ceph.store_table("images", "chunk_size = 3")));
    let config = d.root.path().join("tank.toml");
    let (_, out, _) = tank(&["plugins", "--config", config.to_str().unwrap(), "--json", "--verify"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    let entry = list.as_array().unwrap().iter().find(|e| e["name"] == "rbd").unwrap();
    assert_eq!(entry["status"], "open-failed", "{entry}");
    assert!(entry["reason"].as_str().unwrap().contains("chunk_size: 3 MB"), "{entry}");
    // The server starts without the store and says why; uploads to it are refused.
    let s = d.start();
    assert!(s.log().contains("chunk_size"), "{}", s.log());
    assert_eq!(s.upload(b"x", &[("x-image-meta-store", "rbd")]).status, 400);
}

/// Where the dynamic loader finds `name` on this machine.
fn system_library(name: &str) -> PathBuf {
    ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} is not installed (Debian's librbd1)"))
}

#[test]
fn a_machine_without_librbd_gets_the_store_refused_by_name_and_the_others_serve() {
    // librbd hidden for one `tank plugins --verify`: /dev/null bound over the library in a
    // mount namespace of its own, so dlopen finds the name and fails on its content, as
    // on a machine where it is broken; the rest of the machine keeps its librbd.
    let librbd = system_library("librbd.so.1");
    let d = Deployment::new();
    d.install("rbd");
    std::fs::write(d.root.path().join("ceph.conf"), "[global]\nmon host = 127.0.0.1:1\n").unwrap();
    d.config("[store.rbd]\nceph_conf = \"ceph.conf\"\npool = \"images\"\n");
    let config = d.root.path().join("tank.toml");
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount --bind /dev/null \"$1\" && exec \"$2\" plugins --config \"$3\" --json --verify",
            "sh",
        ])
        .arg(&librbd)
        .arg(tank_tests::tank_bin())
        .arg(&config)
        .output()
        .expect("unshare runs (util-linux; the suite runs as root)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let list: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    let entry = list.as_array().unwrap().iter().find(|e| e["name"] == "rbd").unwrap();
    assert_eq!(entry["status"], "open-failed", "{entry}");
    let reason = entry["reason"].as_str().unwrap();
    assert!(reason.contains("librbd.so.1") && reason.contains("librbd1"), "{reason}");
    let fs = list.as_array().unwrap().iter().find(|e| e["name"] == "fs").unwrap();
    assert_eq!(fs["status"], "ok", "the other stores are unaffected: {fs}");
}
