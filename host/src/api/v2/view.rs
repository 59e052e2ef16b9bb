//! The v2 JSON of images and memberships (reference §7.1): base attributes always
//! present (null when unset), custom properties beside them, timestamps in `Z` form, and
//! links relative to the API's root as Glance writes them. No location, path or store
//! credential is ever part of it.

use serde_json::{json, Map, Value};
use tank_core::{Image, ImageId, Member};

/// The path of image `id`.
pub fn image_path(id: ImageId) -> String {
    format!("/v2/images/{id}")
}

/// Which locations an image's JSON shows (Glance's `show_image_direct_url` and
/// `show_multiple_locations`, both off by default): for services that read stores directly
/// (Nova and Cinder on Ceph). Credentials in a location never appear: the part before `@`
/// is shown as `***`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shown {
    /// `direct_url`: the first location.
    pub direct_url: bool,
    /// `locations`: every location, with its store.
    pub locations: bool,
}

/// An image as v2 shows it.
pub fn image(image: &Image, shown: Shown) -> Value {
    let mut out = Map::new();
    // Custom properties first: a v1 property named like a base attribute never hides it.
    // A property named like an attribute (one an older server let in) is never shown: it
    // could pose as `direct_url` or `locations`.
    for (key, value) in image.properties.iter().filter(|(k, _)| !tank_core::ATTRIBUTE_NAMES.contains(&k.as_str())) {
        out.insert(key.clone(), json!(value));
    }
    let has_data = image.location().is_some() || image.size > 0;
    let path = image_path(image.id);
    let base = json!({
        "id": image.id.to_string(),
        "name": image.name,
        "status": image.status.as_str(),
        "visibility": image.visibility.as_str(),
        "protected": image.protected,
        "os_hidden": image.os_hidden,
        "checksum": image.checksum,
        "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value,
        "owner": image.owner,
        "size": has_data.then_some(image.size),
        "virtual_size": image.virtual_size,
        "min_ram": image.min_ram,
        "min_disk": image.min_disk,
        "disk_format": image.disk_format.map(|d| d.as_str()),
        "container_format": image.container_format.map(|c| c.as_str()),
        "created_at": image.created_at.zulu(),
        "updated_at": image.updated_at.zulu(),
        "tags": image.tags,
        "self": path,
        "file": format!("{path}/file"),
        "schema": "/v2/schemas/image",
    });
    if let Value::Object(base) = base {
        out.extend(base);
    }
    if shown.direct_url {
        if let Some(first) = image.location() {
            out.insert("direct_url".into(), json!(first.url.to_string()));
        }
    }
    if shown.locations {
        let list: Vec<Value> = image
            .locations
            .iter()
            .filter(|l| !l.is_staged())
            .map(|l| {
                let mut metadata = serde_json::Map::new();
                if let Some(store) = &l.store {
                    metadata.insert("store".into(), json!(store));
                }
                json!({"url": l.url.to_string(), "metadata": metadata})
            })
            .collect();
        out.insert("locations".into(), Value::Array(list));
    }
    // The stores holding the data, by id (multistore): names only, never a location.
    let stores: Vec<&str> =
        image.locations.iter().filter(|l| !l.is_staged()).filter_map(|l| l.store.as_deref()).collect();
    if !stores.is_empty() {
        out.insert("stores".into(), json!(stores.join(",")));
    }
    Value::Object(out)
}

/// A membership of image `id` as v2 shows it.
pub fn member(id: ImageId, m: &Member) -> Value {
    json!({
        "image_id": id.to_string(),
        "member_id": m.member_id,
        "status": m.status.as_str(),
        "created_at": m.created_at.zulu(),
        "updated_at": m.updated_at.zulu(),
        "schema": "/v2/schemas/member",
    })
}

#[cfg(test)]
mod tests {
    use tank_core::{ImageLocation, Location, Status, Timestamp};

    use super::*;

    #[test]
    fn base_attributes_are_always_there_and_win_over_properties() {
        let mut i = Image::new(ImageId::random(), Timestamp::from_unix_micros(1_331_632_800_000_123));
        i.properties.insert("name".into(), "from v1".into());
        i.properties.insert("owner_specified.openstack.md5".into(), "abc".into());
        i.properties.insert("direct_url".into(), "rbd://forged".into());
        let v = image(&i, Shown::default());
        assert_eq!(v["name"], Value::Null, "the base attribute, not the property");
        assert_eq!(v["owner_specified.openstack.md5"], "abc");
        assert!(v.get("direct_url").is_none(), "a property never poses as an attribute: {v}");
        assert_eq!(v["size"], Value::Null, "a queued image has no size yet");
        assert_eq!(v["created_at"], "2012-03-13T10:00:00Z");
        assert_eq!(v["file"], format!("/v2/images/{}/file", i.id));
        i.status = Status::Active;
        i.locations.push(ImageLocation::stored(Location::parse("file:///secret/path").unwrap(), "filesystem"));
        let v = image(&i, Shown::default());
        assert_eq!(v["size"], 0, "an empty image with data has size 0");
        assert_eq!(v["stores"], "filesystem");
        assert!(!v.to_string().contains("secret"), "no location: {v}");
        i.locations.insert(0, ImageLocation::stored(Location::parse("s3://key:hunter2@host/b/k").unwrap(), "s3"));
        let v = image(&i, Shown { direct_url: true, locations: true });
        assert_eq!(v["direct_url"], "s3://***@host/b/k");
        assert_eq!(v["locations"][0], json!({"url": "s3://***@host/b/k", "metadata": {"store": "s3"}}));
        assert_eq!(v["locations"][1]["url"], "file:///secret/path");
        assert!(!v.to_string().contains("hunter2"), "{v}");
    }
}
