//! Image metadata on the wire: `x-image-meta-*` request headers into typed changes, and
//! an [`Image`] out as headers or JSON.
//!
//! Both views are built field by field from an explicit list, so that internal fields
//! (`location`, `store`, `members`) can never leak into a response by being added to the
//! record.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use tank_core::{Change, Image, ImageId, Visibility};

use super::error::ApiError;

const META: &str = "x-image-meta-";
const PROPERTY: &str = "x-image-meta-property-";

/// What the metadata headers of a request ask for.
#[derive(Debug, Default)]
pub struct RequestMeta {
    /// A client-chosen id (`x-image-meta-id`).
    pub id: Option<ImageId>,
    /// Core fields, as changes.
    pub fields: Vec<Change>,
    /// Custom properties (`x-image-meta-property-*`).
    pub properties: BTreeMap<String, String>,
    /// The store to upload into (`x-image-meta-store`).
    pub store: Option<String>,
    /// `x-image-meta-location`.
    pub location: Option<String>,
    /// `x-glance-api-copy-from` / `x-tank-api-copy-from`.
    pub copy_from: Option<String>,
}

impl RequestMeta {
    /// The changes the request asks for. v1 replaces the property set on a metadata
    /// update unless told not to (`purge`), and merges properties otherwise.
    pub fn changes(&self, purge: bool) -> Vec<Change> {
        let mut changes = self.fields.clone();
        if purge {
            changes.push(Change::ReplaceProperties(self.properties.clone()));
        } else {
            changes.extend(self.properties.iter().map(|(k, v)| Change::SetProperty(k.clone(), v.clone())));
        }
        changes
    }

    /// The size the request declares.
    pub fn size(&self) -> Option<u64> {
        self.fields.iter().rev().find_map(|c| if let Change::Size(s) = c { Some(*s) } else { None })
    }

    /// Sets core field `field` (`disk_format`, `disk-format`, `is_public`, ...) from its
    /// text form, as the `x-image-meta-<field>` header carries it.
    fn set(&mut self, field: &str, value: &str) -> Result<(), ApiError> {
        let field = field.to_ascii_lowercase().replace('-', "_");
        let bad = |e: tank_core::Error| ApiError::bad_request(e.to_string());
        let invalid = |field: &str, why: String| ApiError::bad_request(format!("invalid {field}: {why}"));
        let count = |name: &str| {
            value.parse::<u64>().map_err(|_| invalid(name, format!("{value:?} is not a whole number of 0 or more")))
        };
        let change = match field.as_str() {
            "id" => {
                self.id = Some(value.parse().map_err(bad)?);
                return Ok(());
            }
            "store" => {
                self.store = Some(value.to_owned());
                return Ok(());
            }
            "name" => Change::Name(Some(value.to_owned())),
            "disk_format" => Change::DiskFormat(Some(value.parse().map_err(bad)?)),
            "container_format" => Change::ContainerFormat(Some(value.parse().map_err(bad)?)),
            "size" => Change::Size(count("size")?),
            "checksum" => {
                if !(value.len() == 32 && value.chars().all(|c| c.is_ascii_hexdigit())) {
                    return Err(invalid("checksum", format!("{value:?} is not an MD5 in hex (32 hex digits)")));
                }
                Change::Checksum(Some(value.to_ascii_lowercase()))
            }
            "is_public" => Change::Visibility(Visibility::from_is_public(glance_true(value))),
            "protected" => Change::Protected(glance_true(value)),
            "min_ram" => Change::MinRam(count("min_ram")?),
            "min_disk" => Change::MinDisk(count("min_disk")?),
            "owner" => Change::Owner(Some(value.to_owned())),
            "status" | "created_at" | "updated_at" | "deleted_at" | "deleted" => {
                return Err(invalid("image", format!("{field} is read-only: the server sets it")))
            }
            // The API handles these itself.
            "location" | "copy_from" => return Ok(()),
            other => {
                return Err(invalid(
                    "image",
                    format!("unknown field {other:?}; custom properties go in x-image-meta-property-{other}"),
                ))
            }
        };
        self.fields.push(change);
        Ok(())
    }
}

/// Glance's rule: only the word `true` (any case) is true.
fn glance_true(value: &str) -> bool {
    value.eq_ignore_ascii_case("true")
}

/// Parses every `x-image-meta-*` header, as Glance does: names are case-insensitive,
/// `-` and `_` are the same in field names, empty values mean "not given".
pub fn from_headers(headers: &HeaderMap) -> Result<RequestMeta, ApiError> {
    let mut meta = RequestMeta::default();
    for (name, value) in headers {
        let name = name.as_str();
        let text = || {
            value.to_str().map(str::trim).map_err(|_| {
                ApiError::bad_request(format!("header {name} must be printable ASCII (percent-encode other text)"))
            })
        };
        if let Some(key) = name.strip_prefix(PROPERTY) {
            if key.is_empty() {
                return Err(ApiError::bad_request("header x-image-meta-property- needs a property name after it"));
            }
            meta.properties.insert(key.replace('-', "_"), text()?.to_owned());
        } else if let Some(field) = name.strip_prefix(META) {
            let value = text()?;
            if value.is_empty() {
                continue;
            }
            match field.replace('-', "_").as_str() {
                "location" => meta.location = Some(value.to_owned()),
                _ => meta.set(field, value)?,
            }
        } else if name == "x-glance-api-copy-from" || name == "x-tank-api-copy-from" {
            meta.copy_from = Some(text()?.to_owned());
        }
    }
    Ok(meta)
}

/// The image as `x-image-meta-*` headers (HEAD and GET), with `Location` and `ETag`.
pub fn to_headers(image: &Image, headers: &mut HeaderMap) {
    let mut put = |name: &str, value: &str| {
        // A value that is not a legal header (a control character in a property) is left
        // out rather than failing the whole response; JSON views still carry it.
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
            headers.insert(n, v);
        }
    };
    let id = image.id.to_string();
    put("x-image-meta-id", &id);
    if let Some(name) = &image.name {
        put("x-image-meta-name", name);
    }
    put("x-image-meta-status", image.status.as_str());
    put("x-image-meta-size", &image.size.to_string());
    if let Some(d) = image.disk_format {
        put("x-image-meta-disk_format", d.as_str());
    }
    if let Some(c) = image.container_format {
        put("x-image-meta-container_format", c.as_str());
    }
    if let Some(sum) = &image.checksum {
        put("x-image-meta-checksum", sum);
        put("etag", sum);
    }
    put("x-image-meta-is_public", bool_text(image.is_public()));
    put("x-image-meta-min_ram", &image.min_ram.to_string());
    put("x-image-meta-min_disk", &image.min_disk.to_string());
    if let Some(owner) = &image.owner {
        put("x-image-meta-owner", owner);
    }
    put("x-image-meta-protected", bool_text(image.protected));
    put("x-image-meta-created_at", &image.created_at.to_string());
    put("x-image-meta-updated_at", &image.updated_at.to_string());
    if let Some(t) = image.deleted_at {
        put("x-image-meta-deleted_at", &t.to_string());
    }
    put("x-image-meta-deleted", bool_text(image.deleted));
    for (k, v) in &image.properties {
        put(&format!("{PROPERTY}{}", k.to_ascii_lowercase()), v);
    }
    put("location", &format!("/v1/images/{id}"));
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// The detailed JSON view (`/images/detail`, POST and PUT responses).
pub fn detail(image: &Image) -> Value {
    json!({
        "id": image.id.to_string(),
        "name": image.name,
        "status": image.status.as_str(),
        "size": image.size,
        "disk_format": image.disk_format.map(|d| d.as_str()),
        "container_format": image.container_format.map(|c| c.as_str()),
        "checksum": image.checksum,
        "is_public": image.is_public(),
        "min_ram": image.min_ram,
        "min_disk": image.min_disk,
        "owner": image.owner,
        "protected": image.protected,
        "created_at": image.created_at.to_string(),
        "updated_at": image.updated_at.to_string(),
        "deleted_at": image.deleted_at.map(|t| t.to_string()),
        "deleted": image.deleted,
        "properties": image.properties,
    })
}

/// The brief JSON view (`/images`).
pub fn brief(image: &Image) -> Value {
    json!({
        "id": image.id.to_string(),
        "name": image.name,
        "disk_format": image.disk_format.map(|d| d.as_str()),
        "container_format": image.container_format.map(|c| c.as_str()),
        "checksum": image.checksum,
        "size": image.size,
    })
}

#[cfg(test)]
mod tests {
    use tank_core::{DiskFormat, ImageLocation, Location, Timestamp};

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::try_from(*k).unwrap(), HeaderValue::from_str(v).unwrap())).collect()
    }

    #[test]
    fn parses_fields_properties_and_spellings() {
        let m = from_headers(&headers(&[
            ("x-image-meta-name", "cirros"),
            ("x-image-meta-disk-format", "qcow2"),
            ("x-image-meta-container_format", "bare"),
            ("x-image-meta-property-os-distro", "ubuntu"),
            ("x-image-meta-min_ram", ""),
            ("x-image-meta-location", "http://example.com/x"),
            ("content-type", "application/octet-stream"),
        ]))
        .unwrap();
        assert!(m.fields.contains(&Change::Name(Some("cirros".into()))));
        assert!(m.fields.contains(&Change::DiskFormat(Some(DiskFormat::Qcow2))));
        assert_eq!(m.properties["os_distro"], "ubuntu");
        assert!(!m.fields.iter().any(|c| matches!(c, Change::MinRam(_))), "an empty value means not given");
        assert_eq!(m.location.as_deref(), Some("http://example.com/x"));
    }

    #[test]
    fn spellings_values_and_glances_booleans() {
        let m = from_headers(&headers(&[
            ("x-image-meta-is-public", "TRUE"),
            ("x-image-meta-protected", "yes"),
            ("x-image-meta-min-ram", "512"),
            ("x-image-meta-size", "42"),
        ]))
        .unwrap();
        assert!(m.fields.contains(&Change::Visibility(Visibility::Public)));
        assert!(m.fields.contains(&Change::Protected(false)), "only 'true' is true");
        assert!(m.fields.contains(&Change::MinRam(512)));
        assert_eq!(m.size(), Some(42));
        let public_false = from_headers(&headers(&[("x-image-meta-is_public", "false")])).unwrap();
        assert_eq!(public_false.fields, [Change::Visibility(Visibility::Shared)], "v1 private is v2 shared");
        for (name, value, says) in [
            ("x-image-meta-size", "-1", "size"),
            ("x-image-meta-min_disk", "lots", "min_disk"),
            ("x-image-meta-checksum", "abc", "MD5"),
            ("x-image-meta-id", "42", "UUID"),
        ] {
            let e = from_headers(&headers(&[(name, value)])).unwrap_err();
            assert!(e.message.contains(says), "{name}: {}", e.message);
        }
        let m = from_headers(&headers(&[("x-image-meta-property-a", "1")])).unwrap();
        assert_eq!(m.changes(true), [Change::ReplaceProperties([("a".into(), "1".into())].into())]);
        assert_eq!(m.changes(false), [Change::SetProperty("a".into(), "1".into())]);
    }

    #[test]
    fn refuses_status_and_unknown_fields() {
        let e = from_headers(&headers(&[("x-image-meta-status", "active")])).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("read-only"), "{}", e.message);
        let e = from_headers(&headers(&[("x-image-meta-colour", "red")])).unwrap_err();
        assert!(e.message.contains("x-image-meta-property-colour"), "{}", e.message);
    }

    #[test]
    fn views_never_show_the_location() {
        let mut img = Image::new(ImageId::random(), Timestamp::from_unix_micros(0));
        img.locations.push(ImageLocation::stored(Location::parse("file:///secret/place").unwrap(), "fs"));
        let mut h = HeaderMap::new();
        to_headers(&img, &mut h);
        for (k, v) in &h {
            assert!(!v.to_str().unwrap().contains("secret"), "header {k} leaks the location");
        }
        assert_eq!(h["location"], format!("/v1/images/{}", img.id));
        for view in [detail(&img), brief(&img)] {
            let text = view.to_string();
            assert!(!text.contains("secret") && !text.contains("\"store\""), "{text}");
        }
    }
}
