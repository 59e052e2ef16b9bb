//! Ceph from Debian's packages (mon, memstore OSD, radosgw over http and https), started
//! on loopback once per test process by `tests/servers/ceph.sh` (about 5 s), for the suites
//! that need a real S3 server (the s3 store's, [`Ceph`]) or a real RBD pool (the rbd
//! store's, [`Rbd`]: the same cluster without radosgw). `cargo test` runs a binary's tests
//! in one process, so they share one cluster; nextest runs each test in its own, with its
//! own.
//!
//! The cluster lives as long as the test process: the script leaves a watcher behind that
//! stops the daemons and removes their directory once this process is gone, however it
//! ended. Each test uses buckets ([`Ceph::bucket`]) or pools ([`Rbd::pool`]) of its own, so
//! tests running in parallel never see each other's objects. `cargo xtask test` installs
//! Ceph; a suite that finds it missing fails, it never skips.

use std::{
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        OnceLock,
    },
};

/// A running radosgw and the S3 user the script made.
pub struct Ceph {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// `https://127.0.0.1:<port>`: the same radosgw over TLS.
    pub tls_endpoint: String,
    /// The PEM file of the authority that signed radosgw's certificate.
    pub ca: String,
    /// The S3 user's access key id.
    pub access_key: String,
    /// The S3 user's secret key.
    pub secret_key: String,
    /// The cluster's `ceph.conf`, for `radosgw-admin`.
    pub ceph_conf: String,
}

static CEPH: OnceLock<Ceph> = OnceLock::new();
static RBD: OnceLock<Rbd> = OnceLock::new();
static POOLS: AtomicUsize = AtomicUsize::new(0);

/// Runs `ceph.sh up` in a new directory with `env`; returns a function giving the value of
/// each `key=value` line it printed.
fn up(env: &[(&str, &str)]) -> impl Fn(&str) -> String {
    let script = crate::repo().join("tests/servers/ceph.sh");
    let dir = tempfile::Builder::new().prefix("tank-ceph-").tempdir().expect("temp dir").keep();
    let out = Command::new("bash")
        .arg(&script)
        .arg("up")
        .arg(&dir)
        .arg(std::process::id().to_string())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "starting Ceph failed (install it with `apt-get install ceph-mon ceph-osd radosgw ceph-common`, \
         which `cargo xtask test` does):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    move |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("ceph.sh printed no {key}= line:\n{text}"))
            .to_owned()
    }
}

/// Runs `program` with `args` against the cluster of `ceph_conf`; returns its stdout, or
/// its stderr as the error.
fn run(program: &str, ceph_conf: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .env("CEPH_CONF", ceph_conf)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A running cluster without radosgw, for RBD: its client.admin may do everything.
pub struct Rbd {
    /// The cluster's `ceph.conf` (it names the admin keyring too).
    pub ceph_conf: String,
    /// client.admin's keyring.
    pub keyring: String,
    /// The cluster's fsid.
    pub fsid: String,
    /// The directory `ceph.sh` runs the cluster in.
    pub dir: String,
}

impl Rbd {
    /// The cluster of this test binary, started on first use (about 4 s).
    pub fn get() -> &'static Rbd {
        RBD.get_or_init(Rbd::start)
    }

    /// A cluster of the caller's own (about 4 s), for a test that stops its daemons; it
    /// lives as long as the test process, as the shared one does.
    pub fn start() -> Rbd {
        let value = up(&[("RGW", "0")]);
        Rbd { ceph_conf: value("ceph_conf"), keyring: value("keyring"), fsid: value("fsid"), dir: value("dir") }
    }

    /// Stops the cluster's OSD (the monitor keeps answering): every read and write of
    /// image data then waits for an OSD that does not come.
    pub fn stop_osd(&self) {
        let pid = std::fs::read_to_string(format!("{}/pids/osd", self.dir)).expect("ceph.sh wrote the OSD's pid");
        let status = Command::new("kill").arg("-TERM").arg(pid.trim()).status().expect("kill runs");
        assert!(status.success(), "stopping the OSD failed");
        crate::wait_until(std::time::Duration::from_secs(30), "the OSD to stop", || {
            !crate::process_alive(pid.trim().parse().unwrap())
        });
    }

    /// A new pool initialised for RBD, which no other test of this binary uses
    /// (`<prefix>-<n>`).
    pub fn pool(&self, prefix: &str) -> String {
        let pool = format!("{prefix}-{}", POOLS.fetch_add(1, Ordering::Relaxed));
        self.ceph(&["osd", "pool", "create", &pool]);
        self.rbd(&["pool", "init", &pool]);
        pool
    }

    /// Runs `ceph` with `args`; returns its stdout.
    pub fn ceph(&self, args: &[&str]) -> String {
        run("ceph", &self.ceph_conf, args).unwrap_or_else(|e| panic!("ceph {args:?} failed: {e}"))
    }

    /// Runs `rbd` with `args`; returns its stdout.
    pub fn rbd(&self, args: &[&str]) -> String {
        run("rbd", &self.ceph_conf, args).unwrap_or_else(|e| panic!("rbd {args:?} failed: {e}"))
    }

    /// Runs `rbd` with `args`; its stdout, or its stderr when it fails.
    pub fn try_rbd(&self, args: &[&str]) -> Result<String, String> {
        run("rbd", &self.ceph_conf, args)
    }

    /// The RBD images in `pool`, sorted, as `rbd ls` lists them.
    pub fn images(&self, pool: &str) -> Vec<String> {
        let mut names: Vec<String> = self.rbd(&["ls", pool]).lines().map(str::to_owned).collect();
        names.sort();
        names
    }

    /// The `[store.<name>]` table of an rbd store on `pool`, plus `extra` TOML lines.
    pub fn store_table(&self, pool: &str, extra: &str) -> String {
        format!("ceph_conf = \"{}\"\nkeyring = \"{}\"\npool = \"{pool}\"\n{extra}\n", self.ceph_conf, self.keyring)
    }

    /// The same configuration as JSON, for opening the store in process.
    pub fn store_json(&self, pool: &str) -> serde_json::Value {
        serde_json::json!({"ceph_conf": self.ceph_conf, "keyring": self.keyring, "pool": pool})
    }
}
static BUCKETS: AtomicUsize = AtomicUsize::new(0);

impl Ceph {
    /// The cluster of this test binary, started on first use (about 5 s).
    pub fn get() -> &'static Ceph {
        CEPH.get_or_init(Ceph::start)
    }

    fn start() -> Ceph {
        let value = up(&[]);
        Ceph {
            endpoint: value("endpoint"),
            tls_endpoint: value("tls_endpoint"),
            ca: value("ca"),
            access_key: value("access_key"),
            secret_key: value("secret_key"),
            ceph_conf: value("ceph_conf"),
        }
    }

    /// A bucket name no other test of this binary uses (`<prefix>-<n>`); it does not exist
    /// until someone creates it.
    pub fn bucket(&self, prefix: &str) -> String {
        format!("{prefix}-{}", BUCKETS.fetch_add(1, Ordering::Relaxed))
    }

    /// Runs `radosgw-admin` with `args` against this cluster; returns its stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = Command::new("radosgw-admin")
            .args(args)
            .env("CEPH_CONF", &self.ceph_conf)
            .stdin(Stdio::null())
            .output()
            .expect("radosgw-admin runs");
        assert!(out.status.success(), "radosgw-admin {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every entry of `bucket`'s index, as radosgw itself lists them: objects, and also the
    /// parts and meta objects of unfinished multipart uploads
    /// (`_multipart_<key>.<upload id>.<n>`), which S3's object list never shows. Empty when
    /// the bucket does not exist.
    pub fn bucket_entries(&self, bucket: &str) -> Vec<String> {
        let out = Command::new("radosgw-admin")
            .args(["bucket", "list", "--bucket", bucket])
            .env("CEPH_CONF", &self.ceph_conf)
            .stdin(Stdio::null())
            .output()
            .expect("radosgw-admin runs");
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            // radosgw-admin says "could not init bucket info" / "No such file" for a bucket
            // that was never created.
            assert!(
                err.contains("No such file") || err.contains("could not"),
                "radosgw-admin bucket list {bucket} failed: {err}"
            );
            return Vec::new();
        }
        let entries: serde_json::Value = serde_json::from_slice(&out.stdout).expect("radosgw-admin prints JSON");
        entries
            .as_array()
            .expect("a list of entries")
            .iter()
            .filter_map(|e| e["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// The `[store.<name>]` table of an s3 store on this cluster's `bucket`, plus `extra`
    /// TOML lines.
    pub fn store_table(&self, bucket: &str, extra: &str) -> String {
        format!(
            "host = \"{}\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\nbucket = \"{bucket}\"\n{extra}\n",
            self.endpoint, self.access_key, self.secret_key
        )
    }

    /// The same configuration as JSON, for opening the store in process.
    pub fn store_json(&self, bucket: &str) -> serde_json::Value {
        serde_json::json!({
            "host": self.endpoint,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "bucket": bucket,
        })
    }
}
