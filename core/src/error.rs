//! The one error type of the domain: a rule was broken by some input.

/// A domain rule was broken. The message says which value was wrong and why, in words a
/// client can act on; the API answers these with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A field's value is not acceptable.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field, as a client names it (e.g. `disk_format`).
        field: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// A status change that the image state machine does not allow.
    #[error("an image cannot go from {from} to {to}")]
    Transition {
        /// The status the image has.
        from: crate::Status,
        /// The status that was asked for.
        to: crate::Status,
    },
}

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid { field, reason: reason.into() }
    }
}
