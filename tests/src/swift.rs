//! OpenStack Swift from Debian's packages, for the chase store's suite: started once per
//! test binary by `tests/servers/swift.sh` on free loopback ports, and stopped by the
//! script's watcher when the test process ends (a static is never dropped, so nothing in
//! the process could stop it).
//!
//! Each test works in containers of its own ([`Swift::container`]), so tests running in
//! parallel never see each other's objects. `cargo xtask test` installs the packages; a
//! suite that finds no Swift fails, it never skips.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::Command,
    sync::{
        atomic::{AtomicU32, Ordering},
        OnceLock,
    },
    time::{Duration, Instant},
};

/// The running Swift.
#[derive(Debug)]
pub struct Swift {
    /// `http://127.0.0.1:<port>/auth/v1.0`.
    pub auth_url: String,
    /// The proxy's port.
    pub proxy_port: u16,
    /// The port of the memcached holding tempauth's tokens.
    pub memcached_port: u16,
    /// A tempauth user (`account:user`) that is an admin of its account.
    pub user: String,
    /// Its key.
    pub key: String,
    /// Where the script keeps config, rings, data and logs.
    pub dir: PathBuf,
    /// How long the start took.
    pub started_in: Duration,
}

static SWIFT: OnceLock<Swift> = OnceLock::new();

/// The test binary's Swift, started on first use.
pub fn swift() -> &'static Swift {
    SWIFT.get_or_init(Swift::start)
}

/// An HTTP answer from Swift.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The head, as text.
    pub head: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

impl Swift {
    fn start() -> Swift {
        let script = crate::repo().join("tests/servers/swift.sh");
        let dir = tempfile::Builder::new().prefix("tank-swift-").tempdir().expect("temp dir").keep();
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(&script)
            .arg("up")
            .arg(&dir)
            .args(["--watch", &std::process::id().to_string()])
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "Swift did not start ({}): {}\nInstall it with `apt-get install swift swift-proxy swift-account \
             swift-container swift-object memcached` (`cargo xtask test` does)",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8_lossy(&out.stdout);
        let get = |key: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("swift.sh printed no {key}: {env}"))
                .to_owned()
        };
        Swift {
            auth_url: get("SWIFT_AUTH_URL"),
            proxy_port: get("SWIFT_PROXY_PORT").parse().expect("a port"),
            memcached_port: get("SWIFT_MEMCACHED_PORT").parse().expect("a port"),
            user: get("SWIFT_USER"),
            key: get("SWIFT_KEY"),
            dir,
            started_in: started.elapsed(),
        }
    }

    /// A container name no other test uses (`<prefix>-<pid>-<n>`).
    pub fn container(&self, prefix: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The chase store's table for `container` (a TOML body, without the header), with
    /// `extra` lines appended.
    pub fn store_table(&self, container: &str, extra: &str) -> String {
        format!(
            "auth_address = {:?}\nuser = {:?}\nkey = {:?}\ncontainer = {container:?}\ncreate_container_on_put = true\n{extra}\n",
            self.auth_url, self.user, self.key
        )
    }

    /// The same settings as JSON, for opening the store in process.
    pub fn store_json(&self, container: &str, large_object_mb: Option<u64>) -> serde_json::Value {
        let mut v = serde_json::json!({
            "auth_address": self.auth_url, "user": self.user, "key": self.key,
            "container": container, "create_container_on_put": true,
        });
        if let Some(mb) = large_object_mb {
            v["large_object_size"] = mb.into();
            v["large_object_chunk_size"] = mb.into();
        }
        v
    }

    /// One request to the proxy (`path` from the root, e.g. `/auth/v1.0`), over a
    /// connection of its own.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut s = TcpStream::connect(("127.0.0.1", self.proxy_port)).expect("the Swift proxy listens");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.proxy_port,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("Swift answers");
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP head");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
        Answer { status, head, body: raw[split + 4..].to_vec() }
    }

    /// A fresh token and the account's path (`/v1/AUTH_test`).
    pub fn token(&self) -> (String, String) {
        let a = self.request("GET", "/auth/v1.0", &[("X-Auth-User", &self.user), ("X-Auth-Key", &self.key)], b"");
        assert_eq!(a.status, 200, "auth v1.0 with the test user: {a:?}");
        let token = a.header("x-auth-token").expect("a token").to_owned();
        let url = a.header("x-storage-url").expect("a storage URL");
        let path = url.find("/v1/").map(|i| url[i..].to_owned()).expect("a /v1/ storage URL");
        (token, path)
    }

    /// The names of the objects in `container` (none when it does not exist).
    pub fn list(&self, container: &str) -> Vec<String> {
        let (token, account) = self.token();
        let a = self.request("GET", &format!("{account}/{container}?format=json"), &[("X-Auth-Token", &token)], b"");
        if a.status == 404 {
            return Vec::new();
        }
        assert!(a.status == 200 || a.status == 204, "listing {container}: {a:?}");
        if a.body.is_empty() {
            return Vec::new();
        }
        let list: Vec<serde_json::Value> = serde_json::from_slice(&a.body).expect("a JSON listing");
        list.iter().map(|o| o["name"].as_str().unwrap().to_owned()).collect()
    }

    /// Everything in `container` and `<container>_segments`: what a store using
    /// `container` holds.
    pub fn holdings(&self, container: &str) -> Vec<String> {
        let mut all = self.list(container);
        all.extend(self.list(&format!("{container}_segments")).into_iter().map(|n| format!("segment {n}")));
        all
    }

    /// What the proxy logged so far (one line per request: method, path, status, ...).
    pub fn proxy_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/proxy.out")).unwrap_or_default()
    }

    /// Makes every token invalid at once, as if each had expired: tempauth keeps them only
    /// in memcached, and this empties it.
    pub fn expire_tokens(&self) {
        let mut s = TcpStream::connect(("127.0.0.1", self.memcached_port)).expect("memcached listens");
        s.write_all(b"flush_all\r\n").unwrap();
        let mut reply = [0u8; 4];
        s.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"OK\r\n", "memcached flush_all");
    }
}
