//! The rbd store's `[store.rbd]` table: Glance's `rbd_store_*` option names without the
//! prefix, and the checks that turn it into [`Settings`] at open, each failure naming its
//! key.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;
use tank_sdk::{Error, OpenContext, Result};

/// One MB as Glance counts it (`units.Mi`).
pub const MB: u64 = 1 << 20;

/// The `[store.<name>]` table as the operator wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The cluster's `ceph.conf` (`rbd_store_ceph_conf`, default `/etc/ceph/ceph.conf`);
    /// relative to the configuration file.
    #[serde(default = "default_ceph_conf")]
    pub ceph_conf: PathBuf,
    /// The Ceph user, `glance` or `client.glance` (`rbd_store_user`); none lets librados
    /// choose (client.admin).
    #[serde(default)]
    pub user: Option<String>,
    /// The keyring holding the user's key, when `ceph_conf` does not say where it is;
    /// relative to the configuration file.
    #[serde(default)]
    pub keyring: Option<PathBuf>,
    /// The pool the images go to (`rbd_store_pool`, default `images`).
    #[serde(default = "default_pool")]
    pub pool: String,
    /// The size of the image's objects and of each write, in MB: a power of two from 1 to
    /// 32 (`rbd_store_chunk_size`, default 8).
    #[serde(default = "default_chunk_size")]
    pub chunk_size: u64,
    /// Seconds librados waits for the monitors (to connect, and for each request) and for
    /// each request to an OSD (default 30): a cluster that is down fails a request after
    /// this long instead of hanging.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

fn default_ceph_conf() -> PathBuf {
    "/etc/ceph/ceph.conf".into()
}

fn default_pool() -> String {
    "images".into()
}

fn default_chunk_size() -> u64 {
    8
}

fn default_timeout() -> u64 {
    30
}

/// A checked configuration, in the units the store works in.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Absolute.
    pub ceph_conf: PathBuf,
    /// The user's id without `client.` (`glance`), if one is configured.
    pub user: Option<String>,
    /// Absolute.
    pub keyring: Option<PathBuf>,
    pub pool: String,
    /// Bytes per write and per object.
    pub chunk_size: u64,
    /// log2 of `chunk_size`: the image's object order.
    pub order: u32,
    pub timeout: Duration,
}

impl Settings {
    /// `client.<user>`, or librados' default, for messages.
    pub fn user_name(&self) -> String {
        format!("client.{}", self.user.as_deref().unwrap_or("admin"))
    }
}

/// Whether `name` is safe as an RBD pool, image or snapshot name in a location and on
/// librados' API: 1 to 128 ASCII letters, digits, `.`, `_` and `-`, not starting with `.`.
/// Image ids and Glance's names all fit; anything else (a `/`, a `@`, a NUL, spaces) is
/// refused rather than quoted.
pub fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && !name.starts_with('.')
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

impl Config {
    /// Checks every value, resolving paths against the configuration file's directory;
    /// the error names the key and says what to write instead.
    pub fn check(self, ctx: &OpenContext) -> Result<Settings> {
        let bad = |key: &str, why: String| Error::invalid_config(format!("{key}: {why}"));
        let ceph_conf = ctx.resolve(&self.ceph_conf);
        if !ceph_conf.is_file() {
            return Err(bad(
                "ceph_conf",
                format!("{} is not a file; give the cluster's ceph.conf", ceph_conf.display()),
            ));
        }
        let keyring = self.keyring.map(|k| ctx.resolve(k));
        if let Some(k) = &keyring {
            if !k.is_file() {
                return Err(bad("keyring", format!("{} is not a file; give the user's keyring", k.display())));
            }
        }
        let user = match self.user {
            None => None,
            Some(u) => {
                let id = u.strip_prefix("client.").unwrap_or(&u).to_owned();
                if !valid_name(&id) {
                    return Err(bad("user", format!("{u:?} is not a Ceph user name such as glance or client.glance")));
                }
                Some(id)
            }
        };
        if !valid_name(&self.pool) {
            return Err(bad(
                "pool",
                format!("{:?} is not a pool name the store accepts: letters, digits, '.', '_' and '-'", self.pool),
            ));
        }
        if !(self.chunk_size.is_power_of_two() && self.chunk_size <= 32) {
            // RBD objects are 4 KiB to 32 MiB, a power of two (Glance: order = log2(chunk)).
            return Err(bad(
                "chunk_size",
                format!("{} MB is not an RBD object size; use 1, 2, 4, 8, 16 or 32 (MB)", self.chunk_size),
            ));
        }
        if self.timeout == 0 {
            return Err(bad("timeout", "must be at least 1 (seconds)".into()));
        }
        let chunk_size = self.chunk_size * MB;
        Ok(Settings {
            ceph_conf,
            user,
            keyring,
            pool: self.pool,
            chunk_size,
            order: chunk_size.trailing_zeros(),
            timeout: Duration::from_secs(self.timeout),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(dir: &std::path::Path) -> OpenContext {
        OpenContext { name: "rbd".into(), config: serde_json::Value::Null, config_dir: dir.into() }
    }

    fn parse(json: serde_json::Value) -> std::result::Result<Config, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    /// A directory holding `ceph.conf` and `keyring`.
    fn dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("ceph.conf"), "[global]\n").unwrap();
        std::fs::write(d.path().join("keyring"), "[client.glance]\n").unwrap();
        d
    }

    fn refusal(d: &tempfile::TempDir, json: serde_json::Value) -> String {
        parse(json).unwrap().check(&ctx(d.path())).unwrap_err().message
    }

    #[test]
    fn defaults_are_glances() {
        let c = parse(serde_json::json!({})).unwrap();
        assert_eq!(c.ceph_conf, PathBuf::from("/etc/ceph/ceph.conf"));
        assert_eq!((c.pool.as_str(), c.chunk_size, c.timeout), ("images", 8, 30));
        assert_eq!((c.user, c.keyring), (None, None));
    }

    #[test]
    fn every_option_parses_and_paths_are_relative_to_the_configuration() {
        let d = dir();
        let c = parse(serde_json::json!({
            "ceph_conf": "ceph.conf", "user": "client.glance", "keyring": "keyring", "pool": "rbd",
            "chunk_size": 4, "timeout": 5
        }))
        .unwrap();
        let s = c.check(&ctx(d.path())).unwrap();
        assert_eq!(s.ceph_conf, d.path().join("ceph.conf"));
        assert_eq!(s.keyring, Some(d.path().join("keyring")));
        assert_eq!((s.user.as_deref(), s.user_name()), (Some("glance"), "client.glance".to_owned()));
        assert_eq!((s.pool.as_str(), s.chunk_size, s.order), ("rbd", 4 * MB, 22));
        assert_eq!(s.timeout, Duration::from_secs(5));
        let s = parse(serde_json::json!({"ceph_conf": "ceph.conf"})).unwrap().check(&ctx(d.path())).unwrap();
        assert_eq!((s.order, s.user_name()), (23, "client.admin".to_owned()));
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse(serde_json::json!({"rbd_store_pool": "x"})).unwrap_err();
        assert!(e.contains("rbd_store_pool"), "{e}");
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let d = dir();
        for (json, says) in [
            (serde_json::json!({"ceph_conf": "missing.conf"}), "ceph_conf: "),
            (serde_json::json!({"ceph_conf": "ceph.conf", "keyring": "nope"}), "keyring: "),
            (serde_json::json!({"ceph_conf": "ceph.conf", "user": "a b"}), "user: \"a b\""),
            (serde_json::json!({"ceph_conf": "ceph.conf", "pool": "a/b"}), "pool: \"a/b\""),
            (serde_json::json!({"ceph_conf": "ceph.conf", "pool": ""}), "pool: "),
            (serde_json::json!({"ceph_conf": "ceph.conf", "chunk_size": 3}), "chunk_size: 3 MB"),
            (serde_json::json!({"ceph_conf": "ceph.conf", "chunk_size": 64}), "chunk_size: 64 MB"),
            (serde_json::json!({"ceph_conf": "ceph.conf", "chunk_size": 0}), "chunk_size: 0 MB"),
            (serde_json::json!({"ceph_conf": "ceph.conf", "timeout": 0}), "timeout: "),
        ] {
            let e = refusal(&d, json.clone());
            assert!(e.contains(says), "{json}: {e}");
        }
    }

    #[test]
    fn names_are_strict() {
        for good in ["images", "6f1b2c3d-0000-4000-8000-000000000007", "snap", "a_b.c"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "a@b", "a b", "a\0b", "ä", &"x".repeat(129)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
