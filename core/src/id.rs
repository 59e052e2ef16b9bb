//! Image identifiers: UUIDs, printed in the hyphenated lower-case form.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// The id of an image: a UUID, chosen by the server unless the client supplies one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImageId(uuid::Uuid);

impl ImageId {
    /// A fresh random (version 4) id.
    pub fn random() -> Self {
        ImageId(uuid::Uuid::new_v4())
    }

    /// The id as 16 big-endian bytes, which sort like the printed form.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// The id from the 16 bytes `as_bytes` gave.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        ImageId(uuid::Uuid::from_bytes(bytes))
    }
}

impl FromStr for ImageId {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(ImageId).map_err(|_| crate::Error::invalid("id", format!("{s:?} is not a UUID")))
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_hyphenated_lowercase() {
        let id: ImageId = "71C675AB-D94F-49CD-A114-E12490B328D9".parse().unwrap();
        assert_eq!(id.to_string(), "71c675ab-d94f-49cd-a114-e12490b328d9");
        assert_eq!(ImageId::from_bytes(*id.as_bytes()), id);
    }

    #[test]
    fn refuses_non_uuids() {
        let err = "42".parse::<ImageId>().unwrap_err();
        assert_eq!(err.to_string(), "invalid id: \"42\" is not a UUID");
    }
}
