//! Sheepdog's result codes and socket failures as store errors. Every message starts with
//! the store's name (the host passes it to the client, so a 503 says which store failed)
//! and names the sheep by address and port.

use tank_sdk::{Error, ErrorKind};

use crate::proto::ResultCode;

/// The kind a result code means for Tank. NO_OBJ and NO_VDI are `NOT_FOUND` here; callers
/// that expect them (a lookup, a hole) check the code before calling this.
pub fn kind_of(code: ResultCode) -> ErrorKind {
    match code {
        ResultCode::NO_OBJ | ResultCode::NO_VDI | ResultCode::NO_TAG => ErrorKind::NOT_FOUND,
        ResultCode::VDI_EXIST => ErrorKind::DUPLICATE,
        ResultCode::NO_SPACE | ResultCode::FULL_VDI => ErrorKind::STORAGE_FULL,
        ResultCode::READONLY => ErrorKind::PERMISSION_DENIED,
        ResultCode::VDI_LOCKED => ErrorKind::CONFLICT,
        // The cluster cannot serve now but may later: starting, stopping, unformatted,
        // waiting for nodes, halted, or failing IO.
        ResultCode::STARTUP
        | ResultCode::SHUTDOWN
        | ResultCode::WAIT_FOR_FORMAT
        | ResultCode::WAIT_FOR_JOIN
        | ResultCode::JOIN_FAILED
        | ResultCode::HALT
        | ResultCode::EIO
        | ResultCode::NO_MEM
        | ResultCode::SYSTEM_ERROR => ErrorKind::UNAVAILABLE,
        _ => ErrorKind::BACKEND,
    }
}

/// `what` was answered with `code`.
pub fn from_result(what: &str, code: ResultCode) -> Error {
    let hint = match code {
        ResultCode::WAIT_FOR_FORMAT => "; format the cluster with `dog cluster format`",
        ResultCode::HALT => "; the cluster has too few nodes for its copies",
        ResultCode::VER_MISMATCH => "; this sheep does not speak protocol version 2",
        _ => "",
    };
    Error::new(kind_of(code), format!("{what} was answered {code}{hint}"))
}

/// A socket failure during `what`: refused connections, time-outs, resets and short reads
/// all mean the cluster is unavailable.
pub fn from_io(what: &str, e: &std::io::Error) -> Error {
    use std::io::ErrorKind as Io;
    let why = match e.kind() {
        Io::WouldBlock | Io::TimedOut => "no answer within the timeout".to_owned(),
        Io::UnexpectedEof => "the sheep closed the connection".to_owned(),
        _ => e.to_string(),
    };
    Error::new(ErrorKind::UNAVAILABLE, format!("{what} failed: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_map_to_kinds() {
        assert_eq!(kind_of(ResultCode::NO_VDI), ErrorKind::NOT_FOUND);
        assert_eq!(kind_of(ResultCode::VDI_EXIST), ErrorKind::DUPLICATE);
        assert_eq!(kind_of(ResultCode::NO_SPACE), ErrorKind::STORAGE_FULL);
        assert_eq!(kind_of(ResultCode::HALT), ErrorKind::UNAVAILABLE);
        assert_eq!(kind_of(ResultCode::INVALID_PARMS), ErrorKind::BACKEND);
        let e = from_result("store 'sheepdog': NEW_VDI of x at h:7000", ResultCode::WAIT_FOR_FORMAT);
        assert_eq!(
            e.message,
            "store 'sheepdog': NEW_VDI of x at h:7000 was answered WAIT_FOR_FORMAT (0x16); format the cluster with \
             `dog cluster format`"
        );
        assert!(e.retryable);
    }

    #[test]
    fn socket_failures_are_unavailable() {
        let e = from_io("connecting", &std::io::Error::from(std::io::ErrorKind::WouldBlock));
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::UNAVAILABLE, "connecting failed: no answer within the timeout")
        );
    }
}
