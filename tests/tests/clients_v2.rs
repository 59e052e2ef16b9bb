//! The Images API v2 with the real clients a user has: python-glanceclient, openstacksdk
//! and the `openstack` command line, installed pinned from PyPI (tests/src/python.rs), each
//! driving its scenario of tests/clients/v2_clients.py against a real `tank api`.

use std::process::Command;

use tank_tests::{python, repo, Deployment};

fn scenario(name: &str) {
    let deployment = Deployment::new();
    deployment.config("");
    run(name, &deployment, &[]);
}

fn run(name: &str, deployment: &Deployment, env: &[(&str, &str)]) {
    let python = python::clients();
    let server = deployment.start();
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(python)
        .arg(repo().join("tests/clients/v2_clients.py"))
        .args([&server.url(""), name, work.path().to_str().unwrap()])
        .envs(env.iter().copied())
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
fn glanceclient_and_openstacksdk_import_by_web_download_from_a_loopback_nginx_by_glance_direct_and_copy_image() {
    let nginx = tank_tests::nginx::Nginx::start("");
    let image = tank_tests::data(2_500_000, 5);
    std::fs::write(nginx.www().join("import.img"), &image).unwrap();
    let deployment = Deployment::new();
    deployment.install("http");
    deployment.config(&format!(
        "staging_store = \"staging\"\n[import_filtering_opts]\nallowed_hosts = [\"127.0.0.1\"]\n\
         allowed_ports = [{}]\n[store.http]\n[store.staging]\nplugin = \"fs\"\ndatadir = \"var/staging\"\n\
         [store.fast]\nplugin = \"fs\"\ndatadir = \"var/fast\"\n",
        nginx.port
    ));
    let (uri, md5) = (nginx.url("/import.img"), tank_tests::md5_hex(&image));
    run("import", &deployment, &[("TANK_IMPORT_URI", &uri), ("TANK_IMPORT_MD5", &md5)]);
    let staged = std::fs::read_dir(deployment.root.path().join("var/staging")).unwrap().count();
    assert_eq!(staged, 0, "every staged copy went once imported");
    let copies = std::fs::read_dir(deployment.root.path().join("var/fast")).unwrap().count();
    assert_eq!(copies, 0, "every copy went with its image");
}

#[test]
fn the_openstack_cli_creates_lists_shows_saves_sets_and_deletes() {
    scenario("openstack-cli");
}

/// The curl walk-through of docs/api-v2.md, run exactly as the page shows it.
#[test]
fn the_curl_walk_through_of_the_docs_runs_as_written() {
    let page = std::fs::read_to_string(repo().join("docs/api-v2.md")).unwrap();
    let block = page
        .split("<!-- walkthrough:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- walkthrough:end -->").next())
        .expect("docs/api-v2.md has the walk-through markers");
    let script = block.trim().trim_start_matches("```bash").trim_end_matches("```");
    let deployment = Deployment::new();
    deployment.config("");
    let server = deployment.start();
    let out = Command::new("bash").args(["-c", script]).env("TANK", server.url("")).output().expect("bash runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the walk-through failed:\n{stdout}\n{stderr}");
    for expected in [
        "queued",
        "active",
        "cirros-0.6",
        "['cirros-0.6']",
        "pending",
        "accepted",
        "['alice-image']",
        "deactivated",
        "walk-through done",
    ] {
        assert!(stdout.contains(expected), "{expected:?} missing from the walk-through's output:\n{stdout}");
    }
    assert!(deployment.data_files().is_empty(), "the walk-through deletes what it made");
}
