//! Location URIs: where a store keeps an image's data.
//!
//! A location may carry credentials (`s3://access:secret@host/bucket/key`), so it is never
//! shown to clients and its `Display` and `Debug` forms hide the user-info part. Code that
//! really needs the full text asks for it by name: [`Location::expose`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A parsed location URI: `scheme://rest`.
#[derive(Clone, PartialEq, Eq)]
pub struct Location {
    uri: String,
    scheme_len: usize,
}

impl Location {
    /// Parses `scheme://rest`. The scheme is letters, digits, `+`, `-` and `.`, starting
    /// with a letter, and is compared without regard to case.
    pub fn parse(uri: &str) -> Result<Self, crate::Error> {
        let bad = |why: &str| crate::Error::invalid("location", format!("{}: {why}", redact(uri)));
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| bad("expected scheme://..."))?;
        let valid_scheme = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid_scheme {
            return Err(bad("the scheme must be a letter followed by letters, digits, '+', '-' or '.'"));
        }
        if rest.is_empty() {
            return Err(bad("nothing follows the scheme"));
        }
        if uri.chars().any(|c| c.is_control()) {
            return Err(bad("control characters are not allowed"));
        }
        let uri = format!("{}://{rest}", scheme.to_ascii_lowercase());
        Ok(Location { scheme_len: scheme.len(), uri })
    }

    /// The scheme, lower-cased (`file`, `s3+https`, ...).
    pub fn scheme(&self) -> &str {
        &self.uri[..self.scheme_len]
    }

    /// Everything after `scheme://`.
    pub fn rest(&self) -> &str {
        &self.uri[self.scheme_len + 3..]
    }

    /// The full URI, credentials included. Only stores and the registry should see it.
    pub fn expose(&self) -> &str {
        &self.uri
    }
}

/// `uri` with any `user:password@` replaced by `***@`.
///
/// Secrets may contain `/` (S3 secret keys do), so everything up to the *last* `@` is
/// hidden: a path with an `@` in it is over-redacted, never a secret under-redacted.
fn redact(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_owned();
    };
    match rest.rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => uri.to_owned(),
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.uri))
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

impl Serialize for Location {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.uri)
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Location::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scheme_and_rest() {
        let l = Location::parse("File:///var/lib/tank/images/abc").unwrap();
        assert_eq!(l.scheme(), "file");
        assert_eq!(l.rest(), "/var/lib/tank/images/abc");
        assert_eq!(l.expose(), "file:///var/lib/tank/images/abc");
    }

    #[test]
    fn never_prints_credentials() {
        let l = Location::parse("s3://AKIA:s3cr3t/x@host:8080/bucket/key").unwrap();
        assert_eq!(l.scheme(), "s3");
        let shown = format!("{l} {l:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("AKIA"), "{shown}");
        assert!(shown.contains("s3://***@host:8080/bucket/key"), "{shown}");
        assert!(l.expose().contains("s3cr3t"));
    }

    #[test]
    fn refuses_malformed() {
        for bad in ["/etc/passwd", "://x", "1x://y", "s3://", "a b://c", "file://x\ny"] {
            assert!(Location::parse(bad).is_err(), "{bad:?} parsed");
        }
        let err = Location::parse("nope:secret@host").unwrap_err().to_string();
        assert!(err.contains("scheme://"), "{err}");
    }
}
