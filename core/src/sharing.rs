//! Who an image is for: its visibility, and the tenants it is shared with.
//!
//! The model is Images API v2's (reference §7.1, §7.6); v1 reads and writes it through
//! `is_public` as Glance maps them: `is_public: true` is `public`, and `is_public: false`
//! is `shared` (the owner and its members), which is what a v1 private image always was.

use std::{collections::BTreeMap, fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::{Error, Timestamp};

/// Who may see an image besides its owner and admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Every tenant, and it is listed for all.
    Public,
    /// Every tenant who asks for it, but it is listed only when asked for
    /// (`visibility=community`).
    Community,
    /// The owner and the tenants it is shared with.
    Shared,
    /// The owner alone; members, if any, do not count.
    Private,
}

impl Visibility {
    /// Every visibility.
    pub const ALL: [Visibility; 4] =
        [Visibility::Public, Visibility::Community, Visibility::Shared, Visibility::Private];

    /// The name clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Community => "community",
            Visibility::Shared => "shared",
            Visibility::Private => "private",
        }
    }

    /// The visibility v1's `is_public` stands for.
    pub fn from_is_public(is_public: bool) -> Visibility {
        if is_public {
            Visibility::Public
        } else {
            Visibility::Shared
        }
    }
}

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Visibility {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Visibility::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| {
            Error::invalid("visibility", format!("{s:?} is not one of public, community, shared, private"))
        })
    }
}

/// What a tenant an image is shared with made of the offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    /// Offered, not yet answered: the member can read the image but does not list it by
    /// default.
    Pending,
    /// Taken: the member lists the image.
    Accepted,
    /// Declined: the member can still read the image by id.
    Rejected,
}

impl MemberStatus {
    /// Every member status.
    pub const ALL: [MemberStatus; 3] = [MemberStatus::Pending, MemberStatus::Accepted, MemberStatus::Rejected];

    /// The name clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Pending => "pending",
            MemberStatus::Accepted => "accepted",
            MemberStatus::Rejected => "rejected",
        }
    }
}

impl fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MemberStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        MemberStatus::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| Error::invalid("member status", format!("{s:?} is not one of pending, accepted, rejected")))
    }
}

/// A tenant an image is shared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The tenant.
    pub member_id: String,
    /// Whether the tenant may share the image further (v1 only).
    pub can_share: bool,
    /// What the tenant made of the offer.
    pub status: MemberStatus,
    /// When the tenant was added.
    pub created_at: Timestamp,
    /// When the membership last changed.
    pub updated_at: Timestamp,
    /// Fields a newer host wrote, kept as they were.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Member {
    /// A new, `pending` membership of `member_id`.
    pub fn new(member_id: impl Into<String>, can_share: bool, now: Timestamp) -> Member {
        Member {
            member_id: member_id.into(),
            can_share,
            status: MemberStatus::Pending,
            created_at: now,
            updated_at: now,
            extra: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in Visibility::ALL {
            assert_eq!(v.as_str().parse::<Visibility>().unwrap(), v);
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
        for m in MemberStatus::ALL {
            assert_eq!(m.as_str().parse::<MemberStatus>().unwrap(), m);
        }
        assert!("everyone".parse::<Visibility>().unwrap_err().to_string().contains("community"));
        assert!("maybe".parse::<MemberStatus>().is_err());
    }

    #[test]
    fn is_public_maps_as_glance_maps_it() {
        assert_eq!(Visibility::from_is_public(true), Visibility::Public);
        assert_eq!(Visibility::from_is_public(false), Visibility::Shared, "a v1 private image has members");
    }

    #[test]
    fn members_keep_fields_they_do_not_know() {
        let json = r#"{"member_id":"t","can_share":false,"status":"pending","created_at":"2020-01-01T00:00:00.000000",
            "updated_at":"2020-01-01T00:00:00.000000","expires_at":"2030-01-01"}"#;
        let m: Member = serde_json::from_str(json).unwrap();
        assert_eq!(m.extra["expires_at"], "2030-01-01");
        assert_eq!(serde_json::to_value(&m).unwrap()["expires_at"], "2030-01-01");
    }
}
