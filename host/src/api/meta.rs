//! Image metadata on the wire: `x-image-meta-*` request headers into an [`ImagePatch`], and
//! an [`Image`] out as headers or JSON.
//!
//! Both views are built field by field from an explicit list, so that internal fields
//! (`location`, `store`, `members`) can never leak into a response by being added to the
//! record.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use tank_core::{Image, ImagePatch};

use super::error::ApiError;

const META: &str = "x-image-meta-";
const PROPERTY: &str = "x-image-meta-property-";

/// What the metadata headers of a request ask for.
#[derive(Debug, Default)]
pub struct RequestMeta {
    /// Core fields and properties.
    pub patch: ImagePatch,
    /// `x-image-meta-location`, handled by the API itself.
    pub location: Option<String>,
    /// `x-glance-api-copy-from` / `x-tank-api-copy-from`.
    pub copy_from: Option<String>,
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
            meta.patch.properties.insert(key.replace('-', "_"), text()?.to_owned());
        } else if let Some(field) = name.strip_prefix(META) {
            let value = text()?;
            if value.is_empty() {
                continue;
            }
            match field.replace('-', "_").as_str() {
                "location" => meta.location = Some(value.to_owned()),
                _ => meta.patch.set(field, value)?,
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
    put("x-image-meta-is_public", bool_text(image.is_public));
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
        "is_public": image.is_public,
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
    use tank_core::{ImageId, Location, Timestamp};

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
        assert_eq!(m.patch.name.as_deref(), Some("cirros"));
        assert_eq!(m.patch.disk_format.map(|d| d.as_str()), Some("qcow2"));
        assert_eq!(m.patch.properties["os_distro"], "ubuntu");
        assert_eq!(m.patch.min_ram, None, "an empty value means not given");
        assert_eq!(m.location.as_deref(), Some("http://example.com/x"));
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
        img.location = Some(Location::parse("file:///secret/place").unwrap());
        img.store = Some("fs".into());
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
