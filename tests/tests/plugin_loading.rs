//! The plugin-loading failure suite: every way a plugin folder can be broken is reported by
//! name with its reason, and the host keeps serving with the plugins that work.

use std::{path::Path, time::Duration};

use bytes::Bytes;
use tank_tests::{data, md5_hex, pack, tank, wait_until, Deployment};

/// Edits the packed manifest in `folder` with `edit`.
fn edit_manifest(folder: &Path, edit: impl FnOnce(&mut toml::Table)) {
    let path = folder.join("tank-plugin.toml");
    let mut table: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    edit(&mut table);
    std::fs::write(&path, toml::to_string(&table).unwrap()).unwrap();
}

fn section<'a>(t: &'a mut toml::Table, name: &str) -> &'a mut toml::Table {
    t.get_mut(name).and_then(|v| v.as_table_mut()).unwrap()
}

/// A deployment holding fs and sled plus one broken plugin of each kind of failure.
fn broken_deployment() -> Deployment {
    let d = Deployment::new();
    let plugins = d.plugins();

    // A manifest whose library was never installed.
    let missing = pack("memstore", &plugins, "missing");
    edit_manifest(&missing, |t| {
        section(t, "plugin").insert("name".into(), "missing".into());
        section(t, "store").insert("schemes".into(), toml::Value::Array(vec!["missing".into()]));
        section(t, "store").insert("aliases".into(), toml::Value::Array(vec![]));
    });
    std::fs::remove_file(missing.join("libtank_example_memstore.so")).unwrap();

    // A shared library that is not a Tank plugin.
    pack("not-a-plugin", &plugins, "not-a-plugin");

    // A plugin for an ABI generation this host does not carry.
    let future = pack("memstore", &plugins, "future");
    edit_manifest(&future, |t| {
        section(t, "plugin").insert("name".into(), "future".into());
        section(t, "store").insert("schemes".into(), toml::Value::Array(vec!["future".into()]));
        section(t, "abi").insert("generation".into(), 2.into());
    });

    // A library changed after packing.
    let tampered = pack("memstore", &plugins, "tampered");
    edit_manifest(&tampered, |t| {
        section(t, "plugin").insert("name".into(), "tampered".into());
        section(t, "store").insert("schemes".into(), toml::Value::Array(vec!["tampered".into()]));
    });
    let lib = tampered.join("libtank_example_memstore.so");
    let mut bytes = std::fs::read(&lib).unwrap();
    bytes.push(0);
    std::fs::write(&lib, bytes).unwrap();

    // A store library whose manifest says it is a registry driver.
    let liar = pack("panicky", &plugins, "liar");
    edit_manifest(&liar, |t| {
        section(t, "plugin").insert("kind".into(), "registry".into());
        t.remove("store");
    });

    // A second plugin claiming the fs store's scheme.
    let twin = pack("memstore", &plugins, "twin");
    edit_manifest(&twin, |t| {
        section(t, "plugin").insert("name".into(), "twin".into());
        section(t, "store").insert("schemes".into(), toml::Value::Array(vec!["file".into()]));
    });

    // The working example, to prove loading continues after failures.
    d.install("memstore");
    d
}

fn entries(out: &str) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(out).expect("--json prints JSON").as_array().unwrap().clone()
}

fn status_of<'a>(list: &'a [serde_json::Value], name: &str) -> (&'a str, &'a str) {
    let e = list.iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("{name} is not listed: {list:?}"));
    (e["status"].as_str().unwrap(), e["reason"].as_str().unwrap_or(""))
}

#[test]
fn every_broken_plugin_is_reported_with_its_reason() {
    let d = broken_deployment();
    let dir = d.plugins();
    let (ok, out, err) = tank(&["plugins", "--plugin-dir", dir.to_str().unwrap(), "--json", "--verify"]);
    assert!(ok, "listing succeeds even with broken plugins: {err}");
    let list = entries(&out);
    for e in &list {
        for key in ["name", "kind", "version", "status", "path"] {
            assert!(e.get(key).is_some(), "{key} missing from {e}");
        }
    }
    let expect = [
        ("fs", "ok", ""),
        ("sled", "ok", ""),
        ("memstore", "ok", ""),
        ("missing", "missing-library", "cannot open library"),
        ("not-a-plugin", "not-a-plugin", "not a Tank plugin"),
        ("future", "abi-unsupported", "generation 2"),
        ("tampered", "hash-mismatch", "sha256"),
        ("panicky", "kind-mismatch", "store plugin"),
        ("twin", "duplicate", "scheme \"file\""),
    ];
    for (name, status, reason) in expect {
        let (s, r) = status_of(&list, name);
        assert_eq!(s, status, "{name}: {r}");
        assert!(r.contains(reason), "{name}: reason {r:?} should mention {reason:?}");
    }
    assert_eq!(list.len(), expect.len());

    // Without --verify nothing is loaded, so only the manifest-level failures show.
    let (_, out, _) = tank(&["plugins", "--plugin-dir", dir.to_str().unwrap(), "--json"]);
    let quick = entries(&out);
    assert_eq!(status_of(&quick, "future").0, "abi-unsupported");
    assert_eq!(status_of(&quick, "missing").0, "missing-library");
    assert_eq!(status_of(&quick, "tampered").0, "ok", "hashing is --verify's job");

    // The table names every plugin too.
    let (_, table, _) = tank(&["plugins", "--plugin-dir", dir.to_str().unwrap(), "--verify"]);
    for (name, status, _) in expect {
        assert!(table.lines().any(|l| l.starts_with(name) && l.contains(status)), "{name} {status} in\n{table}");
    }
}

#[test]
fn the_host_serves_with_broken_plugins_installed() {
    let d = broken_deployment();
    d.config("");
    let s = d.start();
    let bytes = data(100_000, 9);
    let r = s.upload(&bytes, &[("x-image-meta-name", "still works")]);
    assert_eq!(r.status, 201);
    let id = r.json()["image"]["id"].as_str().unwrap().to_owned();
    assert!(s.get(&format!("/v1/images/{id}")).body == bytes);
    let log = s.log();
    for name in ["missing", "not-a-plugin", "future", "tampered", "twin"] {
        assert!(
            log.contains(&format!("plugin={name}")) || log.contains(&format!("plugin '{name}'")),
            "{name} in {log}"
        );
    }
}

#[test]
fn a_panicking_store_fails_one_request_not_the_host() {
    let d = Deployment::new();
    d.install("panicky");
    d.config("[store.panicky]\npanic_in = \"add\"");
    let s = d.start();
    let r = s.upload(b"boom", &[("x-image-meta-store", "panicky")]);
    assert_eq!(r.status, 500);
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("plugin failed"), "{message}");
    // The log is read from the server's stderr by another thread: wait for the line.
    wait_until(Duration::from_secs(10), "the panic in the operator's log", || s.log().contains("panicked"));
    // The host is still up, and the other store still works.
    let ok = s.upload(b"fine", &[]);
    assert_eq!(ok.status, 201);
    assert_eq!(ok.json()["image"]["checksum"], md5_hex(b"fine"));
}

#[test]
fn a_store_that_panics_while_writing_leaves_a_killed_image() {
    let d = Deployment::new();
    d.install("panicky");
    d.config("[store.panicky]\npanic_in = \"write\"");
    let s = d.start();
    let r = s.upload(&data(3 << 20, 1), &[("x-image-meta-store", "panicky")]);
    assert_eq!(r.status, 500);
    let all = s.get("/v1/images/detail?changes-since=2000-01-01T00:00:00&is_public=none").json();
    let statuses: Vec<&str> = all["images"].as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["killed"]);
    assert_eq!(s.upload(b"fine", &[]).status, 201);
}

#[test]
fn a_store_that_panics_in_open_is_reported_and_skipped() {
    let d = Deployment::new();
    d.install("panicky");
    d.config("[store.panicky]\npanic_in = \"open\"");
    let s = d.start();
    assert!(s.log().contains("panicky"), "{}", s.log());
    let r = s.upload(b"x", &[("x-image-meta-store", "panicky")]);
    assert_eq!(r.status, 400, "a store that failed to open is not offered");
    assert_eq!(s.upload(b"x", &[]).status, 201);

    let (_, out, _) =
        tank(&["plugins", "--config", d.root.path().join("tank.toml").to_str().unwrap(), "--json", "--verify"]);
    let list = entries(&out);
    let (status, reason) = status_of(&list, "panicky");
    assert_eq!(status, "open-failed");
    assert!(reason.contains("panicked"), "{reason}");
}

#[test]
fn a_vendor_plugin_built_against_the_sdk_alone_serves_images() {
    let d = Deployment::new();
    d.install("memstore");
    d.config("default_store = \"memstore\"\n[store.memstore]");
    let s = d.start();
    let bytes = data(2_500_000, 11);
    let r = s.upload(&bytes, &[]);
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.json()["image"]["id"].as_str().unwrap().to_owned();
    assert!(s.get(&format!("/v1/images/{id}")).body == bytes);
    assert!(d.data_files().is_empty(), "the data went to memstore, not the fs store");
    assert_eq!(s.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new()).status, 200);
}

#[test]
fn the_server_refuses_to_start_without_its_default_store() {
    let d = Deployment::empty();
    d.install("sled");
    let config = d.config("");
    let (ok, _, err) = tank(&["api", "--config", config.to_str().unwrap()]);
    assert!(!ok);
    let last = err.lines().last().unwrap_or("");
    assert!(last.starts_with("tank: ") && last.contains("default_store 'filesystem'"), "{err}");
}
