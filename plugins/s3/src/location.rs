//! Location URIs of the s3 store.
//!
//! Tank writes `s3://<bucket>/<image id>`: no server and no credentials, which are the
//! store's configuration (so rotating a key or moving the endpoint changes no record).
//! Glance wrote `s3://<access>:<secret>@<host>/<bucket>/<key>` (and `s3+http://`,
//! `s3+https://`), with the credentials inside; such locations, brought over from a Glance
//! registry, are read with the server and keys they name. Neither form is ever shown to a
//! client, and [`Location`]'s `Debug` leaves the keys out.

use std::fmt;

use tank_sdk::{Error, Result};
use url::Url;

use crate::config::{endpoint, valid_bucket};

/// Where an object is, and with which server and keys when the location says so.
#[derive(Clone, PartialEq, Eq)]
pub struct Location {
    /// The bucket.
    pub bucket: String,
    /// The object's key (Tank's: the image id).
    pub key: String,
    /// A Glance location's own server and keys; `None` for Tank's form, which uses the
    /// store's.
    pub remote: Option<Remote>,
}

/// The server and keys inside a Glance location.
#[derive(Clone, PartialEq, Eq)]
pub struct Remote {
    /// Scheme, host and port.
    pub endpoint: Url,
    /// The access key id.
    pub access_key: String,
    /// The secret key.
    pub secret_key: String,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let server = self.remote.as_ref().map(|r| r.endpoint.as_str());
        f.debug_struct("Location")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .field("server", &server)
            .finish()
    }
}

impl Location {
    /// Tank's location of `key` in `bucket`.
    pub fn tank(bucket: &str, key: &str) -> Location {
        Location { bucket: bucket.to_owned(), key: key.to_owned(), remote: None }
    }

    /// `s3://<bucket>/<key>`.
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// Parses either form. The error never quotes the location, which may hold a secret.
    pub fn parse(location: &str) -> Result<Location> {
        let bad = |why: &str| {
            Error::invalid_input(format!(
                "not an s3 location ({why}); the s3 store reads s3://<bucket>/<key> and \
                 s3[+http|+https]://<access>:<secret>@<host>/<bucket>/<key>"
            ))
        };
        let (scheme, rest) = location.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        let tls = match scheme.as_str() {
            "s3" | "s3+http" => false,
            "s3+https" => true,
            _ => return Err(bad("the scheme is not s3, s3+http or s3+https")),
        };
        if rest.contains("://") {
            // Glance refused these too: the credentials part would be ambiguous.
            return Err(bad("it holds a second ://"));
        }
        // Glance's secret keys may contain '/', so the credentials end at the last '@'.
        let Some((credentials, rest)) = rest.rsplit_once('@') else {
            if scheme != "s3" {
                return Err(bad("an s3+http(s) location must name its credentials"));
            }
            let (bucket, key) = rest.split_once('/').ok_or_else(|| bad("no key after the bucket"))?;
            return Location::checked(bucket, key, None).map_err(|why| bad(&why));
        };
        let (access_key, secret_key) =
            credentials.split_once(':').ok_or_else(|| bad("the credentials are not <access>:<secret>"))?;
        let (host, path) = rest.split_once('/').ok_or_else(|| bad("no bucket after the host"))?;
        let (bucket, key) = path.split_once('/').ok_or_else(|| bad("no key after the bucket"))?;
        let server = format!("{}://{host}", if tls { "https" } else { "http" });
        let endpoint = endpoint(&server).map_err(|_| bad("the host is not a server name"))?;
        let remote = Remote { endpoint, access_key: access_key.to_owned(), secret_key: secret_key.to_owned() };
        if remote.access_key.is_empty() || remote.secret_key.is_empty() {
            return Err(bad("a key is empty"));
        }
        Location::checked(bucket, key, Some(remote)).map_err(|why| bad(&why))
    }

    fn checked(bucket: &str, key: &str, remote: Option<Remote>) -> std::result::Result<Location, String> {
        // Glance's bucket names predate S3's stricter rules; only what would break a
        // request is refused.
        if bucket.is_empty() || bucket.contains(['?', '#']) {
            return Err("the bucket name is empty or malformed".into());
        }
        if key.is_empty() || key.contains(['?', '#']) {
            return Err("the key is empty or malformed".into());
        }
        if remote.is_none() && !valid_bucket(bucket) {
            return Err("the bucket name is not one S3 accepts".into());
        }
        Ok(Location { bucket: bucket.to_owned(), key: key.to_owned(), remote })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanks_form_round_trips() {
        let l = Location::parse("s3://images/0b7c3a2e-8f4b-4a9e-9d3c-2f1e5b6a7c8d").unwrap();
        assert_eq!(
            (l.bucket.as_str(), l.key.as_str(), l.remote.is_none()),
            ("images", "0b7c3a2e-8f4b-4a9e-9d3c-2f1e5b6a7c8d", true)
        );
        assert_eq!(l.uri(), "s3://images/0b7c3a2e-8f4b-4a9e-9d3c-2f1e5b6a7c8d");
        assert_eq!(Location::parse(&l.uri()).unwrap(), l);
    }

    #[test]
    fn glances_form_with_a_slash_in_the_secret_is_read() {
        let l = Location::parse("s3+https://AKID:se/cr+et@s3.example.com:8443/old-bucket/dir/image").unwrap();
        let r = l.remote.clone().unwrap();
        assert_eq!((r.access_key.as_str(), r.secret_key.as_str()), ("AKID", "se/cr+et"));
        assert_eq!(r.endpoint.as_str(), "https://s3.example.com:8443/");
        assert_eq!((l.bucket.as_str(), l.key.as_str()), ("old-bucket", "dir/image"));
        let plain = Location::parse("s3://AKID:secret@127.0.0.1:7480/b/k").unwrap();
        assert_eq!(plain.remote.unwrap().endpoint.scheme(), "http");
    }

    #[test]
    fn bad_locations_are_refused_without_quoting_them() {
        for bad in [
            "s3://images",
            "s3://images/",
            "file:///etc/passwd",
            "s3+https://images/key",
            "s3://AKID@host/b/k",
            "s3://AKID:@host/b/k",
            "s3://AKID:hunter2@host/b",
            "s3://AKID:hunter2@s3+http://host/b/k",
            "s3://Bad_Bucket/key",
        ] {
            let e = Location::parse(bad).unwrap_err();
            assert_eq!(e.kind, tank_sdk::ErrorKind::INVALID_INPUT, "{bad}");
            assert!(!e.message.contains("hunter2") && !e.message.contains("AKID"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn debug_leaves_the_keys_out() {
        let l = Location::parse("s3://AKID:hunter2@host/b/k").unwrap();
        let text = format!("{l:?}");
        assert!(!text.contains("hunter2") && !text.contains("AKID"), "{text}");
    }
}
