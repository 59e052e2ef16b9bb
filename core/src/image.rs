//! Image records and the validated changes a client may ask for.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{check_format_pair, ContainerFormat, DiskFormat, Error, ImageId, Location, Status, Timestamp};

/// One image's metadata, as the registry driver stores it.
///
/// `store` and `location` are internal: they say where the data lives and are never part
/// of an API response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// The image's id.
    pub id: ImageId,
    /// A name for people; not unique.
    pub name: Option<String>,
    /// Where the image is in its life; only the server changes it.
    pub status: Status,
    /// Size of the data in bytes (0 until known).
    pub size: u64,
    /// Format of the disk image.
    pub disk_format: Option<DiskFormat>,
    /// Format of the container around it.
    pub container_format: Option<ContainerFormat>,
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
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When it was deleted.
    pub deleted_at: Option<Timestamp>,
    /// Whether it was deleted.
    pub deleted: bool,
    /// Free-form properties.
    pub properties: BTreeMap<String, String>,
    /// Tenants it is shared with.
    #[serde(default)]
    pub members: Vec<Member>,
    /// Name of the store that holds (or is receiving) its data. Internal.
    #[serde(default)]
    pub store: Option<String>,
    /// Where its data lives. Internal; may hold credentials.
    #[serde(default)]
    pub location: Option<Location>,
}

/// A tenant an image is shared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The tenant.
    pub member_id: String,
    /// Whether the tenant may share the image further.
    pub can_share: bool,
}

impl Image {
    /// Whether Tank wrote the image's data (an upload or a copy-from) and so removes it
    /// with the image. Data a client registered by location (`store` unset) belongs to
    /// someone else and is left where it is.
    pub fn owns_data(&self) -> bool {
        self.store.is_some()
    }

    /// A fresh `queued` record with default fields.
    pub fn new(id: ImageId, now: Timestamp) -> Self {
        Image {
            id,
            name: None,
            status: Status::Queued,
            size: 0,
            disk_format: None,
            container_format: None,
            checksum: None,
            is_public: false,
            min_ram: 0,
            min_disk: 0,
            owner: None,
            protected: false,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            deleted: false,
            properties: BTreeMap::new(),
            members: Vec::new(),
            store: None,
            location: None,
        }
    }

    /// Moves the image to `to`, if the state machine allows it.
    pub fn set_status(&mut self, to: Status, now: Timestamp) -> Result<(), Error> {
        self.status.check_transition(to)?;
        self.status = to;
        self.updated_at = now;
        if matches!(to, Status::Deleted | Status::PendingDelete) {
            self.deleted = to == Status::Deleted;
            self.deleted_at = Some(now);
        }
        Ok(())
    }
}

/// The fields a client asked to set, parsed and checked. Empty means "leave as is".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImagePatch {
    /// A client-chosen id (create only).
    pub id: Option<ImageId>,
    /// New name.
    pub name: Option<String>,
    /// New disk format.
    pub disk_format: Option<DiskFormat>,
    /// New container format.
    pub container_format: Option<ContainerFormat>,
    /// Declared size: uploaded data must have exactly this many bytes.
    pub size: Option<u64>,
    /// Declared MD5: uploaded data must hash to it.
    pub checksum: Option<String>,
    /// New visibility.
    pub is_public: Option<bool>,
    /// New minimum RAM (MB).
    pub min_ram: Option<u64>,
    /// New minimum disk (GB).
    pub min_disk: Option<u64>,
    /// New owner.
    pub owner: Option<String>,
    /// New protection flag.
    pub protected: Option<bool>,
    /// The store to upload into, by name.
    pub store: Option<String>,
    /// Properties to set.
    pub properties: BTreeMap<String, String>,
    /// Replace the whole property set instead of merging into it.
    pub purge_properties: bool,
}

/// Fields only the server sets.
const READ_ONLY: &[&str] = &["status", "created_at", "updated_at", "deleted_at", "deleted"];

/// Fields the API handles itself rather than through the patch.
const HANDLED_ELSEWHERE: &[&str] = &["location", "copy_from"];

impl ImagePatch {
    /// Sets core field `field` (`disk_format`, `disk-format`, `is_public`, ...) from its
    /// text form, as the `x-image-meta-<field>` header carries it.
    ///
    /// # Errors
    /// A value that does not parse, a field that does not exist, or a read-only field.
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), Error> {
        let field = field.to_ascii_lowercase().replace('-', "_");
        let value = value.trim();
        match field.as_str() {
            "id" => self.id = Some(value.parse()?),
            "name" => self.name = Some(value.to_owned()),
            "disk_format" => self.disk_format = Some(value.parse()?),
            "container_format" => self.container_format = Some(value.parse()?),
            "size" => self.size = Some(parse_u64("size", value)?),
            "checksum" => {
                let ok = value.len() == 32 && value.chars().all(|c| c.is_ascii_hexdigit());
                if !ok {
                    return Err(Error::invalid("checksum", format!("{value:?} is not an MD5 in hex (32 hex digits)")));
                }
                self.checksum = Some(value.to_ascii_lowercase());
            }
            "is_public" => self.is_public = Some(parse_bool(value)),
            "protected" => self.protected = Some(parse_bool(value)),
            "min_ram" => self.min_ram = Some(parse_u64("min_ram", value)?),
            "min_disk" => self.min_disk = Some(parse_u64("min_disk", value)?),
            "owner" => self.owner = Some(value.to_owned()),
            "store" => self.store = Some(value.to_owned()),
            f if READ_ONLY.contains(&f) => {
                return Err(Error::invalid("image", format!("{f} is read-only: the server sets it")))
            }
            f if HANDLED_ELSEWHERE.contains(&f) => {}
            other => {
                return Err(Error::invalid(
                    "image",
                    format!("unknown field {other:?}; custom properties go in x-image-meta-property-{other}"),
                ))
            }
        }
        Ok(())
    }

    /// Applies the patch to `image`, keeping the disk/container pairing rule.
    pub fn apply(&self, image: &mut Image, now: Timestamp) -> Result<(), Error> {
        let disk = self.disk_format.or(image.disk_format);
        let container = self.container_format.or(image.container_format);
        check_format_pair(disk, container)?;
        macro_rules! take {
            ($($f:ident),*) => { $(if let Some(v) = &self.$f { image.$f = v.clone().into(); })* };
        }
        take!(name, disk_format, container_format, checksum, owner);
        take!(is_public, min_ram, min_disk, protected, size);
        if self.purge_properties {
            image.properties = self.properties.clone();
        } else {
            image.properties.extend(self.properties.clone());
        }
        image.updated_at = now;
        Ok(())
    }
}

fn parse_u64(field: &'static str, value: &str) -> Result<u64, Error> {
    value.parse().map_err(|_| Error::invalid(field, format!("{value:?} is not a whole number of 0 or more")))
}

/// Glance's rule: only the word `true` (any case) is true.
fn parse_bool(value: &str) -> bool {
    value.eq_ignore_ascii_case("true")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_unix_micros(1_000_000)
    }

    #[test]
    fn patch_parses_header_spellings() {
        let mut p = ImagePatch::default();
        p.set("disk-format", "qcow2").unwrap();
        p.set("Container_Format", "bare").unwrap();
        p.set("is-public", "TRUE").unwrap();
        p.set("min_ram", "512").unwrap();
        p.set("protected", "yes").unwrap();
        assert_eq!(p.disk_format, Some(DiskFormat::Qcow2));
        assert_eq!(p.container_format, Some(ContainerFormat::Bare));
        assert_eq!(p.is_public, Some(true));
        assert_eq!(p.protected, Some(false), "only 'true' is true");
        assert_eq!(p.min_ram, Some(512));
    }

    #[test]
    fn patch_refuses_bad_values_by_name() {
        let mut p = ImagePatch::default();
        assert!(p.set("size", "-1").unwrap_err().to_string().contains("size"));
        assert!(p.set("min_disk", "lots").unwrap_err().to_string().contains("min_disk"));
        assert!(p.set("checksum", "abc").unwrap_err().to_string().contains("MD5"));
        assert!(p.set("status", "active").unwrap_err().to_string().contains("read-only"));
        assert!(p.set("colour", "red").unwrap_err().to_string().contains("property-colour"));
    }

    #[test]
    fn apply_keeps_pairing_and_merges_properties() {
        let mut img = Image::new(ImageId::random(), now());
        img.properties.insert("a".into(), "1".into());
        let mut p = ImagePatch { disk_format: Some(DiskFormat::Aki), ..Default::default() };
        assert!(p.apply(&mut img, now()).is_err(), "aki disk needs aki container");
        assert_eq!(img.disk_format, None, "a refused patch changes nothing");
        p.container_format = Some(ContainerFormat::Aki);
        p.properties.insert("b".into(), "2".into());
        p.apply(&mut img, now()).unwrap();
        assert_eq!(img.properties.len(), 2);
        p.purge_properties = true;
        p.apply(&mut img, now()).unwrap();
        assert_eq!(img.properties.keys().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn record_round_trips_through_json() {
        let mut img = Image::new(ImageId::random(), now());
        img.location = Some(Location::parse("file:///x/y").unwrap());
        img.members.push(Member { member_id: "t1".into(), can_share: true });
        let json = serde_json::to_string(&img).unwrap();
        assert_eq!(serde_json::from_str::<Image>(&json).unwrap(), img);
    }

    #[test]
    fn deleting_sets_deleted_fields() {
        let mut img = Image::new(ImageId::random(), now());
        img.set_status(Status::Deleted, now()).unwrap();
        assert!(img.deleted && img.deleted_at.is_some());
        assert!(img.set_status(Status::Active, now()).is_err());
    }
}
