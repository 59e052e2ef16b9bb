//! Location URIs: `rbd://<fsid>/<pool>/<image>/<snapshot>`, what Tank writes (as Glance
//! does since Havana), and Glance's older `rbd://<image>`, an image in the configured pool
//! read at its head.
//!
//! Parsing is strict: every part must be a name [`valid_name`] accepts, so nothing a
//! location holds can reach librados as anything but one plain name.

use tank_sdk::{Error, Result};

use crate::config::valid_name;

/// The snapshot the store makes of every image, as Glance names it.
pub const SNAPSHOT: &str = "snap";

/// A parsed location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The cluster's fsid, lower case; `None` in the old form (the configured cluster).
    pub fsid: Option<String>,
    /// `None` in the old form: the configured pool.
    pub pool: Option<String>,
    pub image: String,
    /// `None` in the old form: the image's head.
    pub snapshot: Option<String>,
}

impl Location {
    /// Tank's location of `image` in `pool` of cluster `fsid`.
    pub fn format(fsid: &str, pool: &str, image: &str) -> String {
        format!("rbd://{fsid}/{pool}/{image}/{SNAPSHOT}")
    }

    /// Parses either form.
    ///
    /// # Errors
    /// `INVALID_INPUT` saying which forms are accepted; the message does not repeat the
    /// location.
    pub fn parse(location: &str) -> Result<Location> {
        let refuse = |why: &str| {
            Error::invalid_input(format!(
                "not an rbd location ({why}); the store reads rbd://<fsid>/<pool>/<image>/<snapshot> and rbd://<image>"
            ))
        };
        let rest = location.strip_prefix("rbd://").ok_or_else(|| refuse("the scheme is not rbd://"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        if let Some(bad) = parts.iter().find(|p| !valid_name(p)) {
            return Err(refuse(&format!(
                "{} is not a name of letters, digits, '.', '_' and '-'",
                if bad.is_empty() { "an empty part".to_owned() } else { format!("part {bad:?}") }
            )));
        }
        match parts[..] {
            [image] => Ok(Location { fsid: None, pool: None, image: image.to_owned(), snapshot: None }),
            [fsid, pool, image, snapshot] => {
                let is_uuid = fsid.len() == 36 && fsid.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-');
                if !is_uuid {
                    return Err(refuse("the first part is not a cluster fsid"));
                }
                Ok(Location {
                    fsid: Some(fsid.to_ascii_lowercase()),
                    pool: Some(pool.to_owned()),
                    image: image.to_owned(),
                    snapshot: Some(snapshot.to_owned()),
                })
            }
            _ => Err(refuse(&format!("{} parts", parts.len()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use tank_sdk::ErrorKind;

    use super::*;

    const FSID: &str = "1d5b6c1e-8f3a-4b7e-9c1d-2e3f4a5b6c7d";

    #[test]
    fn tanks_form_round_trips() {
        let text = Location::format(FSID, "images", "6f1b2c3d-0000-4000-8000-000000000007");
        assert_eq!(text, format!("rbd://{FSID}/images/6f1b2c3d-0000-4000-8000-000000000007/snap"));
        let l = Location::parse(&text).unwrap();
        assert_eq!(l.fsid.as_deref(), Some(FSID));
        assert_eq!((l.pool.as_deref(), l.image.as_str()), (Some("images"), "6f1b2c3d-0000-4000-8000-000000000007"));
        assert_eq!(l.snapshot.as_deref(), Some("snap"));
        let upper = Location::parse(&format!("rbd://{}/p/i/snap", FSID.to_uppercase())).unwrap();
        assert_eq!(upper.fsid.as_deref(), Some(FSID));
    }

    #[test]
    fn the_old_form_is_an_image_in_the_configured_pool() {
        let l = Location::parse("rbd://6f1b2c3d-0000-4000-8000-000000000007").unwrap();
        assert_eq!(
            l,
            Location { fsid: None, pool: None, image: "6f1b2c3d-0000-4000-8000-000000000007".into(), snapshot: None }
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "s3://bucket/key",
            "rbd://",
            "rbd:///images/x/snap",
            "rbd://a/b",
            "rbd://a/b/c",
            &format!("rbd://{FSID}/images/x/snap/more"),
            "rbd://not-an-fsid-at-all-not-an-fsid-at-a/images/x/snap",
            &format!("rbd://{FSID}/images/x;rm -rf/snap"),
            &format!("rbd://{FSID}/images/x@other/snap"),
            &format!("rbd://{FSID}/images/../snap"),
            &format!("rbd://{FSID}/images/x%2f/snap"),
            "rbd://x\0y",
        ] {
            let e = Location::parse(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::INVALID_INPUT, "{bad}");
            assert!(e.message.starts_with("not an rbd location"), "{bad}: {}", e.message);
        }
    }
}
