//! The chase store against a real OpenStack Swift (Debian's packages, tempauth, on
//! loopback; see `tank_tests::swift`): the sdk's conformance suite with whole objects and
//! with every image in segments, uploads through `tank api` that land in Swift as one
//! object or as segments plus a manifest and leave nothing once deleted or interrupted,
//! tokens that expire in the middle of an upload, and a Swift that cannot be reached,
//! which answers 503 naming the store at once and shows in `tank plugins --verify`.
//!
//! Every test uses containers of its own. The store's large-object threshold and segment
//! size are lowered to 1 MB, so a few MiB make a segmented image.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::Value;
use tank_plugin_chase::ChaseStore;
use tank_sdk::{image::ImageId, ErrorKind, OpenContext, Store};
use tank_tests::{closed_port, data, md5_hex, swift::swift, wait_until, ChannelBody, Deployment, Reply, Server};

const MIB: usize = 1 << 20;
const SCHEMES: &[&str] = &["swift", "chase"];
/// The store table's lines that make every image of 1 MiB or more segmented, in 1 MiB
/// segments.
const SMALL_SEGMENTS: &str = "large_object_size = 1\nlarge_object_chunk_size = 1";

fn conformance(prefix: &str, segment_mb: Option<u64>) {
    let sw = swift();
    let container = sw.container(prefix);
    let tmp = tempfile::tempdir().unwrap();
    tank_sdk::conformance::store::run_with::<ChaseStore>(
        sw.store_json(&container, segment_mb),
        tmp.path(),
        SCHEMES,
        || sw.holdings(&container),
    );
}

#[test]
fn passes_the_store_conformance_suite_with_whole_objects() {
    conformance("whole", None);
}

#[test]
fn passes_the_store_conformance_suite_with_images_of_1_mb_and_more_in_segments() {
    conformance("segmented", Some(1));
}

fn open(config: Value) -> ChaseStore {
    let tmp = tempfile::tempdir().unwrap();
    ChaseStore::open(&OpenContext { name: "chase".into(), config, config_dir: tmp.path().to_path_buf() })
        .expect("the store opens")
}

fn read_all(store: &ChaseStore, location: &str) -> Vec<u8> {
    let mut r = store.get(location, 0, None).expect("get");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = r.read(&mut buf).expect("read");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn tokens_that_expire_mid_upload_are_renewed_and_the_refused_request_sent_again() {
    let sw = swift();
    let container = sw.container("token");
    let store = open(sw.store_json(&container, Some(1)));

    // Segmented: the first segment is in Swift and the second under way when every token
    // becomes invalid; the next segments and the manifest meet a 401 first.
    let image = data(4 * MIB + 123, 21);
    let id = ImageId::random().to_string();
    let mut w = store.add(&id, Some(image.len() as u64)).unwrap();
    w.write(&image[..MIB + MIB / 2]).unwrap();
    sw.expire_tokens();
    for piece in image[MIB + MIB / 2..].chunks(MIB / 3) {
        w.write(piece).unwrap();
    }
    let location = w.finish().expect("the upload survives the expired token");
    assert_eq!(sw.list(&format!("{container}_segments")).len(), 5);
    // Swift's own log shows a segment refused and the same segment sent again.
    let log = sw.proxy_log();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&format!("PUT /v1/AUTH_tank/{container}_segments/{id}/")) && l.contains(" 401 "))
        .collect();
    assert!(!refused.is_empty(), "no segment PUT met an expired token:\n{log}");

    // One object: its PUT starts after the tokens expired.
    let small = data(300_000, 22);
    let small_id = ImageId::random().to_string();
    let mut w = store.add(&small_id, Some(small.len() as u64)).unwrap();
    sw.expire_tokens();
    for piece in small.chunks(65_536) {
        w.write(piece).unwrap();
    }
    let small_location = w.finish().unwrap();

    // Reads, sizes and deletes renew the token too.
    sw.expire_tokens();
    assert!(read_all(&store, &location) == image, "the segmented image reads back");
    sw.expire_tokens();
    assert_eq!(store.size(&small_location).unwrap(), small.len() as u64);
    assert!(read_all(&store, &small_location) == small);
    sw.expire_tokens();
    store.delete(&location).unwrap();
    store.delete(&small_location).unwrap();
    assert_eq!(sw.holdings(&container), Vec::<String>::new());
}

#[test]
fn a_wrong_key_is_refused_by_name_without_showing_it() {
    let sw = swift();
    let mut config = sw.store_json(&sw.container("badkey"), None);
    config["key"] = "not-the-Key-4711".into();
    let store = open(config);
    let e = store.check().unwrap_err();
    assert_eq!(e.kind, ErrorKind::PERMISSION_DENIED);
    assert!(e.message.contains("store 'chase': auth v1.0 at 127.0.0.1:"), "{}", e.message);
    assert!(e.message.contains("refused the configured user and key"), "{}", e.message);
    assert!(!e.message.contains("4711"), "{}", e.message);
    assert_eq!(
        store.add(&ImageId::random().to_string(), None).err().map(|e| e.kind),
        Some(ErrorKind::PERMISSION_DENIED)
    );
}

#[test]
fn a_missing_container_is_named_unless_the_store_may_create_it() {
    let sw = swift();
    let container = sw.container("absent");
    let mut config = sw.store_json(&container, None);
    config["create_container_on_put"] = false.into();
    let store = open(config);
    let e = store.check().unwrap_err();
    assert!(e.message.contains(&format!("container {container} does not exist")), "{}", e.message);
    assert!(e.message.contains("create_container_on_put"), "{}", e.message);
    assert!(store.add(&ImageId::random().to_string(), None).is_err());
    assert!(open(sw.store_json(&container, None)).check().is_ok(), "it is fine when the store may create it");
    assert!(sw.list(&container).is_empty());
}

/// A deployment whose chase store writes to `container` in the test Swift, with `extra`
/// lines in its table.
fn deployment(container: &str, extra: &str) -> Deployment {
    let d = Deployment::new();
    d.install("chase");
    d.config(&format!("[store.chase]\n{}", swift().store_table(container, extra)));
    d
}

/// Fails if `reply` shows a location, the Swift key or a Swift token.
fn shows_no_secret(reply: &Reply) {
    let sw = swift();
    let mut text = String::from_utf8_lossy(&reply.body).into_owned();
    for (name, value) in &reply.headers {
        text.push_str(&format!("\n{name}: {}", value.to_str().unwrap_or_default()));
    }
    for secret in ["swift://", "chase://", sw.key.as_str(), "AUTH_tk", "_segments"] {
        assert!(!text.contains(secret), "a reply shows {secret:?}: {text}");
    }
}

fn log_shows_no_secret(s: &Server) {
    let log = s.log();
    for secret in [swift().key.as_str(), "AUTH_tk"] {
        assert!(!log.contains(secret), "the server log shows {secret:?}:\n{log}");
    }
}

fn to_chase(name: &str) -> [(&str, &str); 2] {
    [("x-image-meta-store", "chase"), ("x-image-meta-name", name)]
}

fn segments_of(container: &str, id: &str) -> usize {
    swift().list(&format!("{container}_segments")).iter().filter(|n| n.starts_with(&format!("{id}/"))).count()
}

#[test]
fn images_go_through_tank_into_swift_whole_or_in_segments_and_deleting_leaves_nothing() {
    let sw = swift();
    let container = sw.container("e2e");
    let d = deployment(&container, SMALL_SEGMENTS);
    let s = d.start();

    let small = data(300_000, 1);
    let r = s.upload(&small, &to_chase("small"));
    assert_eq!(r.status, 201, "{:?}", r.body);
    shows_no_secret(&r);
    assert_eq!(r.json()["image"]["checksum"], md5_hex(&small));
    let small_id = r.json()["image"]["id"].as_str().unwrap().to_owned();
    assert_eq!(sw.list(&container), std::slice::from_ref(&small_id), "one object, named by the image id");

    // A declared size over the threshold: 3.5 MiB in four 1 MiB segments plus a manifest.
    let big = data(3 * MIB + MIB / 2, 2);
    let r = s.upload(&big, &to_chase("big"));
    assert_eq!(r.status, 201, "{:?}", r.body);
    shows_no_secret(&r);
    let big_id = r.json()["image"]["id"].as_str().unwrap().to_owned();
    assert_eq!(segments_of(&container, &big_id), 4);

    // No declared size (a chunked body): 2.5 MiB, segmented once it passes 1 MiB.
    let unknown = data(2 * MIB + MIB / 2, 3);
    let r = s.upload_chunked(unknown.clone(), &to_chase("unknown"));
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.json()["image"]["size"], unknown.len() as u64);
    assert_eq!(r.json()["image"]["checksum"], md5_hex(&unknown));
    let unknown_id = r.json()["image"]["id"].as_str().unwrap().to_owned();
    assert_eq!(segments_of(&container, &unknown_id), 3);

    for (id, bytes) in [(&small_id, &small), (&big_id, &big), (&unknown_id, &unknown)] {
        let got = s.get(&format!("/v1/images/{id}"));
        assert_eq!(got.status, 200);
        shows_no_secret(&got);
        assert_eq!(got.body.len(), bytes.len());
        assert_eq!(md5_hex(&got.body), md5_hex(bytes), "image {id} reads back");
    }
    let list = s.get("/v1/images/detail?is_public=none");
    shows_no_secret(&list);

    for id in [&small_id, &big_id, &unknown_id] {
        let r = s.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new());
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    assert_eq!(sw.holdings(&container), Vec::<String>::new(), "no object and no segment is left");
    log_shows_no_secret(&s);
}

#[test]
fn an_upload_cut_off_midway_leaves_no_segment_behind() {
    let sw = swift();
    let container = sw.container("cut");
    let d = deployment(&container, SMALL_SEGMENTS);
    let s = d.start();
    for (n, size) in [None, Some(6 * MIB)].into_iter().enumerate() {
        let conn = s.start_raw_upload("chase", size, 3 * MIB);
        // Segments reached Swift: the store is mid-upload when the client goes away.
        wait_until(Duration::from_secs(60), "a segment in Swift", || {
            !sw.list(&format!("{container}_segments")).is_empty()
        });
        drop(conn);
        wait_until(Duration::from_secs(60), "the upload to be killed", || {
            s.all_statuses().iter().filter(|st| *st == "killed").count() == n + 1
        });
        assert_eq!(sw.holdings(&container), Vec::<String>::new(), "an aborted upload (size {size:?}) left data");
    }
    log_shows_no_secret(&s);
}

#[test]
fn a_token_that_expires_during_an_upload_through_tank_is_renewed_and_never_shown() {
    let sw = swift();
    let container = sw.container("renew");
    let d = deployment(&container, SMALL_SEGMENTS);
    let s = d.start();
    let image = data(4 * MIB, 5);
    let (tx, body) = ChannelBody::new(4);
    let request = http::Request::post(s.url("/v1/images"))
        .header("content-type", "application/octet-stream")
        .header("x-image-meta-store", "chase")
        .header("x-image-meta-name", "renewed")
        .body(body)
        .unwrap();
    let (first, rest) = image.split_at(2 * MIB);
    // The request runs on the client's runtime between the two halves of the body.
    let client = Client::builder(TokioExecutor::new()).build_http::<ChannelBody>();
    let runtime = s.block_on(async { tokio::runtime::Handle::current() });
    let response = runtime.spawn(client.request(request));
    s.block_on(async {
        for piece in first.chunks(64 << 10) {
            tx.send(Bytes::copy_from_slice(piece)).await.unwrap();
        }
    });
    wait_until(Duration::from_secs(60), "a segment in Swift", || !sw.list(&format!("{container}_segments")).is_empty());
    sw.expire_tokens();
    let status = s.block_on(async {
        for piece in rest.chunks(64 << 10) {
            tx.send(Bytes::copy_from_slice(piece)).await.unwrap();
        }
        drop(tx);
        response.await.unwrap().expect("the upload is answered").status()
    });
    assert_eq!(status, 201);
    let log = s.log();
    assert!(log.contains("Swift refused the token (401); authenticating again"), "{log}");
    log_shows_no_secret(&s);
    let all = s.get("/v1/images/detail?is_public=none").json();
    let id = all["images"][0]["id"].as_str().unwrap().to_owned();
    let got = s.get(&format!("/v1/images/{id}"));
    assert_eq!(md5_hex(&got.body), md5_hex(&image));
}

#[test]
fn an_unreachable_swift_answers_503_naming_the_store_at_once_and_shows_in_verify() {
    let closed_port = closed_port();
    let closed = closed_port.port;
    let d = Deployment::new();
    d.install("chase");
    d.config(&format!(
        "[store.chase]\nauth_address = \"http://127.0.0.1:{closed}/auth/v1.0\"\nuser = \"tank:uploader\"\nkey = {:?}\n",
        swift().key
    ));
    let (status, reason) = d.verify("chase");
    // The store opens (its requests answer 503 while Swift is down) and its check fails.
    assert_eq!(status, "check-failed");
    assert!(reason.contains("store 'chase'"), "{reason}");
    assert!(reason.contains(&format!("auth v1.0 at 127.0.0.1:{closed} failed")), "{reason}");

    let s = d.start();
    assert!(s.log().contains("store 'chase' opened, but its check failed"), "the start-up log says so:\n{}", s.log());
    let started = Instant::now();
    let r = s.upload(b"no swift", &to_chase("down"));
    // A hang would last the store's 30 s timeout; a refused connection is at once.
    assert!(started.elapsed() < Duration::from_secs(10), "answered after {:?}", started.elapsed());
    assert_eq!(r.status, 503, "{:?}", r.body);
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("store 'chase'"), "{message}");
    shows_no_secret(&r);
    assert_eq!(s.all_statuses(), ["killed"]);
    assert_eq!(s.upload(b"fs still works", &[]).status, 201, "the other store serves on");
    log_shows_no_secret(&s);

    // The same deployment with the real Swift verifies.
    let container = swift().container("verify");
    d.config(&format!("[store.chase]\n{}", swift().store_table(&container, "")));
    assert_eq!(d.verify("chase"), ("ok".to_owned(), String::new()));
}
