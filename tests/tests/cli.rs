//! The `tank` command line for people, end to end: the real binary's image and member
//! verbs against a real `tank api` on loopback, their `--json` output, exit codes,
//! progress on a terminal, completions, and `tank control` starting and stopping real
//! servers. The `tank-client` library checks what the commands did.

use std::{collections::BTreeSet, path::Path, time::Instant};

use serde_json::Value;
use tank_client::Api;
use tank_tests::{
    data, md5_file, md5_hex, process_alive, send_signal, tank_cmd, write_data_file, Deployment, Identity,
    IdentityProxy, Run, RunDir, Server, TankCommand, BRIEF_KEYS, IMAGE_KEYS,
};

/// The image and member verbs pointed at one server (`--url`), over one API version
/// (`--api`).
struct Cli {
    url: String,
    api: Api,
}

impl Cli {
    fn new(url: &str, api: Api) -> Cli {
        Cli { url: url.to_owned(), api }
    }

    fn at(s: &Server, api: Api) -> Cli {
        Cli::new(&s.url(""), api)
    }

    /// `tank image <args> --url <server> --api <version>`.
    fn image(&self, args: &[&str]) -> TankCommand {
        self.verb("image", args)
    }

    /// `tank member <args> --url <server> --api <version>`.
    fn member(&self, args: &[&str]) -> TankCommand {
        self.verb("member", args)
    }

    fn verb(&self, noun: &str, args: &[&str]) -> TankCommand {
        let mut all = vec![noun];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--url", &self.url, "--api", self.api.as_str()]);
        tank_cmd(&all)
    }

    /// The library, speaking the same version, to check what the commands did.
    fn client(&self) -> tank_client::Client {
        tank_client::Client::new(&self.url).unwrap().with_api(self.api)
    }
}

/// Runs the test `$name` once over each API version, as `$name_v1` and `$name_v2`.
macro_rules! both_apis {
    ($name:ident) => {
        mod $name {
            #[test]
            fn v1() {
                super::$name(tank_client::Api::V1)
            }
            #[test]
            fn v2() {
                super::$name(tank_client::Api::V2)
            }
        }
    };
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect()
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// Adds an image with `fields` and `data` (through --file) and returns its id.
fn add(cli: &Cli, dir: &Path, fields: &[&str], data: &[u8]) -> String {
    let file = dir.join(format!("upload-{}", md5_hex(data)));
    std::fs::write(&file, data).unwrap();
    let mut args = vec!["add"];
    args.extend_from_slice(fields);
    // v2 takes data only for an image whose formats are set.
    for format in ["disk_format=raw", "container_format=bare"] {
        let key = format.split('=').next().unwrap();
        if !fields.iter().any(|f| f.starts_with(key)) {
            args.push(format);
        }
    }
    args.extend_from_slice(&["--file", file.to_str().unwrap(), "--json"]);
    let run = cli.image(&args).run().expect(0);
    run.json()["image"]["id"].as_str().unwrap().to_owned()
}

/// The keys of an image in the command's JSON: the v1 API's, and what v2 tells besides
/// (null or empty over v1), the same over both.
const CLI_IMAGE_KEYS: &[&str] = &["visibility", "os_hash_algo", "os_hash_value", "tags", "stores"];

fn image_keys() -> BTreeSet<String> {
    IMAGE_KEYS.iter().chain(CLI_IMAGE_KEYS).map(|k| k.to_string()).collect()
}

both_apis!(add_show_index_details_update_download_delete);

fn add_show_index_details_update_download_delete(api: Api) {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let cli = Cli::at(&s, api);
    let url = cli.url.clone();
    let dir = d.root.path();
    let bytes = data(3 * 1024 * 1024 + 17, 11);
    let file = dir.join("cirros.img");
    std::fs::write(&file, &bytes).unwrap();

    // add, for people.
    let run = cli
        .image(&[
            "add",
            "name=cirros",
            "disk_format=qcow2",
            "container_format=bare",
            "is_public=true",
            "min_ram=256",
            "os_distro=cirros",
            "--file",
            file.to_str().unwrap(),
        ])
        .run()
        .expect(0);
    let id =
        run.stdout.lines().next().unwrap().strip_prefix("Added new image with ID: ").expect(&run.stdout).to_owned();
    assert!(run.stdout.contains("status active") && run.stdout.contains(&md5_hex(&bytes)), "{}", run.stdout);
    assert!(run.stderr.is_empty(), "no progress bar when stderr is not a terminal: {:?}", run.stderr);

    // What the server holds, through the library.
    let held = s.block_on(cli.client().get(&id)).unwrap();
    assert_eq!((held.status.as_str(), held.size, held.min_ram), ("active", bytes.len() as u64, 256));
    assert_eq!(held.checksum.as_deref(), Some(md5_hex(&bytes).as_str()));
    assert_eq!(held.properties["os_distro"], "cirros");
    assert!(held.is_public);

    // show: the block for people, and JSON.
    let run = cli.image(&["show", &id]).run().expect(0);
    for line in [
        format!("URI: {url}/{api}/images/{id}").as_str(),
        "Name: cirros",
        "Status: active",
        "Public: Yes",
        "Disk format: qcow2",
        "Minimum RAM required (MB): 256",
        "Property 'os_distro': cirros",
        &format!("Size: 3.00 MiB ({} bytes)", bytes.len()),
    ] {
        assert!(run.stdout.lines().any(|l| l == line), "show lacks {line:?}:\n{}", run.stdout);
    }
    let shown = cli.image(&["show", &id, "--json"]).run().expect(0).json();
    assert_eq!(keys(&shown), set(&["image"]));
    assert_eq!(keys(&shown["image"]), image_keys());
    assert_eq!(shown["image"]["checksum"], md5_hex(&bytes));
    // What only v2 tells: null or empty over v1, the keys the same.
    let told = &shown["image"];
    match api {
        Api::V1 => assert_eq!(
            (&told["visibility"], &told["os_hash_value"], &told["stores"]),
            (&Value::Null, &Value::Null, &serde_json::json!([]))
        ),
        Api::V2 => {
            assert_eq!(
                (&told["visibility"], &told["os_hash_algo"]),
                (&serde_json::json!("public"), &serde_json::json!("sha512"))
            );
            assert_eq!(told["os_hash_value"].as_str().map(str::len), Some(128));
            assert_eq!(told["stores"], serde_json::json!(["fs"]));
        }
    }
    // Without --api (nor TANK_API), the command speaks v2.
    let run = tank_cmd(&["image", "show", &id, "--url", &url]).run().expect(0);
    assert!(run.stdout.starts_with(&format!("URI: {url}/v2/images/{id}\n")), "{}", run.stdout);

    // index and details.
    let other = add(&cli, dir, &["name=other", "disk_format=raw", "container_format=bare"], b"other data");
    let run = cli.image(&["index"]).run().expect(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two images:\n{}", run.stdout);
    assert!(lines[0].starts_with("ID") && lines[0].contains("NAME") && lines[0].ends_with("SIZE"), "{}", lines[0]);
    let row = lines.iter().find(|l| l.starts_with(&id)).expect("cirros is listed");
    assert!(
        row.contains("cirros") && row.contains("qcow2") && row.contains("bare") && row.ends_with("3.00 MiB"),
        "{row}"
    );
    assert!(lines.iter().any(|l| l.starts_with(&other) && l.ends_with("10 B")), "{}", run.stdout);
    let listed = cli.image(&["index", "--json"]).run().expect(0).json();
    assert_eq!(keys(&listed), set(&["images"]));
    assert_eq!(listed["images"].as_array().unwrap().len(), 2);
    for entry in listed["images"].as_array().unwrap() {
        assert_eq!(keys(entry), set(BRIEF_KEYS));
    }
    let run = cli.image(&["details"]).run().expect(0);
    assert_eq!(run.stdout.matches("URI: ").count(), 2, "{}", run.stdout);
    assert!(run.stdout.contains("Name: other") && run.stdout.contains("Name: cirros"), "{}", run.stdout);
    let detailed = cli.image(&["details", "--json"]).run().expect(0).json();
    for entry in detailed["images"].as_array().unwrap() {
        assert_eq!(keys(entry), image_keys());
    }

    // update keeps the properties it does not name, unless --purge-props.
    let run = cli.image(&["update", &id, "name=cirros-0.6", "os_version=0.6"]).run().expect(0);
    assert!(run.stdout.starts_with(&format!("Updated image {id}")), "{}", run.stdout);
    let held = s.block_on(cli.client().get(&id)).unwrap();
    assert_eq!(held.name.as_deref(), Some("cirros-0.6"));
    assert_eq!((held.properties["os_distro"].as_str(), held.properties["os_version"].as_str()), ("cirros", "0.6"));
    let updated = cli.image(&["update", &id, "--purge-props", "arch=x86_64", "--json"]).run().expect(0).json();
    assert_eq!(keys(&updated["image"]), image_keys());
    assert_eq!(updated["image"]["properties"], serde_json::json!({"arch": "x86_64"}));

    // download into a file, and to standard output.
    let copy = dir.join("copy.img");
    let run = cli.image(&["download", &id, "--file", copy.to_str().unwrap()]).run().expect(0);
    assert!(run.stdout.contains(&format!("checksum {} verified", md5_hex(&bytes))), "{}", run.stdout);
    assert!(std::fs::read(&copy).unwrap() == bytes, "the downloaded file differs from the upload");
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".part-"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file stays behind: {leftovers:?}");
    let out = std::process::Command::new(tank_tests::tank_bin())
        .args(["image", "download", &id, "--url", &url, "--api", api.as_str()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout == bytes, "the data on standard output differs from the upload");
    // A reader that stops early (`| head`) ends the command quietly, as it ends `cat`.
    // (3 MiB is more than a pipe holds, so the command does write to a closed pipe.)
    let line = format!(
        "'{}' image download {id} --url {url} --api {api} | head -c 10 > /dev/null",
        tank_tests::tank_bin().display()
    );
    let out = std::process::Command::new("sh").args(["-c", &line]).output().unwrap();
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let saved = cli.image(&["download", &other, "--file", dir.join("o").to_str().unwrap(), "--json"]).run().expect(0);
    assert_eq!(keys(&saved.json()), set(&["image", "file"]));
    assert_eq!(std::fs::read(dir.join("o")).unwrap(), b"other data");

    // delete.
    let run = cli.image(&["delete", &id]).run().expect(0);
    assert_eq!(run.stdout.trim(), format!("Deleted image {id}"));
    let gone = s.block_on(cli.client().get(&id)).unwrap_err();
    assert_eq!(gone.kind(), tank_client::ErrorKind::NotFound);
    let deleted = cli.image(&["delete", &other, "--json"]).run().expect(0).json();
    assert_eq!(deleted, serde_json::json!({"deleted": [other]}));
    assert_eq!(cli.image(&["index"]).run().expect(0).stdout.trim(), "No images found");
    assert!(d.data_files().is_empty(), "{:?}", d.data_files());
}

both_apis!(add_reads_standard_input_reserves_without_data_and_update_uploads_later);

fn add_reads_standard_input_reserves_without_data_and_update_uploads_later(api: Api) {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let cli = Cli::at(&s, api);
    let fields = ["add", "disk_format=raw", "container_format=bare", "--json"];

    // `< file`: standard input is a file, sent with its length.
    let bytes = data(200_000, 21);
    let file = d.root.path().join("in.img");
    std::fs::write(&file, &bytes).unwrap();
    let mut args = fields.to_vec();
    args.push("name=from-file");
    let added = cli.image(&args).stdin_file(&file).run().expect(0).json();
    assert_eq!(added["image"]["size"], bytes.len() as u64);
    assert_eq!(added["image"]["checksum"], md5_hex(&bytes));

    // `cat file |`: a pipe, sent chunked.
    let piped = data(1_500_000, 22);
    let mut args = fields.to_vec();
    args.push("name=from-pipe");
    let added = cli.image(&args).stdin_bytes(piped.clone()).run().expect(0).json();
    assert_eq!(added["image"]["status"], "active");
    assert_eq!(added["image"]["size"], piped.len() as u64);
    assert_eq!(added["image"]["checksum"], md5_hex(&piped));

    // An empty pipe is an image of 0 bytes, not a reservation.
    let mut args = fields.to_vec();
    args.push("name=empty");
    let added = cli.image(&args).stdin_bytes(Vec::new()).run().expect(0).json();
    assert_eq!((added["image"]["status"].as_str(), added["image"]["size"].as_u64()), (Some("active"), Some(0)));

    // Standard input at /dev/null: no data, the image is reserved.
    let run = cli.image(&["add", "name=later", "disk_format=raw", "container_format=bare"]).run().expect(0);
    assert!(run.stdout.contains("status queued") && run.stdout.contains("tank image update"), "{}", run.stdout);
    let id = run.stdout.lines().next().unwrap().rsplit(' ').next().unwrap().to_owned();
    assert_eq!(s.block_on(cli.client().get(&id)).unwrap().status, "queued");

    // `update --file` uploads the data of the queued image; `--file -` reads stdin.
    let later = data(300_000, 23);
    let updated = cli.image(&["update", &id, "--file", "-", "--json"]).stdin_bytes(later.clone()).run().expect(0);
    assert_eq!(updated.json()["image"]["status"], "active");
    assert_eq!(updated.json()["image"]["checksum"], md5_hex(&later));
    // ... and only once: the image is active now.
    let run = cli.image(&["update", &id, "--file", file.to_str().unwrap()]).run().expect(4);
    assert!(run.stderr.starts_with(&format!("tank: cannot update image {id}: ")), "{}", run.stderr);
    assert!(run.stderr.contains("queued") && run.stderr.contains("(HTTP 409)"), "{}", run.stderr);
    // With a metadata change too, nothing changes; nor with a malformed declaration.
    let run = cli.image(&["update", &id, "name=renamed", "--file", file.to_str().unwrap()]).run().expect(4);
    assert!(run.stderr.contains("queued"), "{}", run.stderr);
    let queued = cli.image(&["add", "name=queued", "disk_format=raw", "container_format=bare", "--json"]).run();
    let queued = queued.expect(0).json()["image"]["id"].as_str().unwrap().to_owned();
    let run = cli.image(&["update", &queued, "name=renamed", "checksum=zz", "--file", file.to_str().unwrap()]).run();
    let run = run.expect(2);
    assert!(run.stderr.contains("checksum"), "{}", run.stderr);
    for id in [&id, &queued] {
        assert_ne!(s.block_on(cli.client().get(id)).unwrap().name.as_deref(), Some("renamed"));
    }

    // A declared size or checksum that the data does not have: refused, nothing kept.
    let files = d.data_files().len();
    let path = file.to_str().unwrap();
    let wrong_sum = format!("checksum={}", md5_hex(b"other data"));
    for (declared, words) in [(wrong_sum.as_str(), "checksum"), ("size=1000", "size")] {
        let run = cli
            .image(&["add", "name=declared", "disk_format=raw", "container_format=bare", declared, "--file", path])
            .run();
        let run = run.expect(2);
        assert!(run.stderr.contains(words) && run.stderr.contains("(HTTP 400)"), "{declared}: {}", run.stderr);
    }
    assert_eq!(d.data_files().len(), files, "no data was kept");
    let right = format!("checksum={}", md5_hex(&bytes));
    let size = format!("size={}", bytes.len());
    let mut args = fields.to_vec();
    args.extend_from_slice(&["name=declared", &right, &size, "--file", path]);
    assert_eq!(cli.image(&args).run().expect(0).json()["image"]["status"], "active");
}

both_apis!(exit_codes_tell_not_found_bad_input_refused_and_server_failures_apart);

fn exit_codes_tell_not_found_bad_input_refused_and_server_failures_apart(api: Api) {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let cli = Cli::at(&s, api);
    let url = cli.url.clone();
    let missing = "9a0b7b4e-1e5c-4d52-8d3a-000000000000";
    let one_line = |run: &Run| {
        assert_eq!(run.stderr.lines().count(), 1, "one line: {:?}", run.stderr);
        assert!(run.stderr.starts_with("tank: "), "{:?}", run.stderr);
        assert!(run.stdout.is_empty(), "nothing on stdout: {:?}", run.stdout);
    };

    // 3: not found.
    for args in [vec!["show", missing], vec!["delete", missing], vec!["update", missing, "name=x"]] {
        let run = cli.image(&args).run().expect(3);
        one_line(&run);
        assert!(run.stderr.contains(missing) && run.stderr.contains("tank image index"), "{}", run.stderr);
    }
    let run = cli.image(&["download", missing, "--file", d.root.path().join("x").to_str().unwrap()]).run().expect(3);
    one_line(&run);
    assert!(!d.root.path().join("x").exists(), "no file for a failed download");
    one_line(&cli.member(&["list", missing]).run().expect(3));

    // 2: bad input, found by the server or by the command itself, and usage errors.
    let run = cli.image(&["add", "disk_format=floppy"]).run().expect(2);
    one_line(&run);
    assert!(run.stderr.contains("floppy") && run.stderr.contains("(HTTP 400)"), "{}", run.stderr);
    let run = cli.image(&["add", "name"]).run().expect(2);
    one_line(&run);
    assert!(run.stderr.contains("\"name\" is not KEY=VALUE"), "{}", run.stderr);
    let run = cli.image(&["add", "--file", "/nonexistent/disk.img"]).run().expect(2);
    one_line(&run);
    assert!(run.stderr.contains("/nonexistent/disk.img") && run.stderr.contains("--file"), "{}", run.stderr);
    let run = cli.image(&["add", "--file", d.root.path().to_str().unwrap()]).run().expect(2);
    assert!(run.stderr.contains("it is a directory"), "{}", run.stderr);
    let run = cli.image(&["add", "copy_from=http://example.com/x", "--file", "/etc/hostname"]).run().expect(2);
    one_line(&run);
    one_line(&cli.image(&["index", "size_min=lots"]).run().expect(2));
    one_line(&cli.image(&["download", missing, "--json"]).run().expect(2));
    one_line(&tank_cmd(&["image", "show", "x", "--url", "ftp://x"]).run().expect(2));
    assert_eq!(tank_cmd(&["image", "frobnicate"]).run().code, 2, "clap's usage errors are 2 as well");
    assert_eq!(cli.image(&["index", "--sort-dir", "sideways"]).run().code, 2);
    let run = tank_cmd(&["image", "index", "--url", &url, "--api", "v3"]).run().expect(2);
    assert!(run.stderr.contains("v1, v2"), "clap's usage error lists the versions: {}", run.stderr);
    // What one version cannot do is bad input, saying to use the other, before any request.
    let (other, refused): (&str, Vec<Vec<&str>>) = match api {
        Api::V1 => ("v2", vec![vec!["member", "accept", missing, "me"], vec!["image", "add", "visibility=community"]]),
        Api::V2 => (
            "v1",
            vec![
                vec!["image", "add", "location=http://127.0.0.1:1/x"],
                vec!["image", "index", "min_ram=512"],
                vec!["image", "add", "name=x", "size=10"],
                vec!["member", "add", missing, "bob", "--can-share"],
            ],
        ),
    };
    for args in refused {
        let run = cli.verb(args[0], &args[1..]).run().expect(2);
        one_line(&run);
        assert!(run.stderr.contains(other) && !run.stderr.contains("HTTP"), "{args:?}: {}", run.stderr);
    }
    assert!(s
        .block_on(cli.client().list_detailed(&tank_client::ListQuery::new().filter("is_public", "none")))
        .unwrap()
        .is_empty());
    // Data the server refuses leaves no image behind, protected or not, and an unknown
    // store is found before anything is made.
    let hostname = "/etc/hostname";
    let wrong = format!("checksum={}", md5_hex(b"not the file"));
    for fields in [vec!["protected=true", wrong.as_str()], vec!["store=nowhere"]] {
        let mut args = vec!["add", "name=refused", "disk_format=raw", "container_format=bare", "--file", hostname];
        args.extend_from_slice(&fields);
        let run = cli.image(&args).run().expect(2);
        one_line(&run);
        assert!(run.stderr.contains("nowhere") || run.stderr.contains("checksum"), "{}", run.stderr);
    }
    let everything = tank_client::ListQuery::new().filter("is_public", "none");
    assert!(s.block_on(cli.client().list_detailed(&everything)).unwrap().is_empty(), "no image was left");

    // 4: refused: a conflict or a forbidden request.
    let id = add(&cli, d.root.path(), &["protected=true"], b"keep me");
    let run = cli.image(&["delete", &id]).run().expect(4);
    one_line(&run);
    assert!(run.stderr.contains("(HTTP 403)"), "{}", run.stderr);
    let run = cli.image(&["add", &format!("id={id}")]).run().expect(4);
    one_line(&run);
    assert!(run.stderr.contains("(HTTP 409)"), "{}", run.stderr);

    // 1: the server cannot be reached (a port that was free a moment ago).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let run = tank_cmd(&["image", "index", "--url", &format!("http://127.0.0.1:{port}")]).run().expect(1);
    one_line(&run);
    assert!(run.stderr.contains("cannot reach the server") && run.stderr.contains("--url"), "{}", run.stderr);
    // TANK_URL is read when --url is not given.
    let run = tank_cmd(&["image", "index"]).env("TANK_URL", format!("http://127.0.0.1:{port}/v1")).run().expect(1);
    assert!(run.stderr.contains(&format!("127.0.0.1:{port}")), "{}", run.stderr);
    let run = tank_cmd(&["image", "index", "--json"]).env("TANK_URL", &url).env("TANK_API", api.as_str()).run();
    assert_eq!(run.expect(0).json()["images"].as_array().unwrap().len(), 1);
}

both_apis!(index_filters_sorts_and_pages_past_the_servers_page_size);

fn index_filters_sorts_and_pages_past_the_servers_page_size(api: Api) {
    let d = Deployment::new();
    // Two images a page, so that listing everything takes several requests.
    d.config("limit_param_default = 2\napi_limit_max = 2");
    let s = d.start();
    let cli = Cli::at(&s, api);
    let dir = d.root.path();
    let mut ids = Vec::new();
    for (n, (format, distro)) in
        [("raw", "debian"), ("qcow2", "debian"), ("raw", "fedora"), ("qcow2", "arch"), ("raw", "arch")]
            .iter()
            .enumerate()
    {
        let name = format!("name=img{n}");
        let distro = format!("os_distro={distro}");
        let format = format!("disk_format={format}");
        ids.push(add(&cli, dir, &[&name, &format, "container_format=bare", &distro], &data(100 * (n + 1), n as u64)));
    }
    let listed = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["index", "--json"];
        all.extend_from_slice(args);
        let v = cli.image(&all).run().expect(0).json();
        v["images"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
    };
    let by_size: Vec<String> = ids.clone();
    assert_eq!(listed(&["--sort-key", "size", "--sort-dir", "asc"]), by_size, "all five, over three pages");
    let mut desc = by_size.clone();
    desc.reverse();
    assert_eq!(listed(&["--sort_key", "size"]), desc, "Glance's spelling, default direction desc");
    assert_eq!(listed(&["--sort-key", "size", "--sort-dir", "asc", "--limit", "3"]), by_size[..3]);
    assert_eq!(listed(&["--sort-key", "size", "--sort-dir", "asc", "--marker", &by_size[1]]), by_size[2..]);
    assert_eq!(
        listed(&["--sort-key", "size", "--sort-dir", "asc", "disk_format=raw"]),
        [ids[0].clone(), ids[2].clone(), ids[4].clone()]
    );
    assert_eq!(
        listed(&["--sort-key", "size", "--sort-dir", "asc", "os_distro=arch"]),
        [ids[3].clone(), ids[4].clone()]
    );
    assert_eq!(
        listed(&["--sort-key", "size", "--sort-dir", "asc", "property-os_distro=debian"]),
        [ids[0].clone(), ids[1].clone()]
    );
    assert_eq!(listed(&["size_min=250", "size_max=350"]), [ids[2].clone()]);
    assert_eq!(
        listed(&["--sort-key", "size", "--sort-dir", "asc", "os-distro=arch"]),
        [ids[3].clone(), ids[4].clone()]
    );
    assert_eq!(listed(&["changes-since=2000-01-01T00:00:00Z"]).len(), 5);
    assert_eq!(listed(&["changes_since=2999-01-01T00:00:00Z"]).len(), 0);
    assert_eq!(listed(&["is_public=true"]), Vec::<String>::new(), "none is public; is_public is passed on");
    let run = cli.image(&["details", "--limit", "1", "--sort-key", "name", "--sort-dir", "desc"]).run().expect(0);
    assert_eq!(run.stdout.matches("URI: ").count(), 1);
    assert!(run.stdout.contains("Name: img4"), "{}", run.stdout);
}

both_apis!(clear_asks_first_and_keeps_protected_images);

fn clear_asks_first_and_keeps_protected_images(api: Api) {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let cli = Cli::at(&s, api);
    let dir = d.root.path();
    let kept = add(&cli, dir, &["name=keep", "protected=true"], b"protected");
    for n in 0..3 {
        add(&cli, dir, &[&format!("name=doomed{n}")], &data(1000, n));
    }
    let count =
        || s.block_on(cli.client().list(&tank_client::ListQuery::new().filter("is_public", "none"))).unwrap().len();

    // No answer (end of input) or "n": nothing is deleted.
    let run = cli.image(&["clear"]).run().expect(2);
    assert!(run.stderr.contains("Delete all 3 images") && run.stderr.contains("1 protected"), "{}", run.stderr);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    cli.image(&["clear"]).stdin_bytes("n\n").run().expect(2);
    assert_eq!(count(), 4);

    // "y" goes on.
    let run = cli.image(&["clear"]).stdin_bytes("y\n").run().expect(0);
    assert!(run.stdout.contains("Deleted 3 images") && run.stdout.contains(&kept), "{}", run.stdout);
    assert_eq!(count(), 1);

    // --yes does not ask; JSON says what happened.
    add(&cli, dir, &["name=more"], b"more");
    let run = cli.image(&["clear", "--yes", "--json"]).run().expect(0);
    let v = run.json();
    assert_eq!(keys(&v), set(&["deleted", "protected", "failed"]));
    assert_eq!(v["deleted"].as_array().unwrap().len(), 1);
    assert_eq!(v["protected"], serde_json::json!([kept]));
    assert_eq!(v["failed"], serde_json::json!([]));
    assert_eq!(count(), 1);
}

#[test]
fn member_verbs_through_an_authenticating_proxy() {
    let d = Deployment::new();
    d.behind_proxy("");
    let s = d.start();
    let who = |token: &str, tenant: &str, roles: &str| Identity {
        token: token.into(),
        user: format!("user-{tenant}"),
        tenant: tenant.into(),
        roles: roles.into(),
    };
    let proxy = IdentityProxy::start(
        &s.addr,
        vec![
            who("alice-token", "alice", "member"),
            who("bob-token", "bob", "member"),
            who("admin-token", "ops", "admin"),
        ],
    );
    let cli = Cli::new(&proxy.url, Api::V1);
    let as_alice = |cmd: TankCommand| cmd.env("TANK_TOKEN", "alice-token");

    let id = as_alice(cli.image(&["add", "name=private", "--json"]).stdin_bytes("secret data")).run().expect(0).json()
        ["image"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Bob cannot see Alice's private image yet.
    cli.image(&["show", &id, "--token", "bob-token"]).run().expect(3);

    // add, list, images.
    let run = as_alice(cli.member(&["add", &id, "bob"])).run().expect(0);
    assert!(run.stdout.starts_with(&format!("Image {id} is shared with bob")), "{}", run.stdout);
    assert!(run.stdout.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["bob", "no"]), "{}", run.stdout);
    cli.image(&["show", &id, "--token", "bob-token"]).run().expect(0);
    let run = as_alice(cli.member(&["list", &id])).run().expect(0);
    assert!(run.stdout.starts_with("MEMBER") && run.stdout.contains("bob"), "{}", run.stdout);
    let listed = as_alice(cli.member(&["list", &id, "--json"])).run().expect(0).json();
    assert_eq!(listed, serde_json::json!({"image_id": id, "members": [{"member_id": "bob", "can_share": false}]}));
    let shared = cli.member(&["images", "bob", "--json", "--token", "bob-token"]).run().expect(0).json();
    assert_eq!(shared, serde_json::json!({"shared_images": [{"image_id": id, "can_share": false}]}));
    let run = cli.member(&["images", "bob", "--token", "bob-token"]).run().expect(0);
    assert!(run.stdout.starts_with("IMAGE") && run.stdout.contains(&id), "{}", run.stdout);

    // --can-share, then replace.
    let changed = as_alice(cli.member(&["add", &id, "bob", "--can-share", "--json"])).run().expect(0).json();
    assert_eq!(changed["members"], serde_json::json!([{"member_id": "bob", "can_share": true}]));
    let replaced = as_alice(cli.member(&["replace", &id, "carol", "dave", "--json"])).run().expect(0).json();
    assert_eq!(
        replaced["members"],
        serde_json::json!([{"member_id": "carol", "can_share": false}, {"member_id": "dave", "can_share": false}])
    );
    cli.image(&["show", &id, "--token", "bob-token"]).run().expect(3);

    // delete; deleting a non-member is "not found".
    let run = as_alice(cli.member(&["delete", &id, "carol"])).run().expect(0);
    assert!(run.stdout.contains("no longer shared with carol") && run.stdout.contains("dave"), "{}", run.stdout);
    as_alice(cli.member(&["delete", &id, "carol"])).run().expect(3);
    let members = s.block_on(cli.client().with_token("alice-token").unwrap().members(&id)).unwrap();
    assert_eq!(members.iter().map(|m| m.member_id.as_str()).collect::<Vec<_>>(), ["dave"]);

    // Bob, no longer a member, does not see the image at all (3); an unknown token is
    // refused (4, HTTP 401), and so is the no-token admin, who has no tenant to share as.
    cli.member(&["add", &id, "eve", "--token", "bob-token"]).run().expect(3);
    let run = cli.member(&["list", &id, "--token", "forged"]).run().expect(4);
    assert!(run.stderr.contains("(HTTP 401)") && run.stderr.contains("--token"), "{}", run.stderr);
    cli.member(&["add", &id, "eve"]).run().expect(4);
}

#[test]
fn v2_member_verbs_offer_accept_reject_and_replace() {
    let d = Deployment::new();
    d.behind_proxy("");
    let s = d.start();
    let who = |token: &str, tenant: &str| Identity {
        token: token.into(),
        user: format!("user-{tenant}"),
        tenant: tenant.into(),
        roles: "member".into(),
    };
    let proxy = IdentityProxy::start(&s.addr, vec![who("alice-token", "alice"), who("bob-token", "bob")]);
    let cli = Cli::new(&proxy.url, Api::V2);
    let alice = |args: &[&str]| cli.member(args).env("TANK_TOKEN", "alice-token");
    let bob = |args: &[&str]| cli.member(args).env("TANK_TOKEN", "bob-token");
    let bobs_list = || -> Vec<String> {
        let v = cli.image(&["index", "--json", "--token", "bob-token"]).run().expect(0).json();
        v["images"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
    };

    let added = cli.image(&["add", "name=offered", "disk_format=raw", "container_format=bare", "--json"]);
    let added = added.stdin_bytes("shared data").env("TANK_TOKEN", "alice-token");
    let image = added.run().expect(0).json()["image"].clone();
    let id = image["id"].as_str().unwrap().to_owned();
    assert_eq!(image["visibility"], "shared", "v2's default: an image that can have members");
    cli.image(&["show", &id, "--token", "bob-token"]).run().expect(3);

    // The offer is pending: Bob sees the image by id, not in his list.
    let run = alice(&["add", &id, "bob"]).run().expect(0);
    assert!(
        run.stdout.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["bob", "pending"]),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("STATUS"), "{}", run.stdout);
    alice(&["add", &id, "bob"]).run().expect(0);
    let listed = alice(&["list", &id, "--json"]).run().expect(0).json();
    assert_eq!(
        listed,
        serde_json::json!({"image_id": id, "members": [{"member_id": "bob", "can_share": false, "status": "pending"}]})
    );
    cli.image(&["show", &id, "--token", "bob-token"]).run().expect(0);
    assert!(!bobs_list().contains(&id), "a pending offer stays out of the member's list");
    let shared = bob(&["images", "bob", "--json"]).run().expect(0).json();
    assert_eq!(
        shared,
        serde_json::json!({"shared_images": [{"image_id": id, "can_share": false, "status": "pending"}]})
    );

    // Only the member answers; accepted, the image is in Bob's list; rejected, it leaves.
    let run = alice(&["accept", &id, "bob"]).run().expect(4);
    assert!(run.stderr.contains("(HTTP 403)"), "{}", run.stderr);
    let run = bob(&["accept", &id, "bob"]).run().expect(0);
    assert_eq!(run.stdout.trim(), format!("Image {id} is accepted by bob"));
    assert!(bobs_list().contains(&id));
    let answered = bob(&["reject", &id, "bob", "--json"]).run().expect(0).json();
    assert_eq!(answered["member"]["status"], "rejected");
    assert!(!bobs_list().contains(&id));

    // replace, then delete; a member cannot share further.
    let replaced = alice(&["replace", &id, "carol", "dave", "--json"]).run().expect(0).json();
    let members: Vec<&str> =
        replaced["members"].as_array().unwrap().iter().map(|m| m["member_id"].as_str().unwrap()).collect();
    assert_eq!(members, ["carol", "dave"]);
    cli.image(&["show", &id, "--token", "bob-token"]).run().expect(3);
    alice(&["delete", &id, "carol"]).run().expect(0);
    alice(&["delete", &id, "carol"]).run().expect(3);
    let left = s.block_on(cli.client().with_token("alice-token").unwrap().members(&id)).unwrap();
    assert_eq!(left.iter().map(|m| m.member_id.as_str()).collect::<Vec<_>>(), ["dave"]);
    let run = alice(&["add", &id, "erin", "--can-share"]).run().expect(2);
    assert!(run.stderr.contains("can_share"), "{}", run.stderr);
    // A public image has no members in v2: the server says so, and a replace that cannot
    // offer leaves the members as they were.
    cli.image(&["update", &id, "is_public=true", "--token", "alice-token"]).run().expect(0);
    let run = alice(&["add", &id, "erin"]).run().expect(4);
    assert!(run.stderr.contains("shared"), "{}", run.stderr);
    alice(&["replace", &id, "erin"]).run().expect(4);
    let left = s.block_on(cli.client().with_token("alice-token").unwrap().members(&id)).unwrap();
    assert_eq!(left.iter().map(|m| m.member_id.as_str()).collect::<Vec<_>>(), ["dave"]);
}

#[test]
fn one_gib_up_and_down_with_the_checksum_checked() {
    const GIB: u64 = 1 << 30;
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let cli = Cli::at(&s, Api::V2);
    let source = d.root.path().join("big.img");
    let md5 = write_data_file(&source, GIB, 7);

    let started = Instant::now();
    let added = cli
        .image(&[
            "add",
            "name=big",
            "disk_format=raw",
            "container_format=bare",
            "--file",
            source.to_str().unwrap(),
            "--json",
        ])
        .run()
        .expect(0)
        .json();
    let up = started.elapsed();
    assert_eq!(added["image"]["size"], GIB);
    assert_eq!(added["image"]["checksum"], md5.as_str());
    let id = added["image"]["id"].as_str().unwrap().to_owned();
    std::fs::remove_file(&source).unwrap();

    let copy = d.root.path().join("big.copy");
    let started = Instant::now();
    let saved = cli.image(&["download", &id, "--file", copy.to_str().unwrap(), "--json"]).run().expect(0).json();
    let down = started.elapsed();
    assert_eq!(saved["image"]["checksum"], md5.as_str());
    assert_eq!(std::fs::metadata(&copy).unwrap().len(), GIB);
    assert_eq!(md5_file(&copy), md5, "the downloaded file has the uploaded data");
    // Not a check (timings belong in benchmarks): the figures for the record.
    eprintln!("1 GiB through the tank command: upload {up:.1?}, download {down:.1?}");
}

#[test]
fn progress_bars_appear_on_a_terminal_only() {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let url = s.url("");
    let file = d.root.path().join("disk.img");
    std::fs::write(&file, data(8 * 1024 * 1024, 5)).unwrap();
    // `script` gives the command a terminal, as a person has; its transcript is what the
    // person saw.
    let line = format!(
        "{} image add name=tty disk_format=raw container_format=bare --file {} --url {url}",
        tank_tests::tank_bin().display(),
        file.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{seen}");
    assert!(seen.contains("uploading ["), "a bar:\n{seen:?}");
    assert!(seen.contains("/8.00 MiB") && seen.contains("B/s") && seen.contains("ETA"), "total, rate, ETA:\n{seen:?}");
    assert!(seen.contains("Added new image with ID: "), "{seen:?}");
}

#[test]
fn help_explains_every_verb_with_an_example_and_completions_generate() {
    for verbs in [
        &["image"][..],
        &["member"],
        &["control"],
        &["image", "add"],
        &["image", "update"],
        &["image", "delete"],
        &["image", "show"],
        &["image", "index"],
        &["image", "details"],
        &["image", "clear"],
        &["image", "download"],
        &["member", "list"],
        &["member", "images"],
        &["member", "add"],
        &["member", "delete"],
        &["member", "replace"],
        &["member", "accept"],
        &["member", "reject"],
        &["control", "start"],
        &["control", "stop"],
        &["control", "restart"],
        &["control", "reload"],
        &["control", "status"],
        &["token"],
        &["token", "new"],
        &["completions"],
    ] {
        let mut args = verbs.to_vec();
        args.push("--help");
        let run = tank_cmd(&args).run().expect(0);
        assert!(run.stdout.contains("Example"), "tank {} --help has no example:\n{}", verbs.join(" "), run.stdout);
    }
    let run = tank_cmd(&["--help"]).run().expect(0);
    assert!(run.stdout.contains("Exit codes") && run.stdout.contains("image") && run.stdout.contains("control"));

    for shell in ["bash", "zsh", "fish"] {
        let run = tank_cmd(&["completions", shell]).run().expect(0);
        for word in ["image", "member", "control", "download", "can-share", "sort-key"] {
            assert!(run.stdout.contains(word), "{shell} completions lack {word}");
        }
    }
    // The bash script is valid bash.
    let script = tank_cmd(&["completions", "bash"]).run().stdout;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tank.bash"), script).unwrap();
    let ok = std::process::Command::new("bash").arg("-n").arg(dir.path().join("tank.bash")).status().unwrap();
    assert!(ok.success(), "bash -n rejects the completion script");
    tank_cmd(&["completions", "tcsh"]).run().expect(2);
}

/// `tank control <args> --run-dir <run>`.
fn control(run: &RunDir, args: &[&str]) -> TankCommand {
    let mut all = vec!["control"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--run-dir", run.arg()]);
    tank_cmd(&all)
}

#[test]
fn control_starts_stops_restarts_reloads_and_reports_the_api_server() {
    let d = Deployment::new();
    let config = d.config("");
    let config = config.to_str().unwrap();
    let run = RunDir::new();

    let r = control(&run, &["status", "api"]).run().expect(3);
    assert!(
        r.stderr.contains("tank api is not running") && r.stderr.contains("tank control start api"),
        "{}",
        r.stderr
    );
    let r = control(&run, &["stop", "api"]).run().expect(3);
    assert!(r.stderr.contains("not running") && r.stderr.contains("nothing to stop"), "{}", r.stderr);
    control(&run, &["reload", "api"]).run().expect(3);

    // start, and the server answers.
    let started = control(&run, &["start", "api", "--config", config, "--json"]).run().expect(0).json();
    assert_eq!(keys(&started), set(&["server", "running", "pid", "pid_file", "log_file", "url", "note"]));
    assert_eq!((started["server"].as_str(), started["running"].as_bool()), (Some("api"), Some(true)));
    let pid = started["pid"].as_u64().unwrap() as u32;
    assert_eq!(run.pid("api"), Some(pid));
    assert!(process_alive(pid));
    let url = started["url"].as_str().unwrap().to_owned();
    let id = add(&Cli::new(&url, Api::V2), d.root.path(), &["name=survivor"], b"survives restarts");

    // start again: refused, and the server is untouched.
    let r = control(&run, &["start", "api", "--config", config]).run().expect(4);
    assert!(r.stderr.contains(&format!("already running (pid {pid}")), "{}", r.stderr);
    assert!(process_alive(pid));

    // status, for people and as JSON.
    let r = control(&run, &["status", "api"]).run().expect(0);
    assert_eq!(r.stdout.trim(), format!("tank api is running (pid {pid}), listening on {url}"));
    let status = control(&run, &["status", "api", "--json"]).run().expect(0).json();
    assert_eq!((status["pid"].as_u64(), status["url"].as_str()), (Some(pid as u64), Some(url.as_str())));

    // restart: a new process, with the configuration it had (no --config given).
    let r = control(&run, &["restart", "api"]).run().expect(0);
    assert!(
        r.stdout.contains(&format!("Stopping tank api (pid {pid})")) && r.stdout.contains("Started tank api"),
        "{}",
        r.stdout
    );
    let pid2 = run.pid("api").unwrap();
    assert!(pid2 != pid && !process_alive(pid) && process_alive(pid2));
    let url2 = control(&run, &["status", "api", "--json"]).run().expect(0).json()["url"].as_str().unwrap().to_owned();
    Cli::new(&url2, Api::V2).image(&["show", &id]).run().expect(0);

    // reload: says it restarts instead.
    let reloaded = control(&run, &["reload", "api", "--json"]).run().expect(0).json();
    assert!(reloaded["note"].as_str().unwrap().contains("does not reload its configuration on SIGHUP"), "{reloaded}");
    let pid3 = reloaded["pid"].as_u64().unwrap() as u32;
    assert!(pid3 != pid2 && !process_alive(pid2) && process_alive(pid3));

    // stop.
    let r = control(&run, &["stop", "api"]).run().expect(0);
    assert!(r.stdout.contains(&format!("Stopped tank api (pid {pid3})")), "{}", r.stdout);
    assert!(!process_alive(pid3));
    assert_eq!(run.pid("api"), None, "the pid file is removed");
    control(&run, &["stop", "api"]).run().expect(3);
    control(&run, &["status", "api"]).run().expect(3);
}

#[test]
fn control_cleans_stale_pid_files_and_reports_failed_starts() {
    let d = Deployment::new();
    let config = d.config("");
    let run = RunDir::new();
    let pid_file = run.dir.path().join("api.pid");

    // A pid that is gone.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(&pid_file, format!("{gone_pid}\n")).unwrap();
    let r = control(&run, &["status", "api"]).run().expect(3);
    assert!(r.stderr.contains("stale") && r.stderr.contains(&gone_pid.to_string()), "{}", r.stderr);
    // A pid that lives but is not tank api (this test): never signalled.
    std::fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
    let r = control(&run, &["stop", "api"]).run().expect(3);
    assert!(
        r.stderr.contains("which is not tank api") && r.stderr.contains("removed the stale pid file"),
        "{}",
        r.stderr
    );
    assert!(!pid_file.exists());
    // start replaces a stale pid file, saying so.
    std::fs::write(&pid_file, "garbage").unwrap();
    let r = control(&run, &["start", "api", "--config", config.to_str().unwrap()]).run().expect(0);
    assert!(r.stderr.contains("holds no pid") && r.stderr.contains("removing the stale pid file"), "{}", r.stderr);
    control(&run, &["stop", "api"]).run().expect(0);

    // A configuration the server refuses: the start fails with the log's last line.
    let bad = d.root.path().join("bad.toml");
    std::fs::write(&bad, "api_prot = 9292\n").unwrap();
    let r = control(&run, &["start", "api", "--config", bad.to_str().unwrap()]).run().expect(1);
    assert!(r.stderr.contains("stopped during its start") && r.stderr.contains("api_prot"), "{}", r.stderr);
    assert!(r.stderr.contains("api.log"), "{}", r.stderr);
    assert!(!pid_file.exists(), "no pid file for a server that did not start");

    // Bad input: a missing file, the registry without its file, an unusable run dir.
    control(&run, &["start", "api", "--config", "/nonexistent/tank.toml"]).run().expect(2);
    let r = control(&run, &["start", "registry"]).run().expect(2);
    assert!(r.stderr.contains("--config"), "{}", r.stderr);
    let r = tank_cmd(&["control", "start", "api", "--pid-file", "/proc/tank/api.pid"]).run().expect(2);
    assert!(r.stderr.contains("--run-dir"), "{}", r.stderr);
}

#[test]
fn control_kills_a_server_that_does_not_stop_on_sigterm() {
    let d = Deployment::new();
    let config = d.config("");
    let run = RunDir::new();
    control(&run, &["start", "api", "--config", config.to_str().unwrap()]).run().expect(0);
    let pid = run.pid("api").unwrap();
    // A stopped process cannot act on SIGTERM: it stands for a server that hangs.
    send_signal(pid, "STOP");
    let r = control(&run, &["stop", "api", "--timeout", "1"]).run().expect(0);
    assert!(r.stderr.contains("did not stop within 1 s of SIGTERM; sending SIGKILL"), "{}", r.stderr);
    assert!(r.stdout.contains("Stopped tank api"), "{}", r.stdout);
    assert!(!process_alive(pid));
}

#[test]
fn control_runs_the_registry_and_the_scrubber() {
    let d = Deployment::new();
    let registry_config = d.registry_config("");
    let config = d.config("delayed_delete = true\nwakeup_time = 3600");
    let run = RunDir::new();

    let started = control(&run, &["start", "registry", "--config", registry_config.to_str().unwrap(), "--json"])
        .run()
        .expect(0)
        .json();
    let url = started["url"].as_str().unwrap();
    let addr = url.trim_start_matches("http://");
    std::net::TcpStream::connect(addr).expect("the registry listens where control says");
    control(&run, &["status", "registry"]).run().expect(0);
    control(&run, &["stop", "registry"]).run().expect(0);
    assert!(std::net::TcpStream::connect(addr).is_err(), "the registry is gone");

    let r = control(&run, &["start", "scrubber", "--config", config.to_str().unwrap()]).run().expect(0);
    assert!(r.stdout.contains("Started tank scrubber"), "{}", r.stdout);
    let pid = run.pid("scrubber").unwrap();
    let log = std::fs::read_to_string(run.dir.path().join("scrubber.log")).unwrap();
    assert!(log.contains("scrubbed 0, waiting 0, failed 0"), "the first pass is done: {log}");
    let r = control(&run, &["status", "scrubber"]).run().expect(0);
    assert!(r.stdout.contains(&format!("tank scrubber is running (pid {pid})")), "{}", r.stdout);
    control(&run, &["stop", "scrubber"]).run().expect(0);
    assert!(!process_alive(pid));
}

both_apis!(a_download_whose_checksum_does_not_match_fails_and_keeps_no_file);

fn a_download_whose_checksum_does_not_match_fails_and_keeps_no_file(api: Api) {
    let d = Deployment::new();
    d.config("");
    let s = d.start();
    let cli = Cli::at(&s, api);
    let bytes = data(2 * 1024 * 1024, 31);
    let id = add(&cli, d.root.path(), &["name=rotting"], &bytes);
    // Bit rot in the store: same size, one byte changed.
    let stored = d.datadir().join(&id);
    let mut rotten = std::fs::read(&stored).unwrap();
    rotten[1_000_000] ^= 0x40;
    std::fs::write(&stored, &rotten).unwrap();

    let copy = d.root.path().join("copy.img");
    let r = cli.image(&["download", &id, "--file", copy.to_str().unwrap()]).run().expect(1);
    assert!(r.stderr.contains(&format!("its checksum is {}: the copy is corrupt", md5_hex(&bytes))), "{}", r.stderr);
    assert!(r.stderr.contains(&md5_hex(&rotten)) && r.stderr.contains("nothing was kept"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(!copy.exists(), "a corrupt download never takes the file's name");
    let temps: Vec<_> = std::fs::read_dir(d.root.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".copy.img.part-"))
        .collect();
    assert!(temps.is_empty(), "the temporary file is removed: {temps:?}");
    // To standard output the data has gone out, but the exit code says it is bad.
    cli.image(&["download", &id]).run().expect(1);
}

#[test]
fn add_registers_a_location_and_copies_from_a_url() {
    let nginx = tank_tests::nginx::Nginx::start("");
    let bytes = data(3 << 20, 9);
    std::fs::write(nginx.www().join("disk.img"), &bytes).unwrap();
    let d = Deployment::new();
    d.install("http");
    d.config(&format!(
        "[import_filtering_opts]\nallowed_hosts = [\"127.0.0.1\"]\nallowed_ports = [{}]\n[store.http]\n",
        nginx.port
    ));
    let s = d.start();
    let cli = Cli::at(&s, Api::V1);
    let source = nginx.url("/disk.img");

    let location = format!("location={source}");
    let run = cli.image(&["add", "name=registered", &location, "--json"]).run().expect(0);
    let registered = &run.json()["image"];
    assert_eq!(
        (registered["status"].as_str(), registered["size"].as_u64()),
        (Some("active"), Some(bytes.len() as u64))
    );
    let copy_from = format!("copy_from={source}");
    let run = cli.image(&["add", "name=copied", &copy_from, "--json"]).run().expect(0);
    let copied = &run.json()["image"];
    assert_eq!(copied["checksum"], md5_hex(&bytes), "the copy was read and hashed by the server");

    for id in [registered["id"].as_str().unwrap(), copied["id"].as_str().unwrap()] {
        let out = d.root.path().join(format!("{id}.img"));
        cli.image(&["download", id, "--file", out.to_str().unwrap()]).run().expect(0);
        assert_eq!(md5_file(&out), md5_hex(&bytes), "{id}");
    }
    // A location Tank does not read is bad input, said in one line.
    let run = cli.image(&["add", "location=file:///etc/passwd"]).run().expect(2);
    assert!(run.stderr.contains("file:// URLs are not accepted"), "{}", run.stderr);

    // Over v2, copy_from is a web-download import that the command waits for; a URL the
    // import filter refuses is refused before anything is imported.
    let v2 = Cli::at(&s, Api::V2);
    let run = v2.image(&["add", "name=imported", "disk_format=raw", "container_format=bare", &copy_from, "--json"]);
    let imported = run.run().expect(0).json()["image"].clone();
    assert_eq!(
        (imported["status"].as_str(), imported["checksum"].as_str()),
        (Some("active"), Some(md5_hex(&bytes).as_str()))
    );
    let out = d.root.path().join("imported.img");
    v2.image(&["download", imported["id"].as_str().unwrap(), "--file", out.to_str().unwrap()]).run().expect(0);
    assert_eq!(md5_file(&out), md5_hex(&bytes));
    let elsewhere = "copy_from=http://127.0.0.1:1/disk.img";
    let run = v2.image(&["add", "name=refused", "disk_format=raw", "container_format=bare", elsewhere]).run().expect(2);
    assert!(run.stderr.contains("(HTTP 400)"), "{}", run.stderr);
    let run = v2.image(&["add", "disk_format=raw", "container_format=bare", &location]).run().expect(2);
    assert!(run.stderr.contains("--api v1"), "{}", run.stderr);
}
