//! The Images API v2 with the real clients a user has: python-glanceclient, openstacksdk
//! and the `openstack` command line, installed pinned from PyPI (tests/src/python.rs), each
//! driving its scenario of tests/clients/v2_clients.py against a real `tank api`.

use std::process::Command;

use tank_tests::{python, repo, Deployment};

fn scenario(name: &str) {
    let python = python::clients();
    let deployment = Deployment::new();
    deployment.config("");
    let server = deployment.start();
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(python)
        .arg(repo().join("tests/clients/v2_clients.py"))
        .args([&server.url(""), name, work.path().to_str().unwrap()])
        .output()
        .expect("the scenario runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "scenario {name} failed:\n{stdout}\n{stderr}\nserver log:\n{}", server.log());
    assert!(stdout.contains(&format!("ok: {name}")), "{stdout}");
    // Every scenario deletes the images it filled: no data may be left behind.
    let files = deployment.data_files();
    assert!(files.is_empty(), "data left after the scenario's deletes: {files:?}");
}

#[test]
fn python_glanceclient_creates_uploads_chunked_downloads_lists_patches_and_shares() {
    scenario("glanceclient");
}

#[test]
fn openstacksdk_discovers_uploads_sized_downloads_verified_and_pages() {
    scenario("openstacksdk");
}

#[test]
fn the_openstack_cli_creates_lists_shows_saves_sets_and_deletes() {
    scenario("openstack-cli");
}
