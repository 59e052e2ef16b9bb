//! v2 image attributes in requests: which names a client may set, and each value, checked
//! against the image schema, as a typed change for the images service. Create and patch
//! share this one table.

use serde_json::Value;
use tank_core::{Change, Visibility};

use super::schemas::{READ_ONLY, RESERVED};
use crate::api::error::ApiError;

/// What an attribute name in a request stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    /// A base attribute a client may set.
    Base(&'static str),
    /// A custom property.
    Custom(String),
}

/// The base attributes clients set.
const SETTABLE: &[&str] = &[
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "owner",
    "min_ram",
    "min_disk",
    "disk_format",
    "container_format",
    "tags",
];

/// Classifies attribute `name`: read-only and reserved names are refused (403), as are
/// `locations` (this server does not show them) and the server's `os_glance` namespace.
pub fn classify(name: &str) -> Result<Attr, ApiError> {
    let forbidden = |why: String| Err(ApiError::new(http::StatusCode::FORBIDDEN, why));
    if let Some(base) = SETTABLE.iter().find(|s| **s == name) {
        return Ok(Attr::Base(base));
    }
    if READ_ONLY.contains(&name) {
        return forbidden(format!("attribute '{name}' is read-only"));
    }
    if RESERVED.contains(&name) {
        return forbidden(format!("attribute '{name}' is reserved"));
    }
    if name == "locations" {
        return forbidden(
            "attribute 'locations' cannot be set: this server does not show locations (show_multiple_locations)".into(),
        );
    }
    if name.starts_with(tank_images::RESERVED_PREFIX) {
        return forbidden(format!(
            "attribute '{name}' is reserved: properties starting with {} are set by the server only",
            tank_images::RESERVED_PREFIX
        ));
    }
    if name.is_empty() || name.len() > 255 {
        return Err(ApiError::bad_request(format!(
            "invalid property name {name:?}: a property name is 1 to 255 characters"
        )));
    }
    Ok(Attr::Custom(name.to_owned()))
}

/// The change that sets attribute `attr` to `value`.
pub fn set(attr: &Attr, value: &Value) -> Result<Change, ApiError> {
    let name = match attr {
        Attr::Base(name) => *name,
        Attr::Custom(key) => {
            return match value {
                Value::String(v) => Ok(Change::SetProperty(key.clone(), v.clone())),
                _ => Err(bad(key, value, "custom properties are strings")),
            }
        }
    };
    let text = |max: usize| -> Result<Option<String>, ApiError> {
        match value {
            Value::Null => Ok(None),
            Value::String(s) if s.chars().count() <= max => Ok(Some(s.clone())),
            Value::String(_) => Err(bad(name, value, &format!("at most {max} characters"))),
            _ => Err(bad(name, value, "a string or null")),
        }
    };
    let flag = || value.as_bool().ok_or_else(|| bad(name, value, "true or false"));
    let count = || value.as_u64().ok_or_else(|| bad(name, value, "a whole number of 0 or more"));
    let parsed = |e: tank_core::Error| ApiError::bad_request(format!("invalid {name}: {e}"));
    Ok(match name {
        "name" => Change::Name(text(255)?),
        "owner" => Change::Owner(text(255)?),
        "protected" => Change::Protected(flag()?),
        "os_hidden" => Change::OsHidden(flag()?),
        "min_ram" => Change::MinRam(count()?),
        "min_disk" => Change::MinDisk(count()?),
        "visibility" => {
            let v = value.as_str().ok_or_else(|| bad(name, value, "public, community, shared or private"))?;
            Change::Visibility(v.parse::<Visibility>().map_err(parsed)?)
        }
        "disk_format" => Change::DiskFormat(text(255)?.map(|f| f.parse()).transpose().map_err(parsed)?),
        "container_format" => Change::ContainerFormat(text(255)?.map(|f| f.parse()).transpose().map_err(parsed)?),
        "tags" => {
            let list = value.as_array().ok_or_else(|| bad(name, value, "a list of strings"))?;
            let tags = list
                .iter()
                .map(|t| t.as_str().map(str::to_owned).ok_or_else(|| bad(name, value, "a list of strings")))
                .collect::<Result<_, _>>()?;
            Change::ReplaceTags(tags)
        }
        other => unreachable!("{other} is in SETTABLE"),
    })
}

fn bad(name: &str, value: &Value, want: &str) -> ApiError {
    let mut shown = value.to_string();
    if shown.len() > 80 {
        shown = format!("{}...", &shown[..shown.floor_char_boundary(77)]);
    }
    ApiError::bad_request(format!("invalid value {shown} for '{name}': it must be {want}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_are_classified_as_glance_does() {
        assert_eq!(classify("name").unwrap(), Attr::Base("name"));
        assert_eq!(
            classify("owner_specified.openstack.md5").unwrap(),
            Attr::Custom("owner_specified.openstack.md5".into())
        );
        for refused in ["id", "status", "checksum", "size", "self", "location", "deleted", "locations", "os_glance_x"] {
            assert_eq!(classify(refused).unwrap_err().status, 403, "{refused}");
        }
        assert_eq!(classify(&"k".repeat(256)).unwrap_err().status, 400);
    }

    #[test]
    fn values_are_checked_against_the_schema() {
        let base = |n: &str| classify(n).unwrap();
        assert_eq!(set(&base("min_ram"), &json!(512)).unwrap(), Change::MinRam(512));
        assert_eq!(set(&base("name"), &Value::Null).unwrap(), Change::Name(None));
        assert_eq!(
            set(&base("tags"), &json!(["a", "b"])).unwrap(),
            Change::ReplaceTags(["a".to_string(), "b".to_string()].into())
        );
        for (name, value) in [
            ("min_ram", json!(-1)),
            ("min_ram", json!("512")),
            ("protected", json!("yes")),
            ("visibility", json!("everyone")),
            ("disk_format", json!("floppy")),
            ("tags", json!("a")),
            ("tags", json!([1])),
            ("name", json!("n".repeat(256))),
            ("custom", json!(3)),
        ] {
            let e = set(&classify(name).unwrap(), &value).unwrap_err();
            assert_eq!(e.status, 400, "{name} = {value}");
            assert!(e.message.contains(name) || e.message.contains("disk_format"), "{}", e.message);
        }
    }
}
