//! Image statuses and the transitions the server may make between them.
//!
//! Status is server-controlled: clients never set it (CVE-2015-5251), so the only way to
//! change it is [`Status::check_transition`], called by the host as an upload progresses.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// Where an image is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The id is reserved; no data has been uploaded yet.
    Queued,
    /// Data is being uploaded.
    Saving,
    /// The image is complete and can be downloaded.
    Active,
    /// An upload failed; the image cannot be read.
    Killed,
    /// The image was deleted; the record is kept but unusable.
    Deleted,
    /// Deleted, but its data waits for the scrubber.
    PendingDelete,
}

impl Status {
    /// Every status, in life order.
    pub const ALL: [Status; 6] =
        [Status::Queued, Status::Saving, Status::Active, Status::Killed, Status::Deleted, Status::PendingDelete];

    /// The name clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Saving => "saving",
            Status::Active => "active",
            Status::Killed => "killed",
            Status::Deleted => "deleted",
            Status::PendingDelete => "pending_delete",
        }
    }

    /// Whether the server may move an image from `self` to `to`.
    ///
    /// These are the transitions Glance's E0 code performs: every create reserves
    /// (`queued`), an upload goes `saving` then `active` or `killed`, a location makes a
    /// queued image `active` directly, and any image can be deleted (directly, or through
    /// `pending_delete` when deletes are delayed).
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Queued, Saving | Active | Killed | Deleted | PendingDelete)
                | (Saving, Active | Killed | Deleted | PendingDelete)
                | (Active, Deleted | PendingDelete)
                | (Killed, Deleted | PendingDelete)
                | (PendingDelete, Deleted)
        )
    }

    /// [`Status::can_become`] as a `Result`.
    pub fn check_transition(self, to: Status) -> Result<(), crate::Error> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(crate::Error::Transition { from: self, to })
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL.into_iter().find(|st| st.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            crate::Error::invalid(
                "status",
                format!("{s:?} is not one of queued, saving, active, killed, deleted, pending_delete"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    #[test]
    fn upload_path_is_allowed() {
        assert!(Queued.can_become(Saving));
        assert!(Saving.can_become(Active));
        assert!(Saving.can_become(Killed));
        assert!(Queued.can_become(Active), "registering a location skips saving");
    }

    #[test]
    fn no_way_back() {
        assert!(!Active.can_become(Queued), "an active image never takes new data");
        assert!(!Active.can_become(Saving));
        assert!(!Killed.can_become(Active));
        assert!(!Deleted.can_become(Active));
        assert!(Deleted.check_transition(PendingDelete).is_err());
        for s in Status::ALL {
            assert!(!s.can_become(s), "{s} -> {s} is not a transition");
        }
    }

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!("available".parse::<Status>().is_err());
    }
}
