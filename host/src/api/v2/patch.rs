//! `PATCH /v2/images/{id}` bodies (reference §7.4): the two JSON-patch media types Glance
//! accepts, read into operations on attributes, and turned into the images service's
//! changes against the image as it is.
//!
//! - `application/openstack-images-v2.1-json-patch`: RFC 6902 objects,
//!   `{"op": "replace", "path": "/name", "value": ...}`.
//! - `application/openstack-images-v2.0-json-patch`: the draft-4 form Glance began with,
//!   `{"replace": "/name", "value": ...}`; `add` on an attribute that exists is a conflict.
//!
//! Only `add`, `remove` and `replace` exist; paths are one level deep (`/<attribute>`,
//! with `~1` for `/` and `~0` for `~`).

use http::StatusCode;
use serde_json::Value;
use tank_core::{Change, Image};

use super::attrs::{self, Attr};
use crate::api::error::ApiError;

/// The media types a patch may have, as the `Accept-Patch` header lists them.
pub const ACCEPT_PATCH: &str =
    "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch";

/// Which form a patch has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// RFC 6902.
    V21,
    /// Draft 4.
    V20,
}

impl Dialect {
    /// The dialect of `content_type`: any other media type is 415, with `Accept-Patch`.
    pub fn of(content_type: Option<&str>) -> Result<Dialect, ApiError> {
        let media = content_type.and_then(|c| c.split(';').next()).map(str::trim).unwrap_or("");
        match media.to_ascii_lowercase().as_str() {
            "application/openstack-images-v2.1-json-patch" => Ok(Dialect::V21),
            "application/openstack-images-v2.0-json-patch" => Ok(Dialect::V20),
            _ => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("an image is changed with a JSON patch: send Content-Type {ACCEPT_PATCH}, not {media:?}"),
            )
            .with_header("accept-patch", ACCEPT_PATCH)),
        }
    }
}

/// One operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Sets an attribute; in the v2.0 dialect it must not exist yet.
    Add(Attr, Value),
    /// Removes a custom property.
    Remove(Attr),
    /// Sets an attribute that exists.
    Replace(Attr, Value),
}

/// Reads patch `body` of `dialect`: a JSON list of operations, each checked for its form,
/// its path and (for base attributes) whether a client may change it at all.
pub fn parse(body: &[u8], dialect: Dialect) -> Result<Vec<Op>, ApiError> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?;
    let list = doc.as_array().ok_or_else(|| {
        ApiError::bad_request(
            "a patch is a JSON list of operations, like [{\"op\": \"replace\", \"path\": \"/name\", \"value\": \"x\"}]",
        )
    })?;
    list.iter().enumerate().map(|(n, op)| operation(n, op, dialect)).collect()
}

fn operation(n: usize, op: &Value, dialect: Dialect) -> Result<Op, ApiError> {
    let bad = |why: String| ApiError::bad_request(format!("operation {n} of the patch: {why}"));
    let obj = op.as_object().ok_or_else(|| bad("each operation is a JSON object".into()))?;
    let (kind, path) = match dialect {
        Dialect::V21 => {
            let kind = obj.get("op").and_then(Value::as_str).ok_or_else(|| bad("it has no \"op\"".into()))?;
            let path = obj.get("path").and_then(Value::as_str).ok_or_else(|| bad("it has no \"path\"".into()))?;
            (kind, path)
        }
        Dialect::V20 => {
            let found: Vec<&str> = ["add", "remove", "replace"].into_iter().filter(|k| obj.contains_key(*k)).collect();
            let [kind] = found.as_slice() else {
                return Err(bad("a v2.0 operation names exactly one of add, remove, replace with its path".into()));
            };
            let path = obj[*kind].as_str().ok_or_else(|| bad(format!("the path of {kind} must be a string")))?;
            (*kind, path)
        }
    };
    let attr = attrs::classify(&pointer(path).map_err(bad)?)?;
    let value = || obj.get("value").cloned().ok_or_else(|| bad(format!("{kind} needs a \"value\"")));
    match kind {
        "add" => Ok(Op::Add(attr, value()?)),
        "replace" => Ok(Op::Replace(attr, value()?)),
        "remove" => Ok(Op::Remove(attr)),
        other => Err(bad(format!("the operation {other:?} is not supported; use add, remove or replace"))),
    }
}

/// The attribute a JSON pointer names: one level deep, `~1` and `~0` unescaped.
fn pointer(path: &str) -> Result<String, String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("the path {path:?} must start with /"));
    };
    if rest.contains('/') {
        return Err(format!("the path {path:?} is deeper than one attribute"));
    }
    if rest.is_empty() {
        return Err("the path names no attribute".into());
    }
    Ok(rest.replace("~1", "/").replace("~0", "~"))
}

/// The service changes `ops` make to `image`. Existence is checked against `image`, so a
/// patch must be turned into changes again if the image changes before it is written.
pub fn changes(ops: &[Op], dialect: Dialect, image: &Image) -> Result<Vec<Change>, ApiError> {
    let conflict = |why: String| ApiError::new(StatusCode::CONFLICT, why);
    // Properties as the patch so far leaves them.
    let mut present: std::collections::BTreeSet<String> = image.properties.keys().cloned().collect();
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Op::Add(attr, value) | Op::Replace(attr, value) => {
                let adding = matches!(op, Op::Add(..));
                if let Attr::Custom(key) = attr {
                    let exists = present.contains(key);
                    if !adding && !exists {
                        return Err(conflict(format!("property '{key}' does not exist; add it instead")));
                    }
                    if adding && exists && dialect == Dialect::V20 {
                        return Err(conflict(format!("property '{key}' is already present; replace it instead")));
                    }
                    present.insert(key.clone());
                }
                out.push(attrs::set(attr, value)?);
            }
            Op::Remove(Attr::Base(name)) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("attribute '{name}' may not be removed; replace it instead"),
                ))
            }
            Op::Remove(Attr::Custom(key)) => {
                if !present.remove(key) {
                    return Err(conflict(format!("property '{key}' does not exist")));
                }
                out.push(Change::RemoveProperty(key.clone()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use tank_core::{ImageId, Timestamp};

    use super::*;

    fn image() -> Image {
        let mut i = Image::new(ImageId::random(), Timestamp::from_unix_micros(1));
        i.properties.insert("os".into(), "linux".into());
        i
    }

    fn changes_of(body: &str, dialect: Dialect) -> Result<Vec<Change>, ApiError> {
        let ops = parse(body.as_bytes(), dialect)?;
        changes(&ops, dialect, &image())
    }

    #[test]
    fn both_dialects_read_into_the_same_changes() {
        let v21 = r#"[{"op": "replace", "path": "/name", "value": "Fedora 17"},
                      {"op": "replace", "path": "/tags", "value": ["fedora", "beefy"]},
                      {"op": "add", "path": "/owner_specified.openstack.md5", "value": "abc"},
                      {"op": "add", "path": "/a~1b~0c", "value": "x"},
                      {"op": "remove", "path": "/os"}]"#;
        let v20 = r#"[{"replace": "/name", "value": "Fedora 17"},
                      {"replace": "/tags", "value": ["fedora", "beefy"]},
                      {"add": "/owner_specified.openstack.md5", "value": "abc"},
                      {"add": "/a~1b~0c", "value": "x"},
                      {"remove": "/os"}]"#;
        let a = changes_of(v21, Dialect::V21).unwrap();
        assert_eq!(a, changes_of(v20, Dialect::V20).unwrap());
        assert_eq!(a[0], Change::Name(Some("Fedora 17".into())));
        assert_eq!(a[3], Change::SetProperty("a/b~c".into(), "x".into()));
        assert_eq!(a[4], Change::RemoveProperty("os".into()));
    }

    #[test]
    fn refusals_have_glances_statuses() {
        let status = |body: &str, d| changes_of(body, d).unwrap_err().status.as_u16();
        let v21 = Dialect::V21;
        assert_eq!(status(r#"{"op": "replace"}"#, v21), 400, "not a list");
        assert_eq!(status(r#"[{"op": "move", "from": "/a", "path": "/name"}]"#, v21), 400);
        assert_eq!(status(r#"[{"op": "test", "path": "/name", "value": "x"}]"#, v21), 400);
        assert_eq!(status(r#"[{"op": "replace", "path": "/a/b", "value": "x"}]"#, v21), 400, "too deep");
        assert_eq!(status(r#"[{"op": "replace", "path": "name", "value": "x"}]"#, v21), 400);
        assert_eq!(status(r#"[{"op": "replace", "path": "/name"}]"#, v21), 400, "no value");
        assert_eq!(status(r#"[{"op": "replace", "path": "/status", "value": "active"}]"#, v21), 403);
        assert_eq!(status(r#"[{"op": "replace", "path": "/deleted", "value": "true"}]"#, v21), 403);
        assert_eq!(status(r#"[{"op": "remove", "path": "/name"}]"#, v21), 403, "base attributes stay");
        assert_eq!(status(r#"[{"op": "replace", "path": "/nope", "value": "x"}]"#, v21), 409);
        assert_eq!(status(r#"[{"op": "remove", "path": "/nope"}]"#, v21), 409);
        assert_eq!(status(r#"[{"add": "/os", "value": "bsd"}]"#, Dialect::V20), 409, "draft 4: add is new only");
        assert_eq!(status(r#"[{"add": "/os", "replace": "/os", "value": "bsd"}]"#, Dialect::V20), 400);
        assert!(changes_of(r#"[{"op": "add", "path": "/os", "value": "bsd"}]"#, v21).is_ok(), "RFC 6902: add replaces");
        let e = Dialect::of(Some("application/json")).unwrap_err();
        assert_eq!(e.status, 415);
        assert_eq!(e.headers, vec![("accept-patch", ACCEPT_PATCH.to_string())]);
        assert_eq!(Dialect::of(Some("application/openstack-images-v2.1-json-patch; charset=UTF-8")).unwrap(), v21);
    }
}
