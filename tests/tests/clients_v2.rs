//! The Images API v2 with the real clients a user has: python-glanceclient, openstacksdk
//! and the `openstack` command line, installed pinned from PyPI (tests/src/python.rs), each
//! driving its scenario of tests/clients/v2_clients.py against a real `tank api`.

use std::process::Command;

use tank_tests::{python, repo, Deployment, WITH_TOKENS};

fn scenario(name: &str) {
    let deployment = Deployment::new();
    deployment.config(WITH_TOKENS);
    run(name, &deployment, &[]);
}

/// Runs scenario `name` against a server of `deployment`, whose configuration has
/// [`WITH_TOKENS`]: the tokens of alice, bob (members of their own projects) and ops (an
/// admin) are made here and passed on in `TANK_TOKENS`.
fn run(name: &str, deployment: &Deployment, env: &[(&str, &str)]) {
    let python = python::clients();
    let tokens = deployment.tokens(&[("alice", "alice", "member"), ("bob", "bob", "member"), ("ops", "ops", "admin")]);
    let server = deployment.start();
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(python)
        .arg(repo().join("tests/clients/v2_clients.py"))
        .args([&server.url(""), name, work.path().to_str().unwrap()])
        .env("TANK_TOKENS", tokens.to_string())
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
        "{WITH_TOKENS}staging_store = \"staging\"\n[import_filtering_opts]\nallowed_hosts = [\"127.0.0.1\"]\n\
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

/// The walk-through block of `page` (docs/...), run with bash and `env` exactly as the
/// page shows it; answers its standard output, after checking that `expected` is in it
/// and that it deleted what it made.
fn walk_through(page: &str, deployment: &Deployment, env: &[(&str, &str)], expected: &[&str]) -> String {
    let text = std::fs::read_to_string(repo().join(page)).unwrap();
    let block = text
        .split("<!-- walkthrough:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- walkthrough:end -->").next())
        .unwrap_or_else(|| panic!("{page} has the walk-through markers"));
    let script = block.trim().trim_start_matches("```bash").trim_end_matches("```");
    let server = deployment.start();
    let out = Command::new("bash")
        .args(["-c", script])
        .env("TANK", server.url(""))
        .envs(env.iter().copied())
        .output()
        .expect("bash runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the walk-through of {page} failed:\n{stdout}\n{stderr}\n{}", server.log());
    for expected in expected {
        assert!(stdout.contains(expected), "{expected:?} missing from {page}'s walk-through:\n{stdout}");
    }
    assert!(deployment.data_files().is_empty(), "the walk-through deletes what it made");
    stdout.into_owned()
}

/// The curl walk-through of docs/api-v2.md, on a Tank's embedded defaults.
#[test]
fn the_curl_walk_through_of_the_api_page_runs_as_written() {
    let deployment = Deployment::new();
    deployment.config("");
    let expected = ["queued", "active", "cirros-0.6", "['cirros-0.6']", "deactivated", "walk-through done"];
    walk_through("docs/api-v2.md", &deployment, &[], &expected);
}

/// The walk-through of docs/authentication.md: tokens made and revoked while the server
/// runs, and two projects sharing an image.
#[test]
fn the_tokens_walk_through_of_the_authentication_page_runs_as_written() {
    let deployment = Deployment::new();
    deployment.config(WITH_TOKENS);
    let admin = deployment.tokens(&[("ops", "ops", "admin")])["ops"].as_str().unwrap().to_owned();
    let tokens = deployment.root.path().join("tokens.toml");
    let bin = tank_tests::tank_bin().parent().unwrap().to_owned();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let env = [("TOKENS", tokens.to_str().unwrap()), ("ADMIN", admin.as_str()), ("PATH", path.as_str())];
    let expected = ["401401", "alice shared", "pending", "accepted", "['alice-image']", "walk-through done"];
    let out = walk_through("docs/authentication.md", &deployment, &env, &expected);
    let lines: Vec<&str> = out.lines().collect();
    let after = |marker: &str| lines.iter().skip_while(|l| !l.contains(marker)).nth(1).copied().unwrap_or_default();
    assert_eq!(after("['alice-image']").trim(), "404", "a member deleting: refused as not found\n{out}");
    assert!(lines.contains(&"401"), "the revoked token is refused:\n{out}");
    let file = std::fs::read_to_string(&tokens).unwrap();
    assert!(!file.contains("tank_") && file.contains("user = \"alice\""), "hashes only, alice kept:\n{file}");
}
