//! Images and members as the API shows them, the metadata a create or update sends, and
//! list queries.
//!
//! Statuses and formats are plain strings here, not `tank-core`'s enums: a client must
//! keep working against a server that knows a format it does not.

use std::collections::BTreeMap;

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind, Result};

/// An image's metadata, as `HEAD`, `/v1/images/detail` and the create and update answers
/// show it. The JSON form uses the API's keys, so it serializes back to the same shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The image's id.
    pub id: String,
    /// A name for people; not unique.
    pub name: Option<String>,
    /// `queued`, `saving`, `active`, `killed`, `pending_delete` or `deleted`.
    pub status: String,
    /// Size of the data in bytes (0 until known).
    pub size: u64,
    /// Disk format (`raw`, `qcow2`, ...).
    pub disk_format: Option<String>,
    /// Container format (`bare`, `ovf`, ...).
    pub container_format: Option<String>,
    /// MD5 of the data, lower-case hex.
    pub checksum: Option<String>,
    /// Visible to every tenant.
    pub is_public: bool,
    /// Minimum RAM in MB to boot it.
    pub min_ram: u64,
    /// Minimum disk in GB to boot it.
    pub min_disk: u64,
    /// The tenant that owns it.
    pub owner: Option<String>,
    /// A protected image cannot be deleted.
    pub protected: bool,
    /// When it was created (UTC, `YYYY-MM-DDTHH:MM:SS.ffffff`).
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// When it was deleted.
    pub deleted_at: Option<String>,
    /// Whether it was deleted.
    pub deleted: bool,
    /// Free-form properties.
    pub properties: BTreeMap<String, String>,
    /// `public`, `community`, `shared` or `private`; v1 does not say (it has `is_public`).
    #[serde(default)]
    pub visibility: Option<String>,
    /// The algorithm of [`os_hash_value`](Self::os_hash_value) (`sha512`); v2 only.
    #[serde(default)]
    pub os_hash_algo: Option<String>,
    /// The data's hash with [`os_hash_algo`](Self::os_hash_algo), lower-case hex; v2 only.
    #[serde(default)]
    pub os_hash_value: Option<String>,
    /// Tags; v2 only.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The stores holding the data, by id; v2 only.
    #[serde(default)]
    pub stores: Vec<String>,
}

/// An entry of the brief list (`GET /v1/images`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSummary {
    /// The image's id.
    pub id: String,
    /// Its name.
    pub name: Option<String>,
    /// Disk format.
    pub disk_format: Option<String>,
    /// Container format.
    pub container_format: Option<String>,
    /// MD5 of the data.
    pub checksum: Option<String>,
    /// Size in bytes.
    pub size: u64,
}

impl From<Image> for ImageSummary {
    fn from(i: Image) -> ImageSummary {
        let Image { id, name, disk_format, container_format, checksum, size, .. } = i;
        ImageSummary { id, name, disk_format, container_format, checksum, size }
    }
}

/// A tenant an image is shared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The tenant.
    pub member_id: String,
    /// Whether the tenant may share the image further (v1; v2 members never may).
    pub can_share: bool,
    /// v2's answer of the member to the offer: `pending`, `accepted` or `rejected`. v1
    /// has none, and then the key is left out of the JSON form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// An image shared with a tenant (`GET /v1/shared-images/<member>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedImage {
    /// The image.
    pub image_id: String,
    /// Whether the tenant may share it further (v1).
    pub can_share: bool,
    /// The member's status (v2), as in [`Member`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// One membership of a [`Client::replace_members`](crate::Client::replace_members) call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberChange {
    /// The tenant.
    pub member_id: String,
    /// `None` keeps an existing member's right to share (new members get `false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_share: Option<bool>,
}

/// The fields Glance's `x-image-meta-<field>` headers carry, and v2's `visibility` and
/// `os_hidden`; anything else is a property.
pub const FIELDS: &[&str] = &[
    "id",
    "name",
    "size",
    "disk_format",
    "container_format",
    "checksum",
    "is_public",
    "protected",
    "min_ram",
    "min_disk",
    "owner",
    "store",
    "visibility",
    "os_hidden",
];

/// What a create or update sends: fields, properties, and where the data comes from when
/// it is not uploaded (`location`, `copy_from`).
///
/// ```
/// use tank_client::ImageMeta;
///
/// let meta = ImageMeta::new()
///     .name("cirros-0.6")
///     .disk_format("qcow2")
///     .container_format("bare")
///     .property("os_distro", "cirros");
/// // The command line's `key=value` words go through `set`: fields by name, the rest are
/// // properties.
/// let mut same = ImageMeta::new();
/// for word in ["name=cirros-0.6", "disk_format=qcow2", "container_format=bare", "os_distro=cirros"] {
///     let (k, v) = word.split_once('=').unwrap();
///     same.set(k, v);
/// }
/// assert_eq!(meta, same);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageMeta {
    /// Fields by their API name (one of [`FIELDS`]), sent as `x-image-meta-<field>`.
    pub fields: BTreeMap<String, String>,
    /// Custom properties, sent as `x-image-meta-property-<key>`.
    pub properties: BTreeMap<String, String>,
    /// The URL of data that stays where it is (`x-image-meta-location`).
    pub location: Option<String>,
    /// A URL the server copies the data from (`x-glance-api-copy-from`).
    pub copy_from: Option<String>,
    /// On update, replace the whole property set with [`properties`](Self::properties)
    /// (Glance's default). `false`, this type's default, keeps the properties not named.
    pub purge_properties: bool,
}

impl ImageMeta {
    /// Empty metadata.
    pub fn new() -> ImageMeta {
        ImageMeta::default()
    }

    /// Sets the name.
    pub fn name(self, name: impl Into<String>) -> ImageMeta {
        self.field("name", name)
    }

    /// Sets the disk format.
    pub fn disk_format(self, format: impl Into<String>) -> ImageMeta {
        self.field("disk_format", format)
    }

    /// Sets the container format.
    pub fn container_format(self, format: impl Into<String>) -> ImageMeta {
        self.field("container_format", format)
    }

    /// Makes the image public or private.
    pub fn is_public(self, public: bool) -> ImageMeta {
        self.field("is_public", if public { "true" } else { "false" })
    }

    /// Sets a field by its API name (`min_ram`, `protected`, ...).
    pub fn field(mut self, field: &str, value: impl Into<String>) -> ImageMeta {
        self.fields.insert(field.to_owned(), value.into());
        self
    }

    /// Sets a custom property.
    pub fn property(mut self, key: &str, value: impl Into<String>) -> ImageMeta {
        self.properties.insert(key.to_owned(), value.into());
        self
    }

    /// Sets `key` the way Glance's command line reads `key=value`: a field of [`FIELDS`]
    /// (`-` and `_` alike), `location`, `copy_from`, or else a custom property.
    pub fn set(&mut self, key: &str, value: &str) {
        let normal = key.replace('-', "_");
        match normal.as_str() {
            "location" => self.location = Some(value.to_owned()),
            "copy_from" => self.copy_from = Some(value.to_owned()),
            f if FIELDS.contains(&f) => {
                self.fields.insert(normal, value.to_owned());
            }
            _ => {
                self.properties.insert(key.to_owned(), value.to_owned());
            }
        }
    }

    /// The request headers this metadata becomes.
    pub(crate) fn headers(&self, headers: &mut HeaderMap) -> Result<()> {
        let mut put = |name: String, value: &str| -> Result<()> {
            let bad = |what: &str| Error::new(ErrorKind::BadInput, format!("{what} cannot be sent in header {name}"));
            let n = http::HeaderName::try_from(name.as_str()).map_err(|_| bad("this name"))?;
            // `http` lets bytes above 127 through, but the server reads headers as ASCII
            // text: refuse here, with the field's name, rather than get a vaguer 400.
            let printable = value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
            let v = http::HeaderValue::from_str(value)
                .ok()
                .filter(|_| printable)
                .ok_or_else(|| bad(&format!("value {value:?} (only printable ASCII can be sent)")))?;
            headers.insert(n, v);
            Ok(())
        };
        for (field, value) in &self.fields {
            put(format!("x-image-meta-{field}"), value)?;
        }
        for (key, value) in &self.properties {
            put(format!("x-image-meta-property-{}", key.to_ascii_lowercase()), value)?;
        }
        if let Some(location) = &self.location {
            put("x-image-meta-location".into(), location)?;
        }
        if let Some(url) = &self.copy_from {
            put("x-glance-api-copy-from".into(), url)?;
        }
        Ok(())
    }
}

impl Image {
    /// Reads an image from the `x-image-meta-*` headers of a `HEAD` or `GET` answer.
    pub fn from_headers(headers: &HeaderMap) -> Result<Image> {
        let text = |name: &str| -> Option<String> {
            headers.get(format!("x-image-meta-{name}")).and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        let bad = |what: &str| Error::new(ErrorKind::Server, format!("the server's answer has {what}"));
        let number = |name: &str| -> Result<u64> {
            match text(name) {
                None => Ok(0),
                Some(v) => v.parse().map_err(|_| bad(&format!("x-image-meta-{name}: {v:?}, not a number"))),
            }
        };
        let flag = |name: &str| text(name).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let mut properties = BTreeMap::new();
        for (name, value) in headers {
            if let Some(key) = name.as_str().strip_prefix("x-image-meta-property-") {
                properties.insert(key.to_owned(), value.to_str().unwrap_or_default().to_owned());
            }
        }
        Ok(Image {
            id: text("id").ok_or_else(|| bad("no x-image-meta-id header"))?,
            name: text("name"),
            status: text("status").unwrap_or_default(),
            size: number("size")?,
            disk_format: text("disk_format"),
            container_format: text("container_format"),
            checksum: text("checksum"),
            is_public: flag("is_public"),
            min_ram: number("min_ram")?,
            min_disk: number("min_disk")?,
            owner: text("owner"),
            protected: flag("protected"),
            created_at: text("created_at").unwrap_or_default(),
            updated_at: text("updated_at").unwrap_or_default(),
            deleted_at: text("deleted_at"),
            deleted: flag("deleted"),
            properties,
            visibility: None,
            os_hash_algo: None,
            os_hash_value: None,
            tags: Vec::new(),
            stores: Vec::new(),
        })
    }
}

/// A list request: filters, sort and paging (docs/api-v1.md, "Lists").
///
/// ```
/// use tank_client::ListQuery;
///
/// let q = ListQuery::new().filter("disk_format", "qcow2").property("os_distro", "debian").limit(10);
/// assert_eq!(q.query_string(), "disk_format=qcow2&property-os_distro=debian&limit=10");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Filters as (parameter, value), in order: `name`, `status`, `size_min`,
    /// `property-<key>`, `is_public`, ...
    pub filters: Vec<(String, String)>,
    /// Page size (the server caps it at its `api_limit_max`).
    pub limit: Option<u32>,
    /// The page starts after this image id.
    pub marker: Option<String>,
    /// Sort key (`name`, `size`, `created_at`, ...).
    pub sort_key: Option<String>,
    /// `asc` or `desc`.
    pub sort_dir: Option<String>,
}

impl ListQuery {
    /// No filters: the server's defaults.
    pub fn new() -> ListQuery {
        ListQuery::default()
    }

    /// Adds a filter parameter.
    pub fn filter(mut self, key: &str, value: impl Into<String>) -> ListQuery {
        self.filters.push((key.to_owned(), value.into()));
        self
    }

    /// Adds a filter on custom property `key`.
    pub fn property(self, key: &str, value: impl Into<String>) -> ListQuery {
        self.filter(&format!("property-{key}"), value)
    }

    /// Sets the page size.
    pub fn limit(mut self, limit: u32) -> ListQuery {
        self.limit = Some(limit);
        self
    }

    /// Starts after image `id`.
    pub fn marker(mut self, id: impl Into<String>) -> ListQuery {
        self.marker = Some(id.into());
        self
    }

    /// Sorts by `key` in direction `dir` (`asc`/`desc`).
    pub fn sort(mut self, key: impl Into<String>, dir: impl Into<String>) -> ListQuery {
        self.sort_key = Some(key.into());
        self.sort_dir = Some(dir.into());
        self
    }

    /// The query string, percent-encoded, without the `?`.
    pub fn query_string(&self) -> String {
        let mut pairs: Vec<(&str, String)> = self.filters.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        if let Some(l) = self.limit {
            pairs.push(("limit", l.to_string()));
        }
        for (key, value) in [("marker", &self.marker), ("sort_key", &self.sort_key), ("sort_dir", &self.sort_dir)] {
            if let Some(v) = value {
                pairs.push((key, v.clone()));
            }
        }
        pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so that any text is
/// safe as a path segment or a query value.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_sorts_fields_properties_and_sources() {
        let mut m = ImageMeta::new();
        for (k, v) in [
            ("name", "x"),
            ("disk-format", "raw"),
            ("min_ram", "512"),
            ("os_distro", "debian"),
            ("location", "http://example.com/a.img"),
            ("copy_from", "http://example.com/b.img"),
        ] {
            m.set(k, v);
        }
        assert_eq!(m.fields["name"], "x");
        assert_eq!(m.fields["disk_format"], "raw");
        assert_eq!(m.fields["min_ram"], "512");
        assert_eq!(m.properties["os_distro"], "debian");
        assert_eq!(m.location.as_deref(), Some("http://example.com/a.img"));
        assert_eq!(m.copy_from.as_deref(), Some("http://example.com/b.img"));
        let mut h = HeaderMap::new();
        m.headers(&mut h).unwrap();
        assert_eq!(h["x-image-meta-disk_format"], "raw");
        assert_eq!(h["x-image-meta-property-os_distro"], "debian");
        assert_eq!(h["x-glance-api-copy-from"], "http://example.com/b.img");
    }

    #[test]
    fn non_ascii_values_are_bad_input() {
        let mut h = HeaderMap::new();
        let e = ImageMeta::new().name("caf\u{e9}").headers(&mut h).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadInput);
        assert!(e.message().contains("x-image-meta-name"), "{e}");
    }

    #[test]
    fn reads_head_headers() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-image-meta-id", "abc"),
            ("x-image-meta-status", "active"),
            ("x-image-meta-size", "42"),
            ("x-image-meta-is_public", "True"),
            ("x-image-meta-protected", "False"),
            ("x-image-meta-property-os_distro", "cirros"),
        ] {
            h.insert(http::HeaderName::from_static(k), http::HeaderValue::from_static(v));
        }
        let image = Image::from_headers(&h).unwrap();
        assert_eq!((image.id.as_str(), image.size, image.is_public, image.protected), ("abc", 42, true, false));
        assert_eq!(image.properties["os_distro"], "cirros");
        h.insert("x-image-meta-size", http::HeaderValue::from_static("lots"));
        assert_eq!(Image::from_headers(&h).unwrap_err().kind(), ErrorKind::Server);
    }

    #[test]
    fn query_strings_are_encoded() {
        let q = ListQuery::new().filter("name", "a b&c").marker("m/1").sort("size", "asc");
        assert_eq!(q.query_string(), "name=a%20b%26c&marker=m%2F1&sort_key=size&sort_dir=asc");
    }
}
