//! Exit codes, and failures as one line a person can act on.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | the server or the network failed, or anything unexpected |
//! | 2 | bad input: a usage error (clap's own code), a bad field, file or value |
//! | 3 | not found: no such image or member; for `tank control`, the server is not running |
//! | 4 | refused: a conflict, a forbidden request, or a server that is already running |
//!
//! docs/cli.md carries the same table; scripts rely on it, so codes are only ever added.

use std::fmt;

use tank_client::ErrorKind;

/// What kind of failure ends a command, and so its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: the server or the network failed.
    Failure = 1,
    /// 2: the input was wrong.
    BadInput = 2,
    /// 3: what was asked for does not exist.
    NotFound = 3,
    /// 4: the request clashes with the state of things, or is not allowed.
    Refused = 4,
}

/// A failure with its exit code. The message is the whole line after `tank: `.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// What failed and what to do.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// A failure of kind `exit`.
pub fn fail(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure { exit, message: message.into() })
}

/// Bad input, exit code 2.
pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    fail(Exit::BadInput, message)
}

/// The exit code of `kind`.
pub fn exit_of(kind: ErrorKind) -> Exit {
    match kind {
        ErrorKind::NotFound => Exit::NotFound,
        ErrorKind::BadInput => Exit::BadInput,
        ErrorKind::Conflict | ErrorKind::Forbidden => Exit::Refused,
        _ => Exit::Failure,
    }
}

/// A client error as a one-line failure: `<what>: <error>; <what to do>`. `what` says what
/// the command was doing ("cannot show image 1234").
pub fn client_error(what: &str, e: tank_client::Error) -> anyhow::Error {
    with_hint(what, e, "check the id with `tank image index`")
}

/// As [`client_error`], for the member verbs, whose "not found" may be the image or the
/// member.
pub fn member_error(what: &str, e: tank_client::Error) -> anyhow::Error {
    with_hint(what, e, "check the image id with `tank image index` and the members with `tank member list IMAGE`")
}

fn with_hint(what: &str, e: tank_client::Error, not_found: &str) -> anyhow::Error {
    let hint = match e.kind() {
        ErrorKind::NotFound => not_found,
        ErrorKind::BadInput => "correct the request and retry (--help lists what each option takes)",
        ErrorKind::Conflict => "check the image's status with `tank image show ID`, then retry",
        ErrorKind::Forbidden => "give a token with --token or TANK_TOKEN, or ask the image's owner or an admin",
        ErrorKind::Network => "is the server running there? Set the URL with --url or TANK_URL",
        ErrorKind::Integrity => {
            "nothing was kept; download it again, and if it fails again tell the operator the stored data is damaged"
        }
        ErrorKind::Io => "check the file, its permissions and the free space",
        _ => "see the server's log for the cause",
    };
    // The client error's message already holds its causes; its source is left out so
    // that they are not printed twice.
    fail(exit_of(e.kind()), format!("{what}: {e}; {hint}"))
}

/// The exit code for a failed command: a [`Failure`]'s anywhere in the chain, else 1.
pub fn code(e: &anyhow::Error) -> u8 {
    e.chain().find_map(|c| c.downcast_ref::<Failure>()).map_or(Exit::Failure, |f| f.exit) as u8
}

/// Prints a command's failure as one line.
pub fn report(e: &anyhow::Error) {
    // `{:#}` joins the context chain into one line.
    eprintln!("tank: {}", format!("{e:#}").replace('\n', " "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_failure_kind() {
        assert_eq!(code(&anyhow::anyhow!("plain")), 1);
        assert_eq!(code(&bad_input("x")), 2);
        let e = client_error("cannot show image x", tank_client::Error::new(ErrorKind::NotFound, "image x not found"));
        assert_eq!(code(&e), 3);
        assert_eq!(code(&e.context("while testing")), 3, "context keeps the code");
        let e = client_error("cannot delete image x", tank_client::Error::new(ErrorKind::Forbidden, "protected"));
        assert_eq!(code(&e), 4);
        assert!(e.to_string().starts_with("cannot delete image x: protected; "), "{e}");
    }
}
