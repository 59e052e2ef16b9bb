//! The s3 store against a real Ceph radosgw (Debian's packages, started on loopback once
//! for this binary by `tests/servers/ceph.sh`): the sdk's conformance suite with the
//! bucket's index checked empty after every case, images up and down through `tank api`
//! (one PUT, multipart of known and unknown size, 1 GiB in many parts with bounded memory),
//! an upload cut by its client that leaves no object and no multipart upload, what a crash
//! left removed by `discard`, Glance's locations read, TLS with a verified certificate, and
//! servers that are down, hung or refuse the keys answered with 503 naming the store: never
//! a hang, never a credential in a response or in the log.

use std::{
    io::Write,
    net::{TcpListener, TcpStream},
    path::Path,
    time::{Duration, Instant},
};

use bytes::Bytes;
use serde_json::Value;
use tank_plugin_s3::S3Store;
use tank_sdk::{conformance::pattern, ErrorKind, OpenContext, Store};
use tank_tests::{
    ceph::Ceph,
    closed_port, data, md5_hex, merged, tank,
    transfer::{peak_memory, read_all, seen, stream_download, stream_upload},
    wait_until, Deployment,
};

/// A deployment with the fs, sled and s3 plugins, and `[store.s3]` on `bucket` with
/// `extra` lines.
fn deployment(ceph: &Ceph, bucket: &str, extra: &str) -> Deployment {
    let d = Deployment::new();
    d.install("s3");
    d.config(&format!("[store.s3]\n{}", ceph.store_table(bucket, extra)));
    d
}

/// The s3 store opened in this process with `config`.
fn open(config: Value) -> S3Store {
    S3Store::open(&OpenContext { name: "s3".into(), config, config_dir: Path::new("/").into() })
        .unwrap_or_else(|e| panic!("opening the s3 store failed: {e}"))
}

/// Fails if `text` (named `what`) shows a key of the cluster's S3 user.
fn assert_no_keys(ceph: &Ceph, what: &str, text: &str) {
    for key in [&ceph.secret_key, &ceph.access_key] {
        assert!(!text.contains(key.as_str()), "{what} shows a key: {text}");
    }
}

/// The sdk's store conformance suite with `extra` options, the bucket's index checked
/// empty after every case (so an unfinished multipart upload counts as a leftover).
fn conformance(prefix: &str, extra: Value) {
    let ceph = Ceph::get();
    let bucket = ceph.bucket(prefix);
    let config = merged(ceph.store_json(&bucket), merged(serde_json::json!({"create_bucket_on_put": true}), extra));
    let dir = tempfile::tempdir().unwrap();
    tank_sdk::conformance::store::run_with::<S3Store>(config, dir.path(), &["s3"], || ceph.bucket_entries(&bucket));
}

#[test]
fn passes_the_conformance_suite_with_the_default_sizes() {
    // The suite's images are all below large_object_size: single PUTs.
    conformance("conformance", serde_json::json!({}));
}

#[test]
fn passes_the_conformance_suite_with_every_upload_multipart() {
    // 5 MiB parts: the suite's 20 MiB image goes up in five, its aborted and dropped
    // writes abort real multipart uploads.
    conformance("multipart", serde_json::json!({"large_object_size": 0, "large_object_chunk_size": 5}));
}

#[test]
fn images_go_up_and_down_through_tank_api_and_delete_leaves_nothing() {
    let ceph = Ceph::get();
    let bucket = ceph.bucket("api");
    let d =
        deployment(ceph, &bucket, "create_bucket_on_put = true\nlarge_object_size = 8\nlarge_object_chunk_size = 5");
    let s = d.start();
    let mut everything_seen = String::new();

    // Below large_object_size: one PUT. Above it, with a length or chunked without one:
    // multipart uploads of 5 MiB parts.
    let images = [
        ("one put", data(3 << 20, 1), false),
        ("multipart", data((23 << 20) + 7, 2), false),
        ("chunked", data((17 << 20) + 3, 3), true),
    ];
    let mut ids = Vec::new();
    for (name, bytes, chunked) in &images {
        let headers = [("x-image-meta-store", "s3"), ("x-image-meta-name", *name), ("x-image-meta-disk_format", "raw")];
        let r = if *chunked { s.upload_chunked(bytes.clone(), &headers) } else { s.upload(bytes, &headers) };
        everything_seen.push_str(&seen(&r));
        assert_eq!(r.status, 201, "{name}: {}", seen(&r));
        assert_eq!(r.json()["image"]["checksum"], md5_hex(bytes), "{name}");
        assert_eq!(r.json()["image"]["size"], bytes.len() as u64, "{name}");
        ids.push(r.image_id());
    }
    // The bucket holds the three images under their ids, and nothing else: no part or
    // upload of a finished multipart upload remains.
    let mut entries = ceph.bucket_entries(&bucket);
    entries.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(entries, want);

    for ((name, bytes, _), id) in images.iter().zip(&ids) {
        let got = s.get(&format!("/v1/images/{id}"));
        assert_eq!(got.status, 200, "{name}");
        assert_eq!(got.header("content-length"), Some(bytes.len().to_string().as_str()));
        assert_eq!(md5_hex(&got.body), md5_hex(bytes), "{name}: the download is what was uploaded");
        let head = s.head(&format!("/v1/images/{id}"));
        everything_seen.push_str(&seen(&head));
    }
    let detail = s.get("/v1/images/detail?is_public=none");
    everything_seen.push_str(&seen(&detail));
    assert!(!everything_seen.contains("s3://"), "a location was shown: {everything_seen}");
    assert_no_keys(ceph, "the responses", &everything_seen);

    for id in &ids {
        let r = s.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new());
        assert_eq!(r.status, 200, "{}", seen(&r));
        assert_eq!(s.get(&format!("/v1/images/{id}")).status, 404);
    }
    assert_eq!(ceph.bucket_entries(&bucket), Vec::<String>::new(), "delete leaves no object behind");
    let log = s.stop();
    assert!(log.contains("bucket created (create_bucket_on_put)"), "{log}");
    assert_no_keys(ceph, "the server log", &log);
}

#[test]
fn a_1_gib_image_goes_up_in_many_parts_and_back_streamed_with_bounded_memory() {
    const SIZE: u64 = 1 << 30;
    let ceph = Ceph::get();
    let bucket = ceph.bucket("gib");
    // 16 MiB parts, 4 at a time: 64 parts.
    let d = deployment(ceph, &bucket, "create_bucket_on_put = true\nlarge_object_chunk_size = 16");
    let s = d.start();
    let (r, md5) = stream_upload(&s, SIZE, &[("x-image-meta-store", "s3"), ("x-image-meta-size", &SIZE.to_string())]);
    assert_eq!(r.status, 201, "{}", seen(&r));
    assert_eq!(r.json()["image"]["checksum"], md5.as_str());
    let id = r.image_id();

    // radosgw holds one object of 1 GiB, assembled from 64 parts (a multipart upload's
    // ETag ends in -<parts>), and no parts besides it.
    let stat: Value =
        serde_json::from_str(&ceph.admin(&["object", "stat", "--bucket", &bucket, "--object", &id])).unwrap();
    assert_eq!(stat["size"], SIZE);
    let etag = stat["etag"].as_str().unwrap_or_default();
    assert!(etag.trim_matches('"').ends_with("-64"), "not a 64-part object: {stat}");
    assert_eq!(ceph.bucket_entries(&bucket), std::slice::from_ref(&id));

    let (status, len, got) = stream_download(&s, &format!("/v1/images/{id}"));
    assert_eq!((status, len), (200, SIZE));
    assert_eq!(got, md5, "the download is what was uploaded");

    // Neither direction held the image: the server's peak memory stays far below 1 GiB
    // (what is allowed: 6 parts of the upload in the store, the host's few chunks, the
    // download's few chunks, the binary and the registry).
    let peak = peak_memory(s.pid());
    assert!(peak < 400 << 20, "tank api peaked at {} MiB", peak >> 20);

    assert_eq!(s.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new()).status, 200);
    assert_eq!(ceph.bucket_entries(&bucket), Vec::<String>::new());
}

#[test]
fn an_upload_cut_by_its_client_leaves_no_object_and_no_multipart_upload() {
    let ceph = Ceph::get();
    let bucket = ceph.bucket("cut");
    let d = deployment(ceph, &bucket, "create_bucket_on_put = true\nlarge_object_chunk_size = 5");
    let s = d.start();
    let size: u64 = 200 << 20;
    // The client never sees an answer, so it names the image itself.
    let id = "6f1b2c3d-0000-4000-8000-000000000007";
    let mut client = TcpStream::connect(&s.addr).unwrap();
    write!(
        client,
        "POST /v1/images HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {size}\r\nx-image-meta-store: s3\r\nx-image-meta-id: {id}\r\n\r\n",
        s.addr
    )
    .unwrap();
    for n in 0..40 {
        client.write_all(&pattern(1 << 20, n)).unwrap();
    }
    // The upload is under way on radosgw: parts of a multipart upload exist.
    wait_until(Duration::from_secs(60), "parts of the multipart upload", || {
        ceph.bucket_entries(&bucket).iter().any(|e| e.starts_with("_multipart_"))
    });
    drop(client);

    wait_until(Duration::from_secs(60), "the cut upload to be killed", || s.image_status(id) == "killed");
    // The write was aborted before the image became killed: nothing may remain, neither
    // an object nor the parts and record of a multipart upload.
    assert_eq!(ceph.bucket_entries(&bucket), Vec::<String>::new());
    let log = s.stop();
    assert!(log.contains("upload failed"), "{log}");
    assert_no_keys(ceph, "the server log", &log);
}

#[test]
fn an_abort_with_parts_in_flight_leaves_nothing() {
    // The suite's aborts come before the first part; here four 5 MiB parts are on their way
    // when the abort comes. Aborting at once used to leave a part that radosgw finished
    // after the abort in the bucket's index, in about one round in fifteen: every round must
    // leave the index empty.
    let ceph = Ceph::get();
    let bucket = ceph.bucket("inflight");
    let store = open(merged(
        ceph.store_json(&bucket),
        serde_json::json!({"create_bucket_on_put": true, "large_object_chunk_size": 5, "thread_pools": 4}),
    ));
    for round in 0..8u64 {
        let id = format!("6f1b2c3d-0000-4000-8000-0000000001{round:02}");
        let mut w = store.add(&id, None).unwrap();
        for n in 0..(20 + 3 * round) {
            w.write(&pattern(1 << 20, n)).unwrap();
        }
        if round % 2 == 0 {
            w.abort().unwrap();
        } else {
            drop(w);
        }
        assert_eq!(ceph.bucket_entries(&bucket), Vec::<String>::new(), "round {round}");
    }
}

#[test]
fn discard_removes_the_multipart_upload_a_crash_left_and_keeps_finished_images() {
    let ceph = Ceph::get();
    let bucket = ceph.bucket("crash");
    let store = open(merged(
        ceph.store_json(&bucket),
        serde_json::json!({"create_bucket_on_put": true, "large_object_size": 0, "large_object_chunk_size": 5}),
    ));
    let kept = "6f1b2c3d-0000-4000-8000-000000000001";
    let mut w = store.add(kept, None).unwrap();
    w.write(b"finished").unwrap();
    let location = w.finish().unwrap();

    let crashed = "6f1b2c3d-0000-4000-8000-000000000002";
    let mut w = store.add(crashed, None).unwrap();
    for n in 0..3 {
        w.write(&pattern(5 << 20, n)).unwrap();
    }
    // A crash: the writer is neither finished nor aborted nor dropped.
    std::mem::forget(w);
    wait_until(Duration::from_secs(60), "parts of the crashed upload", || {
        ceph.bucket_entries(&bucket).iter().any(|e| e.starts_with(&format!("_multipart_{crashed}")))
    });

    store.discard(crashed).unwrap();
    store.discard(kept).unwrap();
    assert_eq!(ceph.bucket_entries(&bucket), [kept]);
    assert_eq!(read_all(store.get(&location, 0, None).unwrap()), b"finished");
    store.delete(&location).unwrap();
}

#[test]
fn glance_locations_with_their_own_server_and_keys_are_read() {
    let ceph = Ceph::get();
    let bucket = ceph.bucket("glance");
    let store = open(merged(ceph.store_json(&bucket), serde_json::json!({"create_bucket_on_put": true})));
    let id = "6f1b2c3d-0000-4000-8000-000000000003";
    let mut w = store.add(id, Some(11)).unwrap();
    w.write(b"from glance").unwrap();
    let tank_location = w.finish().unwrap();
    assert_eq!(tank_location, format!("s3://{bucket}/{id}"), "Tank's locations hold no server and no keys");

    // The same object as Glance wrote its locations, read by a store configured for
    // another bucket with keys that do not work: the location's own are used.
    let host = ceph.endpoint.trim_start_matches("http://");
    let glance = format!("s3://{}:{}@{host}/{bucket}/{id}", ceph.access_key, ceph.secret_key);
    let elsewhere = open(merged(
        ceph.store_json("another-bucket"),
        serde_json::json!({"access_key": "nobody", "secret_key": "wrong"}),
    ));
    assert_eq!(elsewhere.size(&glance).unwrap(), 11);
    assert_eq!(read_all(elsewhere.get(&glance, 5, Some(3)).unwrap()), b"gla");
    assert_eq!(read_all(elsewhere.get(&format!("s3+http{}", &glance[2..]), 0, None).unwrap()), b"from glance");
    // Errors about it name the server and object, never the keys.
    let missing = glance.replace(id, "6f1b2c3d-0000-4000-8000-00000000dead");
    let e = elsewhere.get(&missing, 0, None).err().unwrap();
    assert_eq!(e.kind, ErrorKind::NOT_FOUND);
    assert!(e.message.contains(host), "{}", e.message);
    assert_no_keys(ceph, "the error", &e.message);
    store.delete(&tank_location).unwrap();
}

#[test]
fn checks_say_what_is_wrong_with_the_bucket_or_the_keys() {
    let ceph = Ceph::get();
    let missing = ceph.bucket("never-made");
    let e = open(ceph.store_json(&missing)).check().unwrap_err();
    assert_eq!(e.kind, ErrorKind::NOT_FOUND);
    assert!(e.message.contains("create_bucket_on_put = true"), "{}", e.message);
    // With create_bucket_on_put the first upload makes it, so the check passes.
    open(merged(ceph.store_json(&missing), serde_json::json!({"create_bucket_on_put": true}))).check().unwrap();

    let bucket = ceph.bucket("keys");
    open(merged(ceph.store_json(&bucket), serde_json::json!({"create_bucket_on_put": true})))
        .add("6f1b2c3d-0000-4000-8000-000000000004", Some(0))
        .unwrap()
        .abort()
        .unwrap();
    let wrong = open(merged(ceph.store_json(&bucket), serde_json::json!({"secret_key": "not-the-secret"})));
    let e = wrong.check().unwrap_err();
    assert_eq!(e.kind, ErrorKind::PERMISSION_DENIED, "{}", e.message);
    assert!(e.message.starts_with("store 's3': HEAD of bucket"), "{}", e.message);
    assert!(!e.message.contains("not-the-secret"), "{}", e.message);
    let e = wrong.add("6f1b2c3d-0000-4000-8000-000000000005", Some(1)).err().unwrap();
    assert_eq!(e.kind, ErrorKind::PERMISSION_DENIED, "{}", e.message);
}

#[test]
fn tls_follows_the_hosts_scheme_and_certificates_are_verified() {
    let ceph = Ceph::get();
    let bucket = ceph.bucket("tls");
    let tls = serde_json::json!({"host": ceph.tls_endpoint, "create_bucket_on_put": true});
    // The system's authorities do not know the test's: refused, and said so.
    let untrusted = open(merged(ceph.store_json(&bucket), tls.clone()));
    let e = untrusted.check().unwrap_err();
    assert_eq!(e.kind, ErrorKind::UNAVAILABLE, "{}", e.message);
    assert!(e.message.to_lowercase().contains("certificate"), "{}", e.message);
    let store = open(merged(ceph.store_json(&bucket), merged(tls, serde_json::json!({"cacert": ceph.ca}))));
    store.check().unwrap();
    let id = "6f1b2c3d-0000-4000-8000-000000000006";
    let bytes = data(6 << 20, 5);
    let mut w = store.add(id, Some(bytes.len() as u64)).unwrap();
    w.write(&bytes).unwrap();
    let location = w.finish().unwrap();
    assert_eq!(read_all(store.get(&location, 0, None).unwrap()), bytes);
    store.delete(&location).unwrap();
    assert_eq!(ceph.bucket_entries(&bucket), Vec::<String>::new());
}

#[test]
fn a_dead_or_hung_server_answers_503_naming_the_store_and_verify_reports_it() {
    // A hung server: it accepts connections and never answers.
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_port = hung.local_addr().unwrap().port();
    let secret = "dead-store-secret-4f9a";
    // With create_bucket_on_put, the upload first asks for the bucket: that request has its
    // time limit too.
    let dead = closed_port();
    for (name, port, create) in [("dead", dead.port, false), ("hung", hung_port, true)] {
        let d = Deployment::new();
        d.install("s3");
        d.config(&format!(
            "[store.s3]\nhost = \"http://127.0.0.1:{port}\"\naccess_key = \"AKDEAD\"\nsecret_key = \"{secret}\"\n\
             bucket = \"images\"\ntimeout = 2\ncreate_bucket_on_put = {create}\n"
        ));
        // The server starts anyway (the fs store is the default), and says what is wrong.
        let s = d.start();
        let started = Instant::now();
        let r = s.upload(&data(1 << 20, 4), &[("x-image-meta-store", "s3"), ("x-image-meta-name", name)]);
        let took = started.elapsed();
        assert_eq!(r.status, 503, "{name}: {}", seen(&r));
        let m = r.error_message();
        assert!(m.contains("store 's3'") && m.contains(&format!("127.0.0.1:{port}")), "{name}: {m}");
        assert!(!seen(&r).contains(secret) && !seen(&r).contains("AKDEAD"), "{name}: {}", seen(&r));
        // Bounded by the store's 2 s timeout, not a hang (the bound leaves room for a slow
        // machine; the point is that it ends).
        assert!(took < Duration::from_secs(30), "{name}: the upload took {took:?}");
        // Killed images are listed only with changes-since.
        let all = s.get("/v1/images/detail?is_public=none&changes-since=2000-01-01T00:00:00").json();
        let failed: Vec<&Value> = all["images"].as_array().unwrap().iter().filter(|i| i["name"] == name).collect();
        assert!(failed.len() == 1 && failed[0]["status"] == "killed", "{name}: {failed:?}");
        // The fs store is untouched by the s3 store's trouble.
        assert_eq!(s.upload(b"fine", &[]).status, 201);

        let config = d.root.path().join("tank.toml");
        let (_, out, _) = tank(&["plugins", "--config", config.to_str().unwrap(), "--json", "--verify"]);
        let list: Value = serde_json::from_str(&out).unwrap();
        let entry = list.as_array().unwrap().iter().find(|e| e["name"] == "s3").unwrap();
        assert_eq!(entry["status"], "check-failed", "{name}: {entry}");
        let reason = entry["reason"].as_str().unwrap();
        assert!(reason.contains(&format!("store 's3': HEAD of bucket images at 127.0.0.1:{port}")), "{name}: {reason}");
        assert!(!out.contains(secret), "{name}: {out}");

        let log = s.stop();
        assert!(log.contains("store 's3' opened, but its check failed"), "{name}: {log}");
        assert!(!log.contains(secret) && !log.contains("AKDEAD"), "{name}: {log}");
    }
    drop(hung);
}

#[test]
fn a_configuration_error_is_reported_naming_the_key() {
    let d = Deployment::new();
    d.install("s3");
    d.config(
        "[store.s3]\nhost = \"http://127.0.0.1:1\"\naccess_key = \"a\"\nsecret_key = \"b\"\nbucket = \"images\"\n\
         large_object_chunk_size = 1\n",
    );
    let config = d.root.path().join("tank.toml");
    let (_, out, _) = tank(&["plugins", "--config", config.to_str().unwrap(), "--json", "--verify"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    let entry = list.as_array().unwrap().iter().find(|e| e["name"] == "s3").unwrap();
    assert_eq!(entry["status"], "open-failed", "{entry}");
    assert!(entry["reason"].as_str().unwrap().contains("large_object_chunk_size: 1 MB"), "{entry}");
    // The server starts without the store and says why; uploads to it are refused.
    let s = d.start();
    assert!(s.log().contains("large_object_chunk_size"), "{}", s.log());
    assert_eq!(s.upload(b"x", &[("x-image-meta-store", "s3")]).status, 400);
}
