//! The chase store's `[store.chase]` table: Glance's swift store options without their
//! `swift_store_` prefix, checked when the store opens so that a wrong value is refused by
//! key before any request is made.

use std::{fmt, time::Duration};

use serde::{Deserialize, Deserializer};
use tank_sdk::{Error, Result};
use url::Url;

/// One MB in Glance's sense for this store: a mebibyte. (Glance itself mixes 1000 × 1024
/// and 1024 × 1024; Tank picks the binary one and says so in the README.)
pub const MB: u64 = 1024 * 1024;

/// Swift's default `max_file_size`: no single object, and so no segment, may be larger.
const SWIFT_MAX_OBJECT: u64 = 5 * 1024 * MB + 2;

/// Which identity API gives the token and the storage URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVersion {
    /// Swift's own auth v1.0 (tempauth, swauth): `X-Auth-User` / `X-Auth-Key`.
    V1,
    /// Keystone v3 password authentication, scoped to a project.
    V3,
}

/// Options of the chase store.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The identity endpoint: `http://proxy:8080/auth/v1.0` for v1, the Keystone URL
    /// (`http://keystone:5000/v3`) for v3.
    pub auth_address: String,
    /// `1` (default) or `3`; written as a number or a string.
    #[serde(default = "default_auth_version", deserialize_with = "auth_version")]
    pub auth_version: AuthVersion,
    /// v1: `account:user`; v3: the user's name.
    pub user: String,
    /// v1: the key; v3: the password. Never logged, never in a message.
    pub key: String,
    /// v3: the project the token is scoped to.
    #[serde(default)]
    pub project: Option<String>,
    /// v3: the domain of `user` (default `Default`).
    #[serde(default = "default_domain")]
    pub user_domain: String,
    /// v3: the domain of `project` (default `Default`).
    #[serde(default = "default_domain")]
    pub project_domain: String,
    /// The container images go to (default `tank`); segments go to `<container>_segments`.
    #[serde(default = "default_container")]
    pub container: String,
    /// Create the containers on the first upload when they are missing (default false, as
    /// Glance: otherwise a missing container fails the upload).
    #[serde(default)]
    pub create_container_on_put: bool,
    /// Images of this many MB or more are written as segments plus a manifest (default
    /// 5120).
    #[serde(default = "default_large_object_size")]
    pub large_object_size: u64,
    /// The size of one segment, in MB (default 200).
    #[serde(default = "default_large_object_chunk_size")]
    pub large_object_chunk_size: u64,
    /// Seconds to connect, to get an answer, and that a transfer may stall (default 30). Not
    /// a Glance option: Tank bounds every request so that a dead server is an error, never
    /// a hang.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

// By hand, so that the key never reaches a log through `{:?}`.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("auth_address", &self.auth_address)
            .field("auth_version", &self.auth_version)
            .field("user", &self.user)
            .field("key", &"<redacted>")
            .field("project", &self.project)
            .field("container", &self.container)
            .field("create_container_on_put", &self.create_container_on_put)
            .field("large_object_size", &self.large_object_size)
            .field("large_object_chunk_size", &self.large_object_chunk_size)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn default_auth_version() -> AuthVersion {
    AuthVersion::V1
}

fn default_domain() -> String {
    "Default".into()
}

fn default_container() -> String {
    "tank".into()
}

fn default_large_object_size() -> u64 {
    5120
}

fn default_large_object_chunk_size() -> u64 {
    200
}

fn default_timeout() -> u64 {
    30
}

fn auth_version<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<AuthVersion, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    let text = match Raw::deserialize(d)? {
        Raw::Number(n) => n.to_string(),
        Raw::Text(t) => t,
    };
    match text.trim_start_matches('v') {
        "1" | "1.0" => Ok(AuthVersion::V1),
        "3" | "3.0" => Ok(AuthVersion::V3),
        other => Err(serde::de::Error::custom(format!(
            "auth_version {other:?} is not supported: use 1 (Swift auth v1.0, tempauth) or 3 (Keystone v3)"
        ))),
    }
}

impl Config {
    /// Parses the table and checks every value, naming the key that is wrong.
    ///
    /// # Errors
    /// [`tank_sdk::ErrorKind::INVALID_CONFIG`].
    pub fn from_json(value: serde_json::Value) -> Result<Config> {
        let config: Config = serde_json::from_value(value).map_err(|e| Error::invalid_config(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        let bad = |key: &str, why: String| Err(Error::invalid_config(format!("{key}: {why}")));
        match Url::parse(&self.auth_address) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                if !url.username().is_empty() || url.password().is_some() {
                    return bad("auth_address", "must not hold credentials; set user and key instead".into());
                }
            }
            Ok(_) => return bad("auth_address", "must be an http:// or https:// URL with a host".into()),
            Err(e) => return bad("auth_address", format!("is not a URL ({e})")),
        }
        if self.user.is_empty() {
            return bad("user", "must not be empty".into());
        }
        if self.auth_version == AuthVersion::V1 && !self.user.contains(':') {
            return bad("user", "auth v1.0 names the user as account:user (test:tester, say)".into());
        }
        if self.key.is_empty() {
            return bad("key", "must not be empty".into());
        }
        if self.auth_version == AuthVersion::V3 && self.project.as_deref().is_none_or(str::is_empty) {
            return bad("project", "auth_version 3 needs the project to scope the token to".into());
        }
        if self.container.is_empty() || self.container.contains('/') || self.container.len() > 240 {
            // 240 leaves room for the `_segments` suffix within Swift's 256.
            return bad("container", "must be 1 to 240 characters without '/'".into());
        }
        if self.large_object_size == 0 {
            return bad("large_object_size", "must be at least 1 (MB)".into());
        }
        if self.large_object_chunk_size == 0 || self.large_object_chunk_size * MB > SWIFT_MAX_OBJECT {
            return bad("large_object_chunk_size", "must be 1 to 5120 (MB): a segment is one Swift object".into());
        }
        if self.large_object_size * MB > SWIFT_MAX_OBJECT {
            return bad("large_object_size", "must be at most 5120 (MB): Swift refuses larger single objects".into());
        }
        if self.timeout == 0 {
            return bad("timeout", "must be at least 1 (second)".into());
        }
        Ok(())
    }

    /// The segments' container.
    pub fn segments_container(&self) -> String {
        format!("{}_segments", self.container)
    }

    /// `large_object_size` in bytes.
    pub fn threshold(&self) -> u64 {
        self.large_object_size * MB
    }

    /// `large_object_chunk_size` in bytes.
    pub fn segment_size(&self) -> u64 {
        self.large_object_chunk_size * MB
    }

    /// `timeout` as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: serde_json::Value) -> Result<Config> {
        Config::from_json(v)
    }

    fn v1() -> serde_json::Value {
        json!({"auth_address": "http://127.0.0.1:8080/auth/v1.0", "user": "test:tester", "key": "testing"})
    }

    fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
        let mut v = v1();
        v[key] = value;
        v
    }

    #[test]
    fn defaults_are_glances() {
        let c = parse(v1()).unwrap();
        assert_eq!(c.auth_version, AuthVersion::V1);
        assert_eq!(c.container, "tank");
        assert_eq!(c.segments_container(), "tank_segments");
        assert!(!c.create_container_on_put);
        assert_eq!((c.large_object_size, c.large_object_chunk_size), (5120, 200));
        assert_eq!(c.threshold(), 5 << 30);
        assert_eq!(c.timeout(), Duration::from_secs(30));
    }

    #[test]
    fn auth_version_is_a_number_or_a_string() {
        assert_eq!(parse(with("auth_version", json!(1))).unwrap().auth_version, AuthVersion::V1);
        assert_eq!(parse(with("auth_version", json!("1.0"))).unwrap().auth_version, AuthVersion::V1);
        let mut v3 = with("auth_version", json!("3"));
        v3["user"] = json!("glance");
        v3["project"] = json!("service");
        let c = parse(v3).unwrap();
        assert_eq!((c.auth_version, c.user_domain.as_str()), (AuthVersion::V3, "Default"));
        let e = parse(with("auth_version", json!(2))).unwrap_err().message;
        assert!(e.contains("auth_version \"2\" is not supported"), "{e}");
    }

    #[test]
    fn wrong_values_are_refused_by_key() {
        for (key, value, says) in [
            ("auth_address", json!("127.0.0.1:8080"), "auth_address: "),
            ("auth_address", json!("ftp://h/auth"), "auth_address: must be an http"),
            ("auth_address", json!("http://u:p@h/auth/v1.0"), "auth_address: must not hold credentials"),
            ("user", json!("tester"), "user: auth v1.0 names the user as account:user"),
            ("key", json!(""), "key: must not be empty"),
            ("container", json!("a/b"), "container: "),
            ("large_object_size", json!(0), "large_object_size: "),
            ("large_object_size", json!(6000), "large_object_size: must be at most 5120"),
            ("large_object_chunk_size", json!(0), "large_object_chunk_size: "),
            ("timeout", json!(0), "timeout: "),
        ] {
            let e = parse(with(key, value)).unwrap_err();
            assert_eq!(e.kind, tank_sdk::ErrorKind::INVALID_CONFIG);
            assert!(e.message.contains(says), "{key}: {}", e.message);
        }
        let e = parse(with("auth_version", json!(3))).unwrap_err().message;
        assert!(e.starts_with("project: "), "{e}");
        let e = parse(with("swift_store_user", json!("x"))).unwrap_err().message;
        assert!(e.contains("swift_store_user"), "{e}");
        let mut missing = v1();
        missing.as_object_mut().unwrap().remove("key");
        assert!(parse(missing).unwrap_err().message.contains("key"));
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let c = parse(with("key", json!("s3cr3t-key"))).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t-key"));
    }
}
