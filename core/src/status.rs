//! Image statuses and the transitions the server may make between them.
//!
//! Status is server-controlled: clients never set it (CVE-2015-5251), so the only way to
//! change it is [`Status::check_transition`], called by the images service as an image
//! moves through its life.
//!
//! The set is open: a record may carry a status this code does not know, written by a
//! newer host that shares the registry. It is kept as [`Status::Other`], round-trips
//! unchanged through every driver, and may only be deleted, since this code cannot know
//! what else it allows.

use std::{fmt, str::FromStr, sync::Arc};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where an image is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Status {
    /// The id is reserved; no data has been uploaded yet.
    Queued,
    /// Data is being uploaded.
    Saving,
    /// Data is being staged for an import (Images API v2 `PUT /stage`).
    Uploading,
    /// Staged or remote data is being imported.
    Importing,
    /// The image is complete and can be downloaded.
    Active,
    /// An upload failed; the image cannot be read.
    Killed,
    /// The image was deleted; the record is kept but unusable.
    Deleted,
    /// Deleted, but its data waits for the scrubber.
    PendingDelete,
    /// An admin or the owner turned downloads off; metadata stays readable.
    Deactivated,
    /// A status this code does not know, written by a newer host; kept as it was read.
    Other(Arc<str>),
}

impl Status {
    /// Every status this code knows, in life order.
    pub const KNOWN: [Status; 9] = [
        Status::Queued,
        Status::Saving,
        Status::Uploading,
        Status::Importing,
        Status::Active,
        Status::Killed,
        Status::Deleted,
        Status::PendingDelete,
        Status::Deactivated,
    ];

    /// The name clients see.
    pub fn as_str(&self) -> &str {
        match self {
            Status::Queued => "queued",
            Status::Saving => "saving",
            Status::Uploading => "uploading",
            Status::Importing => "importing",
            Status::Active => "active",
            Status::Killed => "killed",
            Status::Deleted => "deleted",
            Status::PendingDelete => "pending_delete",
            Status::Deactivated => "deactivated",
            Status::Other(name) => name,
        }
    }

    /// The status a record names, known or not: what drivers and the host read from
    /// storage, where an unknown name is a newer host's and must be kept.
    pub fn from_record(name: &str) -> Status {
        Status::KNOWN.into_iter().find(|s| s.as_str() == name).unwrap_or_else(|| Status::Other(name.into()))
    }

    /// Whether the image is gone for clients: deleted, or deleted and waiting for the
    /// scrubber.
    pub fn is_deleted(&self) -> bool {
        matches!(self, Status::Deleted | Status::PendingDelete)
    }

    /// Whether the server may move an image from `self` to `to`.
    ///
    /// Glance's E0 transitions (every create reserves `queued`, an upload goes `saving`
    /// then `active` or `killed`, a location makes a queued image `active` directly, any
    /// image can be deleted, directly or through `pending_delete`) joined with modern
    /// Glance's (`glance/domain` `valid_state_targets`): staging and import, deactivation,
    /// an upload retried from `saving`, a failed glance-direct import back to its staged
    /// data (`importing` → `uploading`), and a scrubber restore of `pending_delete`.
    pub fn can_become(&self, to: &Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Queued, Saving | Uploading | Importing | Active | Killed | Deleted | PendingDelete)
                | (Saving, Active | Killed | Deleted | PendingDelete | Queued)
                | (Uploading, Importing | Queued | Killed | Deleted | PendingDelete)
                | (Importing, Active | Queued | Uploading | Killed | Deleted | PendingDelete)
                | (Active, Deleted | PendingDelete | Deactivated)
                | (Deactivated, Active | Deleted | PendingDelete)
                | (Killed, Deleted | PendingDelete)
                | (PendingDelete, Deleted | Active)
                | (Other(_), Deleted | PendingDelete)
        )
    }

    /// [`Status::can_become`] as a `Result`.
    pub fn check_transition(&self, to: &Status) -> Result<(), crate::Error> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(crate::Error::Transition { from: self.clone(), to: to.clone() })
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status a client names (a list filter, a registry request): only known ones, in any
/// case.
impl FromStr for Status {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::KNOWN.into_iter().find(|st| st.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            let names: Vec<&str> = Status::KNOWN.iter().map(Status::as_str).collect();
            crate::Error::invalid("status", format!("{s:?} is not one of {}", names.join(", ")))
        })
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Records keep unknown statuses: see [`Status::from_record`].
impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        if name.is_empty() {
            return Err(serde::de::Error::custom("a status cannot be empty"));
        }
        Ok(Status::from_record(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    #[test]
    fn upload_path_is_allowed() {
        assert!(Queued.can_become(&Saving));
        assert!(Saving.can_become(&Active));
        assert!(Saving.can_become(&Killed));
        assert!(Queued.can_become(&Active), "registering a location skips saving");
        assert!(Queued.can_become(&Uploading) && Uploading.can_become(&Importing) && Importing.can_become(&Active));
        assert!(Active.can_become(&Deactivated) && Deactivated.can_become(&Active));
    }

    #[test]
    fn no_way_back() {
        assert!(!Active.can_become(&Queued), "an active image never takes new data");
        assert!(!Active.can_become(&Saving));
        assert!(!Killed.can_become(&Active));
        assert!(!Deleted.can_become(&Active));
        assert!(!Deactivated.can_become(&Saving));
        assert!(Deleted.check_transition(&PendingDelete).is_err());
        for s in Status::KNOWN {
            assert!(!s.can_become(&s), "{s} -> {s} is not a transition");
        }
    }

    #[test]
    fn unknown_statuses_are_kept_and_may_only_be_deleted() {
        let future: Status = serde_json::from_str("\"archived\"").unwrap();
        assert_eq!(future, Other("archived".into()));
        assert_eq!(serde_json::to_string(&future).unwrap(), "\"archived\"");
        assert!(future.can_become(&Deleted) && future.can_become(&PendingDelete));
        for s in Status::KNOWN.into_iter().filter(|s| !s.is_deleted()) {
            assert!(!future.can_become(&s), "archived -> {s}");
        }
        assert!("archived".parse::<Status>().is_err(), "clients name known statuses only");
        assert!(serde_json::from_str::<Status>("\"\"").is_err());
    }

    #[test]
    fn names_round_trip() {
        for s in Status::KNOWN {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
            assert_eq!(s.as_str().to_uppercase().parse::<Status>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<Status>(&format!("\"{s}\"")).unwrap(), s);
        }
        let e = "available".parse::<Status>().unwrap_err().to_string();
        assert!(e.contains("deactivated"), "{e}");
    }
}
