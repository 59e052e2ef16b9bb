//! The s3 store's `[store.s3]` table: Glance's option names without the `s3_store_`
//! prefix, sizes in MB (MiB, as Glance multiplies them) as Glance has them, and the checks
//! that turn it into [`Settings`] at open, each failure naming its key.

use std::{fmt, path::PathBuf, time::Duration};

use serde::Deserialize;
use tank_sdk::{Error, Result};
use url::Url;

/// One MB as Glance counts it (`units.Mi`).
pub const MB: u64 = 1 << 20;

/// S3's smallest part but the last (5 MiB) and largest part or single PUT (5 GiB).
const MIN_PART_MB: u64 = 5;
const MAX_PART_MB: u64 = 5 * 1024;

/// How requests name the bucket (Glance's `s3_store_bucket_url_format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UrlFormat {
    /// `https://host/bucket/key`: what every S3-compatible server understands.
    #[default]
    Path,
    /// `https://bucket.host/key`: what AWS prefers; needs DNS for `bucket.host`.
    Virtual,
}

/// The `[store.<name>]` table as the operator wrote it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The server's URL, `http://` or `https://` (Glance's `s3_store_host`); the scheme
    /// decides TLS.
    pub host: String,
    /// The access key id (`s3_store_access_key`).
    pub access_key: String,
    /// The secret key (`s3_store_secret_key`).
    pub secret_key: String,
    /// The bucket holding the images (`s3_store_bucket`).
    pub bucket: String,
    /// Create the bucket on the first upload when it does not exist
    /// (`s3_store_create_bucket_on_put`, default false).
    #[serde(default)]
    pub create_bucket_on_put: bool,
    /// `path` (the default) or `virtual` (`s3_store_bucket_url_format`).
    #[serde(default)]
    pub bucket_url_format: UrlFormat,
    /// The region requests are signed for (`s3_store_region_name`, default `us-east-1`).
    #[serde(default = "default_region")]
    pub region: String,
    /// Images of a declared size below this many MB go up in one PUT, those at or above it
    /// (and every upload of unknown size) as multipart uploads
    /// (`s3_store_large_object_size`, default 100).
    #[serde(default = "default_large_object_size")]
    pub large_object_size: u64,
    /// The part size of multipart uploads in MB, at least 5
    /// (`s3_store_large_object_chunk_size`, default 10).
    #[serde(default = "default_large_object_chunk_size")]
    pub large_object_chunk_size: u64,
    /// Parts of one upload sent at the same time (`s3_store_thread_pools`, default 4).
    #[serde(default = "default_thread_pools")]
    pub thread_pools: usize,
    /// A PEM file of the authorities to trust instead of the system's, for an https
    /// `host` (`s3_store_cacert`); relative to the configuration file.
    #[serde(default)]
    pub cacert: Option<PathBuf>,
    /// Seconds to connect, to get a response's head, and between two reads of a body
    /// (default 30): a dead or stalled server fails a request after this long.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_large_object_size() -> u64 {
    100
}

fn default_large_object_chunk_size() -> u64 {
    10
}

fn default_thread_pools() -> usize {
    4
}

fn default_timeout() -> u64 {
    30
}

/// The keys stay out of every `{:?}`, so a logged configuration never shows them.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("access_key", &"<redacted>")
            .field("secret_key", &"<redacted>")
            .field("bucket", &self.bucket)
            .field("create_bucket_on_put", &self.create_bucket_on_put)
            .field("bucket_url_format", &self.bucket_url_format)
            .field("region", &self.region)
            .field("large_object_size", &self.large_object_size)
            .field("large_object_chunk_size", &self.large_object_chunk_size)
            .field("thread_pools", &self.thread_pools)
            .field("cacert", &self.cacert)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A checked configuration, in the units the store works in.
#[derive(Clone)]
pub struct Settings {
    /// The endpoint: scheme, host and port only.
    pub endpoint: Url,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    pub create_bucket_on_put: bool,
    pub url_format: UrlFormat,
    pub region: String,
    /// Bytes: a declared size below this goes up in one PUT.
    pub large_object_size: u64,
    /// Bytes per part.
    pub chunk_size: u64,
    pub thread_pools: usize,
    pub cacert: Option<PathBuf>,
    pub timeout: Duration,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("endpoint", &self.endpoint.as_str())
            .field("bucket", &self.bucket)
            .field("url_format", &self.url_format)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Whether `name` is a bucket name S3 accepts: 3 to 63 lowercase letters, digits, dots and
/// hyphens, starting and ending with a letter or digit.
pub fn valid_bucket(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// The endpoint URL of a `host` value: http or https, a host, nothing else.
pub fn endpoint(host: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(host).map_err(|e| {
        format!("{host:?} is not a URL ({e}); write the scheme and the server, as in https://s3.example.com")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("the scheme must be http or https, not {}", url.scheme()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL must not hold credentials; set access_key and secret_key".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL names no server".into());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("give the server only (scheme, host, port), without a path; the bucket goes in `bucket`".into());
    }
    Ok(url)
}

impl Config {
    /// Checks every value; the error names the key and says what to write instead.
    pub fn check(self) -> Result<Settings> {
        let bad = |key: &str, why: String| Error::invalid_config(format!("{key}: {why}"));
        let endpoint = endpoint(&self.host).map_err(|why| bad("host", why))?;
        if self.access_key.is_empty() {
            return Err(bad("access_key", "is empty; set the S3 access key id".into()));
        }
        if self.secret_key.is_empty() {
            return Err(bad("secret_key", "is empty; set the S3 secret key".into()));
        }
        if !valid_bucket(&self.bucket) {
            return Err(bad(
                "bucket",
                format!(
                    "{:?} is not a bucket name S3 accepts: 3 to 63 lowercase letters, digits, '.' and '-', \
                     starting and ending with a letter or digit",
                    self.bucket
                ),
            ));
        }
        if self.region.is_empty() || !self.region.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
            return Err(bad("region", format!("{:?} is not a region name such as us-east-1", self.region)));
        }
        if !(MIN_PART_MB..=MAX_PART_MB).contains(&self.large_object_chunk_size) {
            return Err(bad(
                "large_object_chunk_size",
                format!(
                    "{} MB is outside S3's part sizes; use {MIN_PART_MB} to {MAX_PART_MB} (MB)",
                    self.large_object_chunk_size
                ),
            ));
        }
        if self.large_object_size > MAX_PART_MB {
            // A single PUT holds the whole image in memory first, and S3 takes at most 5 GiB.
            return Err(bad(
                "large_object_size",
                format!("{} MB is more than one PUT can carry; use at most {MAX_PART_MB} (MB)", self.large_object_size),
            ));
        }
        if !(1..=64).contains(&self.thread_pools) {
            return Err(bad("thread_pools", format!("{} is not between 1 and 64", self.thread_pools)));
        }
        if self.timeout == 0 {
            return Err(bad("timeout", "must be at least 1 (seconds)".into()));
        }
        if self.cacert.is_some() && endpoint.scheme() != "https" {
            return Err(bad("cacert", "is set but host is not an https:// URL".into()));
        }
        Ok(Settings {
            endpoint,
            access_key: self.access_key,
            secret_key: self.secret_key,
            bucket: self.bucket,
            create_bucket_on_put: self.create_bucket_on_put,
            url_format: self.bucket_url_format,
            region: self.region,
            large_object_size: self.large_object_size * MB,
            chunk_size: self.large_object_chunk_size * MB,
            thread_pools: self.thread_pools,
            cacert: self.cacert,
            timeout: Duration::from_secs(self.timeout),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> std::result::Result<Config, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    fn minimal() -> serde_json::Value {
        serde_json::json!({"host": "http://127.0.0.1:7480", "access_key": "AK", "secret_key": "SK", "bucket": "images"})
    }

    fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
        let mut v = minimal();
        v[key] = value;
        v
    }

    fn refusal(json: serde_json::Value) -> String {
        parse(json).unwrap().check().unwrap_err().message
    }

    #[test]
    fn defaults_are_glances_except_path_style_and_four_parts_at_a_time() {
        let s = parse(minimal()).unwrap().check().unwrap();
        assert_eq!(s.endpoint.as_str(), "http://127.0.0.1:7480/");
        assert_eq!((s.large_object_size, s.chunk_size), (100 * MB, 10 * MB));
        assert_eq!((s.region.as_str(), s.url_format, s.thread_pools), ("us-east-1", UrlFormat::Path, 4));
        assert!(!s.create_bucket_on_put);
        assert_eq!(s.timeout, Duration::from_secs(30));
    }

    #[test]
    fn every_option_parses() {
        let c = parse(serde_json::json!({
            "host": "https://s3.example.com", "access_key": "AK", "secret_key": "S/K", "bucket": "tank.images",
            "create_bucket_on_put": true, "bucket_url_format": "virtual", "region": "eu-west-1",
            "large_object_size": 0, "large_object_chunk_size": 5, "thread_pools": 1, "cacert": "ca.pem", "timeout": 5
        }))
        .unwrap();
        let s = c.check().unwrap();
        assert_eq!((s.url_format, s.large_object_size, s.chunk_size), (UrlFormat::Virtual, 0, 5 * MB));
        assert_eq!(s.cacert, Some(PathBuf::from("ca.pem")));
    }

    #[test]
    fn unknown_and_missing_keys_are_named() {
        let e = parse(with("s3_store_bucket", "x".into())).unwrap_err();
        assert!(e.contains("s3_store_bucket"), "{e}");
        let mut v = minimal();
        v.as_object_mut().unwrap().remove("secret_key");
        let e = parse(v).unwrap_err();
        assert!(e.contains("secret_key"), "{e}");
        let e = parse(with("bucket_url_format", "auto".into())).unwrap_err();
        assert!(e.contains("auto") && e.contains("path"), "{e}");
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        for (key, value, says) in [
            ("host", serde_json::json!("s3.amazonaws.com"), "host: "),
            ("host", serde_json::json!("ftp://x"), "scheme must be http or https"),
            ("host", serde_json::json!("http://ak:sk@x"), "must not hold credentials"),
            ("host", serde_json::json!("http://x/bucket"), "without a path"),
            ("bucket", serde_json::json!("Images"), "bucket: \"Images\""),
            ("bucket", serde_json::json!("ab"), "bucket: "),
            ("access_key", serde_json::json!(""), "access_key: is empty"),
            ("region", serde_json::json!("us east"), "region: "),
            ("large_object_chunk_size", serde_json::json!(4), "large_object_chunk_size: 4 MB"),
            ("large_object_chunk_size", serde_json::json!(6000), "large_object_chunk_size: 6000 MB"),
            ("large_object_size", serde_json::json!(6000), "large_object_size: 6000 MB"),
            ("thread_pools", serde_json::json!(0), "thread_pools: 0"),
            ("timeout", serde_json::json!(0), "timeout: "),
            ("cacert", serde_json::json!("ca.pem"), "cacert: is set but host is not an https"),
        ] {
            let e = refusal(with(key, value));
            assert!(e.contains(says), "{key}: {e}");
        }
    }

    #[test]
    fn debug_never_shows_the_keys() {
        let c = parse(with("secret_key", "hunter2-secret".into())).unwrap();
        let text = format!("{c:?} {:?}", c.clone().check().unwrap());
        assert!(!text.contains("hunter2") && !text.contains("\"AK\""), "{text}");
    }
}
