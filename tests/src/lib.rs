//! Support for Tank's end-to-end suites: find the built `tank` binary and plugin libraries,
//! pack plugins into a temporary plugin dir, start a real `tank api` on a free loopback
//! port, and talk HTTP to it.
//!
//! The suites test what an operator runs: the binary, plugins loaded from folders, bytes
//! over TCP. Nothing here links the host or a plugin into the test process.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{mpsc, Arc, Mutex},
    time::{Duration, Instant},
};

pub mod ceph;
pub mod nginx;
pub mod python;
pub mod sheepdog;
pub mod swift;
pub mod transfer;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// `target/<profile>`: where cargo put the binary and libraries of this build.
pub fn artifacts() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    // target/<profile>/deps/<test binary>
    exe.parent().and_then(Path::parent).expect("test binaries live in target/<profile>/deps").to_path_buf()
}

/// A built artifact, with a clear failure when the workspace was not built first.
pub fn artifact(name: &str) -> PathBuf {
    let path = artifacts().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace` with the same profile, or `cargo xtask test`)",
        path.display()
    );
    path
}

/// The `tank` binary.
pub fn tank_bin() -> PathBuf {
    artifact("tank")
}

/// The plugins the suites know: (folder name in the plugin dir, source manifest, library).
pub fn plugin_source(name: &str) -> (PathBuf, String) {
    let repo = repo();
    match name {
        "fs" => (repo.join("plugins/fs/tank-plugin.toml"), "libtank_plugin_fs.so".into()),
        "sled" => (repo.join("plugins/sled/tank-plugin.toml"), "libtank_plugin_sled.so".into()),
        "remote" => (repo.join("plugins/remote/tank-plugin.toml"), "libtank_plugin_remote.so".into()),
        "http" => (repo.join("plugins/http/tank-plugin.toml"), "libtank_plugin_http.so".into()),
        "s3" => (repo.join("plugins/s3/tank-plugin.toml"), "libtank_plugin_s3.so".into()),
        "chase" => (repo.join("plugins/chase/tank-plugin.toml"), "libtank_plugin_chase.so".into()),
        "rbd" => (repo.join("plugins/rbd/tank-plugin.toml"), "libtank_plugin_rbd.so".into()),
        "sheepdog" => (repo.join("plugins/sheepdog/tank-plugin.toml"), "libtank_plugin_sheepdog.so".into()),
        "memstore" => (repo.join("examples/memstore/tank-plugin.toml"), "libtank_example_memstore.so".into()),
        "panicky" => (repo.join("tests/fixtures/panicky/tank-plugin.toml"), "libtank_fixture_panicky.so".into()),
        "not-a-plugin" => {
            (repo.join("tests/fixtures/not-a-plugin/tank-plugin.toml"), "libtank_fixture_not_a_plugin.so".into())
        }
        other => panic!("unknown plugin {other}"),
    }
}

/// Runs `tank` with `args`; returns (success, stdout, stderr).
pub fn tank(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(tank_bin()).args(args).output().expect("tank runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Packs plugin `name` into `<dir>/<folder>` with `tank plugins pack`.
pub fn pack(name: &str, dir: &Path, folder: &str) -> PathBuf {
    let (manifest, library) = plugin_source(name);
    let out = dir.join(folder);
    let lib = artifact(&library);
    let (ok, _, err) = tank(&[
        "plugins",
        "pack",
        "--manifest",
        manifest.to_str().unwrap(),
        "--library",
        lib.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "tank plugins pack {name} failed: {err}");
    out
}

/// `tank.toml` lines for a server behind the tests' authenticating proxy
/// (`auth_strategy = "trusted-proxy"`, identity headers believed from loopback), so that a
/// test can call as any tenant with its own identity headers. A [`Server`]
/// started with them sends [`OPERATOR`]'s identity with every request that carries none
/// of its own, as the proxy does for the operator; a test that wants a request with no
/// identity at all sends an empty `x-identity-status`.
pub const BEHIND_PROXY: &str = "auth_strategy = \"trusted-proxy\"\nidentity_proxies = [\"127.0.0.1\"]\n";

/// `tank.toml` lines for a server that authenticates with the static API tokens of
/// [`Deployment::tokens`].
pub const WITH_TOKENS: &str = "auth_strategy = \"tokens\"\ntoken_file = \"tokens.toml\"\n";

/// The identity headers of the operator: an admin in no project.
pub const OPERATOR: [(&str, &str); 3] =
    [("x-auth-token", "operator"), ("x-identity-status", "Confirmed"), ("x-role", "admin")];

/// A scratch deployment: a temp dir holding `plugins/`, `tank.toml` and `var/`.
pub struct Deployment {
    /// The temp dir (removed on drop).
    pub root: tempfile::TempDir,
}

impl Deployment {
    /// What `tank plugins --verify --json` says of plugin `name` in this deployment:
    /// (status, reason).
    pub fn verify(&self, name: &str) -> (String, String) {
        let config = self.root.path().join("tank.toml");
        let (_, out, err) = tank(&["plugins", "--config", config.to_str().unwrap(), "--verify", "--json"]);
        let list: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} ({err})"));
        let entry = list
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {out} ({err})"));
        (entry["status"].as_str().unwrap().to_owned(), entry["reason"].as_str().unwrap_or_default().to_owned())
    }

    /// A deployment with the fs and sled plugins installed.
    pub fn new() -> Deployment {
        let d = Deployment::empty();
        d.install("fs");
        d.install("sled");
        d
    }

    /// A deployment with no plugins.
    pub fn empty() -> Deployment {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(root.path().join("plugins")).unwrap();
        Deployment { root }
    }

    /// The plugin dir.
    pub fn plugins(&self) -> PathBuf {
        self.root.path().join("plugins")
    }

    /// The fs store's datadir.
    pub fn datadir(&self) -> PathBuf {
        self.root.path().join("var/images")
    }

    /// Installs plugin `name` under its own name.
    pub fn install(&self, name: &str) -> PathBuf {
        pack(name, &self.plugins(), name)
    }

    /// Writes `tank.toml`: the standard fs + sled settings on a free port, then `extra`.
    pub fn config(&self, extra: &str) -> PathBuf {
        let text = format!(
            "api_host = \"127.0.0.1\"\napi_port = 0\nplugin_dirs = [\"plugins\"]\n{extra}\n\
             [store.filesystem]\ndatadir = \"var/images\"\n[registry.sled]\npath = \"var/registry\"\n"
        );
        let path = self.root.path().join("tank.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes `tank.toml` as [`Deployment::config`] does, for a server behind the tests'
    /// authenticating proxy ([`BEHIND_PROXY`]).
    pub fn behind_proxy(&self, extra: &str) -> PathBuf {
        self.config(&format!("{BEHIND_PROXY}{extra}"))
    }

    /// Makes an API token with `tank token new` for each (user, project, roles) of
    /// `users` in this deployment's `tokens.toml`, and answers a JSON object of them by
    /// user. [`WITH_TOKENS`] makes a server read the file.
    pub fn tokens(&self, users: &[(&str, &str, &str)]) -> serde_json::Value {
        let file = self.root.path().join("tokens.toml");
        let mut tokens = serde_json::Map::new();
        for (user, project, roles) in users {
            let args = ["token", "new", "--file", file.to_str().unwrap(), "--user", user, "--project", project];
            let made = tank_cmd(&args).args(&["--roles", roles, "--json"]).run().expect(0).json();
            tokens.insert((*user).to_owned(), made["token"].clone());
        }
        serde_json::Value::Object(tokens)
    }

    /// Writes `registry.toml` for `tank registry`: sled on a free loopback port, then
    /// `extra`.
    pub fn registry_config(&self, extra: &str) -> PathBuf {
        let text = format!(
            "registry_host = \"127.0.0.1\"\nregistry_port = 0\nplugin_dirs = [\"plugins\"]\n{extra}\n\
             [registry.sled]\npath = \"var/registry\"\n"
        );
        let path = self.root.path().join("registry.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Starts a `tank registry` over sled (its `registry.toml` gets `registry_extra`) and
    /// writes a `tank.toml` whose `remote` registry driver points at it, followed by
    /// `api_extra`: the deployment of docs/registry.md, ready for [`Deployment::start`].
    /// Installs the fs, sled and remote plugins.
    pub fn start_registry(&self, registry_extra: &str, api_extra: &str) -> Server {
        for plugin in ["fs", "sled", "remote"] {
            if !self.plugins().join(plugin).exists() {
                self.install(plugin);
            }
        }
        let registry = Server::start_registry(&self.registry_config(registry_extra));
        let url = format!("http://{}", registry.addr);
        self.config(&format!("registry_driver = \"remote\"\n{api_extra}\n[registry.remote]\nurl = \"{url}\"\n"));
        registry
    }

    /// The files in the datadir, sorted.
    pub fn data_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.datadir())
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Starts `tank api` with the deployment's `tank.toml`.
    pub fn start(&self) -> Server {
        Server::start(&self.root.path().join("tank.toml"))
    }
}

impl Default for Deployment {
    fn default() -> Self {
        Self::new()
    }
}

/// A running `tank api`, killed on drop.
pub struct Server {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// Behind the tests' proxy: requests without an identity go as [`OPERATOR`].
    operator: bool,
    log: Arc<Mutex<String>>,
    rt: tokio::runtime::Runtime,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

/// A response, body read in full.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The id of the image in an `{"image": ...}` body.
    pub fn image_id(&self) -> String {
        self.json()["image"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no image id in {}", transfer::seen(self)))
            .to_owned()
    }

    /// The message of an `{"error": ...}` body, empty when there is none.
    pub fn error_message(&self) -> String {
        self.json()["error"]["message"].as_str().unwrap_or_default().to_owned()
    }
}

/// `config` (a JSON object) with the keys of `extra` set over it.
pub fn merged(mut config: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

impl Server {
    /// Starts an upload to `store` on a raw connection, sends `sent` bytes of an image of
    /// `size` bytes (declared with Content-Length and x-image-meta-size, or chunked when
    /// `None`), and returns the open connection: for tests that cut an upload midway.
    pub fn start_raw_upload(&self, store: &str, size: Option<usize>, sent: usize) -> std::net::TcpStream {
        let mut upload = RawUpload::start(self, &[("x-image-meta-store", store), ("x-image-meta-name", "cut")], size);
        upload.send(&data(sent, 4));
        upload.conn
    }

    /// The status of every image, killed and deleted ones too, in list order.
    pub fn all_statuses(&self) -> Vec<String> {
        let all = self.get("/v1/images/detail?changes-since=2000-01-01T00:00:00&is_public=none").json();
        all["images"].as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap().to_owned()).collect()
    }

    /// The status of image `id`, from a HEAD (`?` when the header is missing).
    pub fn image_status(&self, id: &str) -> String {
        let head = self.head(&format!("/v1/images/{id}"));
        head.header("x-image-meta-status").unwrap_or("?").to_owned()
    }

    /// Starts `tank api --config <config>` and waits for its "listening on" line.
    pub fn start(config: &Path) -> Server {
        Server::start_command("api", config)
    }

    /// Starts `tank registry --config <config>` and waits for its "listening on" line.
    pub fn start_registry(config: &Path) -> Server {
        Server::start_command("registry", config)
    }

    /// Starts `tank <command> --config <config>` (a server command) and waits for its
    /// "listening on" line.
    pub fn start_command(command: &str, config: &Path) -> Server {
        let mut child = Command::new(tank_bin())
            .args([command, "--config", config.to_str().unwrap()])
            .env("TANK_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("tank {command} does not start: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let _ = tx.send(line[at + "listening on http://".len()..].trim().to_owned());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tank {command} did not start listening; its log:\n{}", log.lock().unwrap());
            }
        };
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let client = Client::builder(TokioExecutor::new()).build_http();
        let operator = command == "api" && std::fs::read_to_string(config).is_ok_and(|t| t.contains(BEHIND_PROXY));
        Server { child, addr, operator, log, rt, client }
    }

    /// `headers`, with [`OPERATOR`]'s identity when the server is behind the proxy and
    /// they carry no identity of their own.
    pub fn with_identity<'a>(&self, headers: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut all = headers.to_vec();
        if self.operator && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("x-identity-status")) {
            all.extend_from_slice(&OPERATOR);
        }
        all
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request with a complete body.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
        let mut req = http::Request::builder().method(method).uri(self.url(path));
        for (k, v) in self.with_identity(headers) {
            req = req.header(k, v);
        }
        let req = req.body(Full::new(body.into())).unwrap();
        self.rt.block_on(async {
            let resp = self.client.request(req).await.expect("request reaches the server");
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.expect("body arrives").to_bytes();
            Reply { status: parts.status.as_u16(), headers: parts.headers, body }
        })
    }

    /// GET.
    pub fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], Bytes::new())
    }

    /// HEAD.
    pub fn head(&self, path: &str) -> Reply {
        self.send("HEAD", path, &[], Bytes::new())
    }

    /// Uploads `data` as a new image with `headers` (plus the octet-stream content type).
    pub fn upload(&self, data: &[u8], headers: &[(&str, &str)]) -> Reply {
        let mut h = vec![("content-type", "application/octet-stream")];
        h.extend_from_slice(headers);
        self.send("POST", "/v1/images", &h, Bytes::copy_from_slice(data))
    }

    /// Uploads `data` as a new image in a chunked body (no length declared, 64 KiB a
    /// chunk), with `headers` (plus the octet-stream content type).
    pub fn upload_chunked(&self, data: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
        self.send_chunked("POST", "/v1/images", data, headers)
    }

    /// Sends `data` in a chunked body (no length declared, 64 KiB a chunk) with `headers`
    /// (plus the octet-stream content type).
    pub fn send_chunked(&self, method: &str, path: &str, data: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
        let mut req = http::Request::builder()
            .method(method)
            .uri(self.url(path))
            .header("content-type", "application/octet-stream");
        for (k, v) in self.with_identity(headers) {
            req = req.header(k, v);
        }
        let (tx, body) = ChannelBody::new(4);
        let req = req.body(body).unwrap();
        self.rt.block_on(async move {
            tokio::spawn(async move {
                for piece in data.chunks(64 << 10) {
                    if tx.send(Bytes::copy_from_slice(piece)).await.is_err() {
                        return; // The server stopped reading: its answer says why.
                    }
                }
            });
            let client = Client::builder(TokioExecutor::new()).build_http();
            let resp = client.request(req).await.expect("request reaches the server");
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.expect("body arrives").to_bytes();
            Reply { status: parts.status.as_u16(), headers: parts.headers, body }
        })
    }

    /// Runs `f` on the server's client runtime (for streaming requests).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Stops the server with SIGTERM and waits for it.
    pub fn stop(mut self) -> String {
        // The shell's `kill` builtin: no extra package and no libc binding needed.
        let _ = Command::new("sh").args(["-c", &format!("kill -TERM {}", self.child.id())]).status();
        let _ = self.child.wait();
        self.log()
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` bytes of deterministic, incompressible-looking data.
pub use tank_sdk::conformance::pattern as data;

/// Lowercase hex MD5.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

/// A loopback port where connections are refused, for as long as the value lives.
///
/// It is a socket bound without listening: reading a port from a listener and dropping it
/// would free the port for the next server any parallel test starts (one CI run saw a
/// "closed" port answer 400 that way).
pub struct ClosedPort {
    _socket: tokio::net::TcpSocket,
    pub port: u16,
}

pub fn closed_port() -> ClosedPort {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.bind("127.0.0.1:0".parse().unwrap()).expect("binding a loopback port");
    let port = socket.local_addr().unwrap().port();
    ClosedPort { _socket: socket, port }
}

/// Waits until `cond` holds, checking every few milliseconds, for at most `limit`.
/// For conditions the test cannot be told about (a file appearing); never a fixed sleep.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A `POST /v1/images` written by hand on its own connection, so that a test can stop
/// midway (to change the image, restart a server, kill one) and then go on or cut it.
pub struct RawUpload {
    /// The connection (`Connection: close`: the answer ends at its end).
    pub conn: std::net::TcpStream,
    chunked: bool,
}

impl RawUpload {
    /// Sends the request head with `headers` and a body of `size` bytes (Content-Length
    /// and x-image-meta-size), or chunked when `None`.
    pub fn start(server: &Server, headers: &[(&str, &str)], size: Option<usize>) -> RawUpload {
        use std::io::Write;
        let mut conn = std::net::TcpStream::connect(&server.addr).unwrap();
        let mut head = format!(
            "POST /v1/images HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/octet-stream\r\n",
            server.addr
        );
        match size {
            Some(n) => head.push_str(&format!("Content-Length: {n}\r\nx-image-meta-size: {n}\r\n")),
            None => head.push_str("Transfer-Encoding: chunked\r\n"),
        }
        for (name, value) in server.with_identity(headers) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        conn.write_all(head.as_bytes()).unwrap();
        RawUpload { conn, chunked: size.is_none() }
    }

    /// Sends `bytes` of the body.
    pub fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        for piece in bytes.chunks(64 << 10) {
            if self.chunked {
                self.conn.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).unwrap();
            }
            self.conn.write_all(piece).unwrap();
            if self.chunked {
                self.conn.write_all(b"\r\n").unwrap();
            }
        }
    }

    /// Sends the last `bytes` (and the chunked body's end) and reads the answer: its
    /// status and its body as JSON.
    pub fn finish(mut self, bytes: &[u8]) -> (u16, serde_json::Value) {
        use std::io::{Read, Write};
        self.send(bytes);
        if self.chunked {
            self.conn.write_all(b"0\r\n\r\n").unwrap();
        }
        self.conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut answer = Vec::new();
        self.conn.read_to_end(&mut answer).unwrap();
        let text = String::from_utf8_lossy(&answer);
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {text}"));
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"));
        (status, json)
    }
}

/// A request body fed chunk by chunk from the test: sent with chunked transfer encoding,
/// and held open for as long as the sender lives.
pub struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl ChannelBody {
    /// A body and the sender that feeds it, holding at most `depth` chunks.
    pub fn new(depth: usize) -> (tokio::sync::mpsc::Sender<Bytes>, ChannelBody) {
        let (tx, rx) = tokio::sync::mpsc::channel(depth);
        (tx, ChannelBody(rx))
    }
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|c| c.map(|data| Ok(hyper::body::Frame::data(data))))
    }
}

/// What a finished `tank` command left: exit code and output.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1 if a signal ended it).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}\nstderr: {}", self.stdout, self.stderr))
    }

    /// Panics with the whole output unless the exit code is `code`.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(self.code, code, "expected exit code {code}; stdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
}

/// A `tank` command line to run, with its environment and standard input.
pub struct TankCommand {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

/// `tank <args>`, with no `TANK_*` variables from the test's environment and standard
/// input at end of file (`/dev/null`).
pub fn tank_cmd(args: &[&str]) -> TankCommand {
    let mut cmd = Command::new(tank_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .env_remove("TANK_URL")
        .env_remove("TANK_TOKEN")
        .env_remove("TANK_API")
        .env_remove("TANK_RUN_DIR");
    TankCommand { cmd, stdin: None }
}

impl TankCommand {
    /// Adds arguments.
    pub fn args(mut self, args: &[&str]) -> TankCommand {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> TankCommand {
        self.cmd.env(key, value);
        self
    }

    /// Feeds `data` through a pipe as standard input.
    pub fn stdin_bytes(mut self, data: impl Into<Vec<u8>>) -> TankCommand {
        self.cmd.stdin(Stdio::piped());
        self.stdin = Some(data.into());
        self
    }

    /// Opens `path` as standard input (`< path`).
    pub fn stdin_file(mut self, path: &Path) -> TankCommand {
        self.cmd.stdin(std::fs::File::open(path).expect("the stdin file opens"));
        self
    }

    /// Runs it to the end.
    pub fn run(mut self) -> Run {
        let mut child = self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("tank runs");
        if let Some(data) = self.stdin.take() {
            let mut stdin = child.stdin.take().unwrap();
            // A thread, so that a command that stops reading early cannot block the test.
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = stdin.write_all(&data);
            });
        }
        let out = child.wait_with_output().expect("tank finishes");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }
}

/// A stand-in for Keystone's `authtoken` middleware: a loopback proxy in front of a
/// `tank api` that turns known tokens into the identity headers the API trusts
/// (docs/api-v1.md, "Who is calling"), as a real deployment's proxy does. Identity
/// headers sent by the client are dropped, and an unknown token is passed on as not
/// confirmed.
pub struct IdentityProxy {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    _rt: tokio::runtime::Runtime,
}

/// Who a token stands for.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The token.
    pub token: String,
    /// `X-User`.
    pub user: String,
    /// `X-Tenant`.
    pub tenant: String,
    /// `X-Role`, comma-separated.
    pub roles: String,
}

impl IdentityProxy {
    /// A proxy to `upstream` (`127.0.0.1:<port>`) knowing `identities`.
    pub fn start(upstream: &str, identities: Vec<Identity>) -> IdentityProxy {
        use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request};
        use hyper_util::rt::TokioIo;

        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.to_owned();
        let identities = Arc::new(identities);
        let client: Client<_, Incoming> = Client::builder(TokioExecutor::new()).build_http();
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (upstream, identities, client) = (upstream.clone(), identities.clone(), client.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |mut req: Request<Incoming>| {
                        let (upstream, identities, client) = (upstream.clone(), identities.clone(), client.clone());
                        async move {
                            let headers = req.headers_mut();
                            for name in ["x-identity-status", "x-user", "x-tenant", "x-role"] {
                                headers.remove(name);
                            }
                            let token = headers.get("x-auth-token").and_then(|v| v.to_str().ok()).map(str::to_owned);
                            if let Some(token) = token {
                                match identities.iter().find(|i| i.token == token) {
                                    Some(i) => {
                                        headers.insert("x-identity-status", "Confirmed".parse().unwrap());
                                        headers.insert("x-user", i.user.parse().unwrap());
                                        headers.insert("x-tenant", i.tenant.parse().unwrap());
                                        headers.insert("x-role", i.roles.parse().unwrap());
                                    }
                                    None => {
                                        headers.insert("x-identity-status", "Invalid".parse().unwrap());
                                    }
                                }
                            }
                            let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
                            *req.uri_mut() = format!("http://{upstream}{path}").parse().unwrap();
                            client.request(req).await
                        }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        IdentityProxy { url, _rt: rt }
    }
}

/// Writes `size` bytes of deterministic data to `path` a chunk at a time (never the whole
/// in memory) and returns their MD5.
pub fn write_data_file(path: &Path, size: u64, seed: u64) -> String {
    use md5::Digest;
    use std::io::Write;
    const CHUNK: u64 = 4 * 1024 * 1024;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("the data file is created"));
    let mut md5 = md5::Md5::new();
    let mut written = 0;
    let mut n = 0;
    while written < size {
        let len = CHUNK.min(size - written);
        let chunk = data(len as usize, seed.wrapping_mul(1_000_003).wrapping_add(n));
        md5.update(&chunk);
        file.write_all(&chunk).unwrap();
        written += len;
        n += 1;
    }
    file.flush().unwrap();
    hex::encode(md5.finalize())
}

/// The MD5 of a file, read a chunk at a time.
pub fn md5_file(path: &Path) -> String {
    use md5::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let mut md5 = md5::Md5::new();
    let mut buf = vec![0; 4 * 1024 * 1024];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            return hex::encode(md5.finalize());
        }
        md5.update(&buf[..n]);
    }
}

/// A run directory for `tank control` (pid and log files). Every server whose pid file is
/// in it is killed when it is dropped, so that a failing test leaves no server behind.
pub struct RunDir {
    /// The directory (removed on drop).
    pub dir: tempfile::TempDir,
}

impl RunDir {
    /// A fresh, empty run directory.
    pub fn new() -> RunDir {
        RunDir { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// The directory's path as text, for `--run-dir`.
    pub fn arg(&self) -> &str {
        self.dir.path().to_str().expect("temp paths are UTF-8")
    }

    /// The pid in `<server>.pid`, if there is one.
    pub fn pid(&self, server: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join(format!("{server}.pid"))).ok()?.trim().parse().ok()
    }
}

impl Default for RunDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        for server in ["api", "registry", "scrubber"] {
            if let Some(pid) = self.pid(server) {
                if process_alive(pid) {
                    let _ = Command::new("sh").args(["-c", &format!("kill -KILL {pid}")]).status();
                }
            }
        }
    }
}

/// Whether process `pid` exists and has not died (a zombie counts as dead: its parent
/// may be an init that never reaps).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Sends `signal` (a name such as `STOP`) to `pid` with the shell's `kill`.
pub fn send_signal(pid: u32, signal: &str) {
    let ok = Command::new("sh").args(["-c", &format!("kill -{signal} {pid}")]).status().is_ok_and(|s| s.success());
    assert!(ok, "kill -{signal} {pid} failed");
}

/// The keys of an image in a detailed list and in `{"image": ...}` bodies (reference §1.4:
/// every core field and `properties`, never `location`).
pub const IMAGE_KEYS: &[&str] = &[
    "id",
    "name",
    "status",
    "size",
    "disk_format",
    "container_format",
    "checksum",
    "is_public",
    "min_ram",
    "min_disk",
    "owner",
    "protected",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
    "properties",
];

/// The keys of an image in a brief list (`GET /v1/images`).
pub const BRIEF_KEYS: &[&str] = &["id", "name", "disk_format", "container_format", "checksum", "size"];
