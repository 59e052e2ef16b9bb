//! The sheepdog store against the in-repo Sheepdog protocol test server
//! (`tank_tests::sheepdog`, which behaves as the reference describes a real sheep,
//! including the DEL_VDI that deletes nothing while objects are mapped): the sdk's
//! conformance suite with the server's whole state checked after every case, uploads
//! through `tank api` spanning many objects and holes, deletes and interrupted uploads
//! that leave no VDI and no object, a cluster that is down or silent (503 naming the store,
//! in bounded time, and `tank plugins --verify`), and hostile locations.

use std::{
    io::Write,
    net::{TcpListener, TcpStream},
    time::{Duration, Instant},
};

use bytes::Bytes;
use serde_json::Value;
use tank_plugin_sheepdog::SheepdogStore;
use tank_sdk::{image::ImageId, ErrorKind, OpenContext, Store};
use tank_tests::{
    closed_port, data, md5_hex,
    sheepdog::{self, TestServer},
    wait_until, Deployment,
};

const MIB: usize = 1 << 20;

fn conformance(chunk_size: u64) {
    let server = sheepdog::start();
    let tmp = tempfile::tempdir().unwrap();
    tank_sdk::conformance::store::run_with::<SheepdogStore>(
        server.store_json(chunk_size),
        tmp.path(),
        &["sheepdog"],
        || server.leftovers(),
    );
}

#[test]
fn passes_the_store_conformance_suite_with_4_mib_objects() {
    conformance(4);
}

#[test]
fn passes_the_store_conformance_suite_with_1_mib_objects() {
    conformance(1);
}

fn open(config: Value) -> SheepdogStore {
    let tmp = tempfile::tempdir().unwrap();
    SheepdogStore::open(&OpenContext { name: "sheepdog".into(), config, config_dir: tmp.path().to_path_buf() })
        .expect("the store opens")
}

fn read(store: &SheepdogStore, location: &str, offset: u64, length: Option<u64>) -> Vec<u8> {
    let mut r = store.get(location, offset, length).expect("get");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 300_000];
    loop {
        let n = r.read(&mut buf).expect("read");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn put(store: &SheepdogStore, id: &str, bytes: &[u8], declared: bool) -> String {
    let mut w = store.add(id, declared.then_some(bytes.len() as u64)).expect("add");
    for piece in bytes.chunks(MIB) {
        w.write(piece).expect("write");
    }
    w.finish().expect("finish")
}

/// An image of 1 MiB objects with holes: zeros, data, zeros, data that ends mid-object.
fn holey() -> Vec<u8> {
    let mut image = vec![0u8; 3 * MIB];
    image.extend(data(MIB + 17, 7));
    image.extend(vec![0u8; 2 * MIB - 17]);
    image.extend(data(100, 8));
    image
}

#[test]
fn zeros_stay_holes_and_read_back_as_zeros_whole_and_in_ranges() {
    let server = sheepdog::start();
    let store = open(server.store_json(1));
    let image = holey();
    let id = ImageId::random().to_string();
    let location = put(&store, &id, &image, false);
    assert_eq!(location, format!("sheepdog://127.0.0.1:{}/{id}", server.addr.port()));
    let vid = server.vdis()[0].vid;
    // Objects 3 and 4 hold the data (4 only its first 17 bytes), 6 the tail; 0-2 and 5
    // were all zeros and never written.
    assert_eq!(server.objects(), [(vid, 3), (vid, 4), (vid, 6)]);
    assert_eq!(store.size(&location).unwrap(), image.len() as u64);
    assert_eq!(server.vdis()[0].size, image.len() as u64, "the inode records the real size");
    assert!(read(&store, &location, 0, None) == image);
    for (offset, length) in
        [(0, 10), (3 * MIB as u64 - 5, 10), (5 * MIB as u64 - 3, MIB as u64 + 6), (6 * MIB as u64, 200)]
    {
        let want = &image[offset as usize..(offset + length).min(image.len() as u64) as usize];
        assert!(read(&store, &location, offset, Some(length)) == want, "range {offset}+{length}");
    }
    // An image written with 4 MiB objects reads back through a store now set to 1 MiB:
    // the object size comes from each inode.
    let other = open(server.store_json(4));
    let big = data(5 * MIB, 9);
    let big_location = put(&other, &ImageId::random().to_string(), &big, true);
    assert!(read(&store, &big_location, 0, None) == big);
    store.delete(&big_location).unwrap();
    store.delete(&location).unwrap();
    assert_eq!(server.leftovers(), Vec::<String>::new());
}

#[test]
fn a_host_name_is_resolved_and_every_address_tried() {
    // `localhost` may resolve to ::1 first, where nothing listens; 127.0.0.1 answers.
    let server = sheepdog::start();
    let mut config = server.store_json(4);
    config["address"] = "localhost".into();
    let store = open(config);
    store.check().expect("the sheep answers through its host name");
    let id = ImageId::random().to_string();
    let location = put(&store, &id, b"by name", true);
    assert_eq!(location, format!("sheepdog://localhost:{}/{id}", server.addr.port()));
    assert_eq!(read(&store, &location, 0, None), b"by name");
    store.delete(&location).unwrap();
    assert_eq!(server.leftovers(), Vec::<String>::new());
}

#[test]
fn hostile_and_foreign_locations_are_refused_without_reaching_the_cluster() {
    let server = sheepdog::start();
    let store = open(server.store_json(4));
    let port = server.addr.port();
    let before: u64 = (0..=0x18).map(|op| server.requests(op)).sum();
    for location in [
        format!("sheepdog://127.0.0.1:{port}/x;rm -rf /tmp/tank"),
        format!("sheepdog://127.0.0.1:{port}/$(touch /tmp/tank-pwned)"),
        format!("sheepdog://127.0.0.1:{port}/a`id`b"),
        format!("sheepdog://127.0.0.1:{port}/a b"),
        format!("sheepdog://127.0.0.1:{port}/../etc"),
        format!("sheepdog://127.0.0.1:{}/abc", port.wrapping_add(1)),
        "sheepdog://attacker.example:7000/abc".to_owned(),
        format!("sheepdog://127.0.0.1:{port}:abc"),
    ] {
        for (op, e) in [
            ("get", store.get(&location, 0, None).err()),
            ("size", store.size(&location).err()),
            ("delete", store.delete(&location).err()),
        ] {
            let e = e.unwrap_or_else(|| panic!("{op} of {location:?} succeeded"));
            assert_eq!(e.kind, ErrorKind::INVALID_INPUT, "{op} {location}: {}", e.message);
            assert!(e.message.starts_with("store 'sheepdog': refused a location: "), "{}", e.message);
        }
    }
    let e = store.add("x;reboot", None).err().expect("a hostile image id is refused");
    assert_eq!(e.kind, ErrorKind::INVALID_INPUT);
    let after: u64 = (0..=0x18).map(|op| server.requests(op)).sum();
    assert_eq!(before, after, "no request reached the cluster");
    assert!(!std::path::Path::new("/tmp/tank-pwned").exists());
}

#[test]
fn a_vdi_left_by_a_bare_del_vdi_is_deleted_properly_by_the_store() {
    // What the reference saw on a real cluster: a bare DEL_VDI answers SUCCESS and keeps
    // everything. The store's delete, after it, still removes all.
    let server = sheepdog::start();
    let store = open(server.store_json(1));
    let image = data(3 * MIB, 11);
    let id = ImageId::random().to_string();
    let location = put(&store, &id, &image, true);
    let mut raw = TcpStream::connect(server.addr).unwrap();
    let mut h = [0u8; 48];
    h[0] = 2;
    h[1] = 0x17;
    h[2] = 1;
    h[12..16].copy_from_slice(&512u32.to_le_bytes());
    let mut name = vec![0u8; 512];
    name[..id.len()].copy_from_slice(id.as_bytes());
    raw.write_all(&h).unwrap();
    raw.write_all(&name).unwrap();
    let mut r = [0u8; 48];
    std::io::Read::read_exact(&mut raw, &mut r).unwrap();
    assert_eq!(r[16], 0, "a bare DEL_VDI answers SUCCESS");
    assert_eq!(server.objects().len(), 3, "and deletes nothing");
    assert!(read(&store, &location, 0, None) == image, "the image is still readable");
    store.delete(&location).unwrap();
    assert_eq!(server.leftovers(), Vec::<String>::new());
}

#[test]
fn an_abort_with_an_object_in_flight_leaves_nothing() {
    // The writer sends an object and maps it once the next one is due: right after the
    // second 1 MiB, object 0 is mapped and object 1 is in flight, unanswered.
    let server = sheepdog::start();
    let store = open(server.store_json(1));
    for stop in ["abort", "drop"] {
        let mut w = store.add(&ImageId::random().to_string(), None).unwrap();
        w.write(&data(2 * MIB, 13)).unwrap();
        match stop {
            "abort" => w.abort().unwrap(),
            _ => drop(w),
        }
        assert_eq!(server.leftovers(), Vec::<String>::new(), "after the {stop}");
    }
}

#[test]
fn a_finish_that_fails_leaves_nothing_either() {
    let server = sheepdog::start();
    let store = open(server.store_json(1));
    let id = ImageId::random().to_string();
    let mut w = store.add(&id, None).unwrap();
    // Two whole objects: both are sent before finish, which maps the second (one
    // WRITE_OBJ of the inode), then records the size (another) and meets a full cluster.
    w.write(&data(2 * MIB, 12)).unwrap();
    server.fail(0x03, 1, sheepdog::result::NO_SPACE);
    let e = w.finish().expect_err("finish fails");
    assert_eq!(server.requests(0x01), 2, "both objects were written");
    assert_eq!(e.kind, ErrorKind::STORAGE_FULL, "{}", e.message);
    assert!(e.message.contains("store 'sheepdog'") && e.message.contains("NO_SPACE (0x15)"), "{}", e.message);
    assert_eq!(server.leftovers(), Vec::<String>::new());
    // And the id is free again.
    let location = put(&store, &id, b"again", true);
    assert_eq!(read(&store, &location, 0, None), b"again");
    store.delete(&location).unwrap();
}

/// A deployment with the sheepdog store pointed at `server`, with `extra` in its table.
fn deployment(server: &TestServer, extra: &str) -> Deployment {
    let d = Deployment::new();
    d.install("sheepdog");
    d.config(&format!("[store.sheepdog]\n{}", server.store_table(extra)));
    d
}

fn to_sheepdog(name: &str) -> [(&str, &str); 2] {
    [("x-image-meta-store", "sheepdog"), ("x-image-meta-name", name)]
}

#[test]
fn images_go_through_tank_into_vdis_and_deleting_leaves_no_vdi_and_no_object() {
    let server = sheepdog::start();
    let d = deployment(&server, "chunk_size = 1");
    let s = d.start();

    // 20 MiB and a bit, declared: 21 objects of 1 MiB.
    let big = data(20 * MIB + 123, 1);
    let r = s.upload(&big, &to_sheepdog("big"));
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.json()["image"]["checksum"], md5_hex(&big));
    let big_id = r.json()["image"]["id"].as_str().unwrap().to_owned();
    let vdi = server.vdis().into_iter().find(|v| v.name == big_id).expect("a VDI named by the image id");
    assert_eq!((vdi.size, vdi.mapped), (big.len() as u64, 21));

    // No declared size (chunked): the real size is recorded at the end.
    let unknown = data(2 * MIB + MIB / 2, 2);
    let r = s.upload_chunked(unknown.clone(), &to_sheepdog("unknown"));
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.json()["image"]["size"], unknown.len() as u64);
    let unknown_id = r.json()["image"]["id"].as_str().unwrap().to_owned();
    assert_eq!(server.vdis().into_iter().find(|v| v.name == unknown_id).unwrap().size, unknown.len() as u64);

    // Holes: only the objects holding data are written, and the download has the zeros.
    let image = holey();
    let r = s.upload(&image, &to_sheepdog("holey"));
    assert_eq!(r.status, 201, "{:?}", r.body);
    let holey_id = r.json()["image"]["id"].as_str().unwrap().to_owned();
    assert_eq!(server.vdis().into_iter().find(|v| v.name == holey_id).unwrap().mapped, 3);

    for (id, bytes) in [(&big_id, &big), (&unknown_id, &unknown), (&holey_id, &image)] {
        let got = s.get(&format!("/v1/images/{id}"));
        assert_eq!(got.status, 200);
        assert_eq!(got.body.len(), bytes.len());
        assert_eq!(md5_hex(&got.body), md5_hex(bytes), "image {id} reads back");
        let head = s.head(&format!("/v1/images/{id}"));
        assert!(!format!("{:?}", head.headers).contains("sheepdog://"), "no location is shown");
    }
    assert!(server.objects().len() >= 21 + 3 + 3);

    for id in [&big_id, &unknown_id, &holey_id] {
        let r = s.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new());
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    // A bare DEL_VDI would have left hidden VDIs and every object.
    assert_eq!(server.leftovers(), Vec::<String>::new());
    assert!(server.vdis().iter().all(|v| v.name.is_empty() && v.size == 0), "only tombstones: {:?}", server.vdis());
}

#[test]
fn an_upload_cut_off_midway_leaves_nothing_and_no_active_image() {
    let server = sheepdog::start();
    let d = deployment(&server, "chunk_size = 1");
    let s = d.start();
    for (n, size) in [None, Some(6 * MIB)].into_iter().enumerate() {
        let conn = s.start_raw_upload("sheepdog", size, 3 * MIB);
        // Objects reached the cluster: the store is mid-upload when the client goes away.
        wait_until(Duration::from_secs(60), "an object in the cluster", || !server.objects().is_empty());
        let writing = server.vdis().into_iter().find(|v| !v.name.is_empty()).expect("the VDI being written");
        assert_eq!(writing.size, 1 << 40, "marked as being written (the largest size of 1 MiB objects)");
        drop(conn);
        wait_until(Duration::from_secs(60), "the upload to be killed", || {
            s.all_statuses().iter().filter(|st| *st == "killed").count() == n + 1
        });
        assert_eq!(server.leftovers(), Vec::<String>::new(), "an aborted upload (size {size:?}) left data");
    }
    assert!(!s.all_statuses().iter().any(|st| st == "active"));
}

#[test]
fn cluster_result_codes_become_the_right_answers_and_leave_nothing() {
    let server = sheepdog::start();
    let d = deployment(&server, "chunk_size = 1");
    let s = d.start();
    // A halted cluster refuses the VDI: 503 naming the store and Sheepdog's code.
    server.fail(0x11, 0, sheepdog::result::HALT);
    let r = s.upload(&data(100, 1), &to_sheepdog("halted"));
    assert_eq!(r.status, 503, "{:?}", r.body);
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("store 'sheepdog'") && message.contains("HALT (0x19)"), "{message}");
    // A full cluster in the middle of an upload: 413, and the objects already written go.
    server.fail(0x01, 2, sheepdog::result::NO_SPACE);
    let r = s.upload(&data(3 * MIB, 2), &to_sheepdog("full"));
    assert_eq!(r.status, 413, "{:?}", r.body);
    assert_eq!(server.requests(0x01), 3, "two objects were written before the cluster was full");
    assert_eq!(s.all_statuses(), ["killed", "killed"]);
    assert_eq!(server.leftovers(), Vec::<String>::new());
    let r = s.upload(&data(3 * MIB, 3), &to_sheepdog("fine"));
    assert_eq!(r.status, 201, "the cluster serves again: {:?}", r.body);
}

/// Checks that with the sheepdog table `table`, `verify` reports the store's check failed
/// with `reason`, and an upload answers 503 naming the store within `bound`.
fn down(table: &str, reason: &str, bound: Duration) {
    let d = Deployment::new();
    d.install("sheepdog");
    d.config(&format!("[store.sheepdog]\n{table}"));
    let started = Instant::now();
    let (status, why) = d.verify("sheepdog");
    assert!(started.elapsed() < bound, "verify took {:?}", started.elapsed());
    assert_eq!(status, "check-failed", "{why}");
    assert!(why.contains("store 'sheepdog'") && why.contains(reason), "{why}");

    let s = d.start();
    assert!(s.log().contains("store 'sheepdog' opened, but its check failed"), "{}", s.log());
    let started = Instant::now();
    let r = s.upload(b"no cluster", &to_sheepdog("down"));
    assert!(started.elapsed() < bound, "answered after {:?}", started.elapsed());
    assert_eq!(r.status, 503, "{:?}", r.body);
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("store 'sheepdog'") && message.contains(reason), "{message}");
    assert_eq!(s.all_statuses(), ["killed"]);
    assert_eq!(s.upload(b"fs still works", &[]).status, 201, "the other store serves on");
}

#[test]
fn an_unreachable_cluster_answers_503_naming_the_store_at_once_and_shows_in_verify() {
    let closed_port = closed_port();
    let closed = closed_port.port;
    down(
        &format!("address = \"127.0.0.1\"\nport = {closed}\n"),
        &format!("connecting at sheepdog 127.0.0.1:{closed} failed"),
        Duration::from_secs(10),
    );
}

#[test]
fn a_silent_sheep_is_an_error_after_the_timeout_not_a_hang() {
    // Accepts connections and never answers: only the store's timeout ends the wait.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming().flatten() {
            held.push(c);
        }
    });
    down(
        &format!("address = \"127.0.0.1\"\nport = {port}\ntimeout = 2\n"),
        "no answer within the timeout",
        Duration::from_secs(20),
    );
}

#[test]
fn a_reachable_cluster_verifies() {
    let server = sheepdog::start();
    let d = deployment(&server, "");
    assert_eq!(d.verify("sheepdog"), ("ok".to_owned(), String::new()));
}
