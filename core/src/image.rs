//! Image records: what the registry stores of one image, the typed changes the images
//! service applies to them, and the record's stored form, which outlives the code that
//! wrote it.
//!
//! # The stored form
//! A record crosses the registry-driver boundary as JSON (see `sdk`), and registries are
//! shared by hosts of different versions during an upgrade. So:
//! - every record says which **schema** wrote it (`schema`, [`SCHEMA`] today; absent means
//!   1, the form before the images service);
//! - fields this code does not know are kept in [`Image::extra`] and written back
//!   unchanged, and so are statuses it does not know ([`Status::Other`]);
//! - schema-1 records are read by migration: `is_public` becomes a visibility, the one
//!   `location` and `store` become the first location, members become `accepted`;
//! - every write also carries schema 1's fields (`is_public`, `location`, `store`) derived
//!   from the real ones, so that an older host can still read what a newer one wrote.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{
    check_format_pair, ContainerFormat, DiskFormat, Error, ImageId, Location, Member, MemberStatus, Status, Timestamp,
    Visibility,
};

/// The schema of the records this code writes.
pub const SCHEMA: u32 = 2;

/// One image's metadata, as the registry driver stores it.
///
/// `locations` and `upload` are internal: they say where the data lives and who is
/// writing it, and are never part of an API response.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// The image's id.
    pub id: ImageId,
    /// A name for people; not unique.
    pub name: Option<String>,
    /// Where the image is in its life; only the server changes it.
    pub status: Status,
    /// Size of the data in bytes (0 until known; a queued image's is the declared size).
    pub size: u64,
    /// Size of the disk the image describes, when known.
    pub virtual_size: Option<u64>,
    /// Format of the disk image.
    pub disk_format: Option<DiskFormat>,
    /// Format of the container around it.
    pub container_format: Option<ContainerFormat>,
    /// MD5 of the data, lower-case hex.
    pub checksum: Option<String>,
    /// The algorithm of `os_hash_value` (`sha512`, ...).
    pub os_hash_algo: Option<String>,
    /// The data's hash with `os_hash_algo`, lower-case hex.
    pub os_hash_value: Option<String>,
    /// Who may see it.
    pub visibility: Visibility,
    /// Left out of default lists (v2 `os_hidden`).
    pub os_hidden: bool,
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
    /// Tags (v2).
    pub tags: BTreeSet<String>,
    /// Tenants it is shared with.
    pub members: Vec<Member>,
    /// Where its data lives, first the one reads use. Internal; may hold credentials.
    pub locations: Vec<ImageLocation>,
    /// The upload in progress, while the image is `saving`. Internal.
    pub upload: Option<Upload>,
    /// Fields a newer host wrote, kept as they were.
    pub extra: BTreeMap<String, Value>,
}

/// One place an image's data lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageLocation {
    /// The store's URI for the data. May hold credentials.
    pub url: Location,
    /// The store that wrote it, which removes it with the image; `None` for data a client
    /// registered by URL, which belongs to someone else and is left where it is.
    #[serde(default)]
    pub store: Option<String>,
    /// What the store or the client said about it (v2's location metadata).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Value>,
    /// Fields a newer host wrote, kept as they were.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
}

impl ImageLocation {
    /// Data a store wrote for Tank.
    pub fn stored(url: Location, store: impl Into<String>) -> ImageLocation {
        ImageLocation { url, store: Some(store.into()), metadata: BTreeMap::new(), extra: BTreeMap::new() }
    }

    /// Data a client registered at its own URL.
    pub fn external(url: Location) -> ImageLocation {
        ImageLocation { url, store: None, metadata: BTreeMap::new(), extra: BTreeMap::new() }
    }

    /// Data staged for an import (v2's `PUT /stage`) in the staging store: the image's
    /// until the import moves it into its store, never read as the image's data.
    pub fn staged(url: Location, store: impl Into<String>) -> ImageLocation {
        let mut l = ImageLocation::stored(url, store);
        l.metadata.insert(STAGED.into(), Value::Bool(true));
        l
    }

    /// Whether Tank wrote this data (an upload or a copy-from) and so removes it with the
    /// image.
    pub fn owned(&self) -> bool {
        self.store.is_some()
    }

    /// Whether this is staged data, not the image's data yet.
    pub fn is_staged(&self) -> bool {
        self.metadata.get(STAGED) == Some(&Value::Bool(true))
    }
}

/// The names of an image's attributes in any API (v2's base attributes and links, v1's
/// fields, the reserved names): never custom properties, so that no property can pose as
/// an attribute (a forged `direct_url` or `locations` would send Nova to other data).
pub const ATTRIBUTE_NAMES: &[&str] = &[
    "checksum",
    "container_format",
    "created_at",
    "deleted",
    "deleted_at",
    "direct_url",
    "disk_format",
    "file",
    "id",
    "is_public",
    "location",
    "locations",
    "min_disk",
    "min_ram",
    "name",
    "os_hash_algo",
    "os_hash_value",
    "os_hidden",
    "owner",
    "protected",
    "schema",
    "self",
    "size",
    "status",
    "stores",
    "tags",
    "updated_at",
    "virtual_size",
    "visibility",
];

/// The metadata key marking staged data.
const STAGED: &str = "staged";

/// An upload in progress: which server runs it and until when the others must leave it
/// alone. The server renews `lease_until` while bytes arrive; an upload whose lease has
/// passed has lost its server, and any server may clean it up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    /// The server running it (`node_id`).
    pub node: String,
    /// Tells this upload from another of the same image on the same node.
    pub token: String,
    /// The store receiving the data.
    pub store: String,
    /// Until when the server answers for it.
    pub lease_until: Timestamp,
}

impl Upload {
    /// Whether the lease has passed at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.lease_until < now
    }
}

/// The statuses whose data counts against the owner's storage quota.
const STORING: [Status; 5] =
    [Status::Active, Status::Saving, Status::Uploading, Status::Importing, Status::Deactivated];

impl Image {
    /// A fresh `queued` record with default fields.
    pub fn new(id: ImageId, now: Timestamp) -> Self {
        Image {
            id,
            name: None,
            status: Status::Queued,
            size: 0,
            virtual_size: None,
            disk_format: None,
            container_format: None,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            visibility: Visibility::Shared,
            os_hidden: false,
            min_ram: 0,
            min_disk: 0,
            owner: None,
            protected: false,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            deleted: false,
            properties: BTreeMap::new(),
            tags: BTreeSet::new(),
            members: Vec::new(),
            locations: Vec::new(),
            upload: None,
            extra: BTreeMap::new(),
        }
    }

    /// v1's view of the visibility.
    pub fn is_public(&self) -> bool {
        self.visibility == Visibility::Public
    }

    /// Whether the image is gone for clients.
    pub fn is_deleted(&self) -> bool {
        self.deleted || self.status.is_deleted()
    }

    /// The location reads use: the first.
    pub fn location(&self) -> Option<&ImageLocation> {
        self.locations.first().filter(|l| !l.is_staged())
    }

    /// The data staged for an import, if any.
    pub fn staged(&self) -> Option<&ImageLocation> {
        self.locations.iter().find(|l| l.is_staged())
    }

    /// The membership of `member_id`, if any.
    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == member_id)
    }

    /// The bytes this image counts against its owner's storage quota: its size while it
    /// holds or receives data (a saving image's size is the declared one, 0 if none).
    pub fn stored_bytes(&self) -> u64 {
        if STORING.contains(&self.status) && !self.deleted {
            self.size
        } else {
            0
        }
    }

    /// Moves the image to `to`, if the state machine allows it.
    pub fn set_status(&mut self, to: Status, now: Timestamp) -> Result<(), Error> {
        self.status.check_transition(&to)?;
        if to.is_deleted() {
            self.deleted = to == Status::Deleted;
            self.deleted_at = Some(now);
        } else if self.status == Status::PendingDelete {
            // A restore: the image is back.
            self.deleted_at = None;
        }
        self.status = to;
        self.updated_at = now;
        Ok(())
    }

    /// Applies `changes` in order, then checks the disk/container pairing rule. A refused
    /// list changes nothing.
    pub fn apply(&mut self, changes: &[Change], now: Timestamp) -> Result<(), Error> {
        let mut next = self.clone();
        for change in changes {
            next.apply_one(change, now)?;
        }
        check_format_pair(next.disk_format, next.container_format)?;
        next.updated_at = now;
        *self = next;
        Ok(())
    }

    fn apply_one(&mut self, change: &Change, now: Timestamp) -> Result<(), Error> {
        match change {
            Change::Name(v) => self.name = v.clone(),
            Change::DiskFormat(v) => self.disk_format = *v,
            Change::ContainerFormat(v) => self.container_format = *v,
            Change::MinRam(v) => self.min_ram = *v,
            Change::MinDisk(v) => self.min_disk = *v,
            Change::Protected(v) => self.protected = *v,
            Change::OsHidden(v) => self.os_hidden = *v,
            Change::Visibility(v) => self.visibility = *v,
            Change::Owner(v) => self.owner = v.clone(),
            Change::Size(v) => self.size = *v,
            Change::Checksum(v) => self.checksum = v.clone(),
            Change::VirtualSize(v) => self.virtual_size = *v,
            Change::SetProperty(k, v) => {
                self.properties.insert(k.clone(), v.clone());
            }
            Change::RemoveProperty(k) => {
                self.properties.remove(k);
            }
            Change::ReplaceProperties(all) => self.properties = all.clone(),
            Change::AddTag(t) => {
                self.tags.insert(t.clone());
            }
            Change::RemoveTag(t) => {
                self.tags.remove(t);
            }
            Change::ReplaceTags(all) => self.tags = all.clone(),
            Change::Status(to) => {
                if *to != self.status {
                    self.set_status(to.clone(), now)?;
                }
            }
            Change::Location(None) => {
                if !self.locations.is_empty() {
                    self.locations.remove(0);
                }
            }
            Change::Location(Some(url)) => match self.locations.first_mut() {
                Some(first) => first.url = url.clone(),
                None => self.locations.push(ImageLocation::external(url.clone())),
            },
            Change::Store(store) => match self.locations.first_mut() {
                Some(first) => first.store = store.clone(),
                None if store.is_none() => {}
                None => return Err(Error::invalid("store", "the image has no location for a store to hold")),
            },
        }
        Ok(())
    }
}

/// One typed change to an image's metadata. Client-facing APIs build the first group;
/// the record group is for the registry API, whose callers are trusted servers.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Sets the name.
    Name(Option<String>),
    /// Sets the disk format.
    DiskFormat(Option<DiskFormat>),
    /// Sets the container format.
    ContainerFormat(Option<ContainerFormat>),
    /// Sets the minimum RAM (MB).
    MinRam(u64),
    /// Sets the minimum disk (GB).
    MinDisk(u64),
    /// Sets the protection flag.
    Protected(bool),
    /// Sets `os_hidden`.
    OsHidden(bool),
    /// Sets the visibility.
    Visibility(Visibility),
    /// Sets the owner.
    Owner(Option<String>),
    /// Declares the size (queued images; the record API sets it at any time).
    Size(u64),
    /// Declares the MD5 (queued images; the record API sets it at any time).
    Checksum(Option<String>),
    /// Sets the virtual size.
    VirtualSize(Option<u64>),
    /// Sets one custom property.
    SetProperty(String, String),
    /// Removes one custom property.
    RemoveProperty(String),
    /// Replaces every custom property.
    ReplaceProperties(BTreeMap<String, String>),
    /// Adds a tag.
    AddTag(String),
    /// Removes a tag.
    RemoveTag(String),
    /// Replaces every tag.
    ReplaceTags(BTreeSet<String>),
    /// Record API: moves the status, through the state machine.
    Status(Status),
    /// Record API: sets (or, with `None`, removes) the first location's URL.
    Location(Option<Location>),
    /// Record API: sets the store of the first location.
    Store(Option<String>),
}

impl Change {
    /// Whether only the record API may make this change.
    pub fn is_record_change(&self) -> bool {
        matches!(self, Change::Status(_) | Change::Location(_) | Change::Store(_))
    }
}

/// A member as any schema stored it; schema 1's have no status or times.
#[derive(Deserialize)]
struct StoredMember {
    member_id: String,
    #[serde(default)]
    can_share: bool,
    status: Option<MemberStatus>,
    created_at: Option<Timestamp>,
    updated_at: Option<Timestamp>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

/// A record as any schema stored it.
#[derive(Deserialize)]
struct StoredImage {
    schema: Option<u32>,
    id: ImageId,
    name: Option<String>,
    status: Status,
    #[serde(default)]
    size: u64,
    virtual_size: Option<u64>,
    disk_format: Option<DiskFormat>,
    container_format: Option<ContainerFormat>,
    checksum: Option<String>,
    os_hash_algo: Option<String>,
    os_hash_value: Option<String>,
    visibility: Option<Visibility>,
    #[serde(default)]
    os_hidden: bool,
    #[serde(default)]
    min_ram: u64,
    #[serde(default)]
    min_disk: u64,
    owner: Option<String>,
    #[serde(default)]
    protected: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
    deleted_at: Option<Timestamp>,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    properties: BTreeMap<String, String>,
    #[serde(default)]
    tags: BTreeSet<String>,
    #[serde(default)]
    members: Vec<StoredMember>,
    locations: Option<Vec<ImageLocation>>,
    upload: Option<Upload>,
    // Schema 1's fields; from schema 2 on they are derived and ignored here.
    is_public: Option<bool>,
    location: Option<Location>,
    store: Option<String>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

impl From<StoredImage> for Image {
    fn from(s: StoredImage) -> Image {
        let legacy = s.schema.unwrap_or(1) < 2;
        let visibility = match (legacy, s.visibility) {
            (false, Some(v)) => v,
            _ => Visibility::from_is_public(s.is_public.unwrap_or(false)),
        };
        let (locations, upload) = if legacy {
            // Schema 1 kept one location and the store that wrote it, or, while saving,
            // the store receiving it. That upload's server is not known: its lease is
            // taken as passed, so any server may clean it up.
            match (s.location, s.store) {
                (Some(url), store) => (vec![ImageLocation { store, ..ImageLocation::external(url) }], None),
                (None, Some(store)) if s.status == Status::Saving => (
                    Vec::new(),
                    Some(Upload {
                        node: String::new(),
                        token: String::new(),
                        store,
                        lease_until: Timestamp::from_unix_micros(0),
                    }),
                ),
                (None, _) => (Vec::new(), None),
            }
        } else {
            (s.locations.unwrap_or_default(), s.upload)
        };
        let members = s
            .members
            .into_iter()
            .map(|m| Member {
                member_id: m.member_id,
                can_share: m.can_share,
                // Schema 1's members saw and listed the image: they had accepted it.
                status: m.status.unwrap_or(MemberStatus::Accepted),
                created_at: m.created_at.unwrap_or(s.created_at),
                updated_at: m.updated_at.unwrap_or(s.updated_at),
                extra: m.extra,
            })
            .collect();
        Image {
            id: s.id,
            name: s.name,
            status: s.status,
            size: s.size,
            virtual_size: s.virtual_size,
            disk_format: s.disk_format,
            container_format: s.container_format,
            checksum: s.checksum,
            os_hash_algo: s.os_hash_algo,
            os_hash_value: s.os_hash_value,
            visibility,
            os_hidden: s.os_hidden,
            min_ram: s.min_ram,
            min_disk: s.min_disk,
            owner: s.owner,
            protected: s.protected,
            created_at: s.created_at,
            updated_at: s.updated_at,
            deleted_at: s.deleted_at,
            deleted: s.deleted,
            properties: s.properties,
            tags: s.tags,
            members,
            locations,
            upload,
            extra: s.extra,
        }
    }
}

impl<'de> Deserialize<'de> for Image {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        StoredImage::deserialize(d).map(Image::from)
    }
}

/// The record as this code writes it: today's fields, schema 1's derived ones, and the
/// unknown ones it read.
#[derive(Serialize)]
struct Written<'a> {
    schema: u32,
    id: &'a ImageId,
    name: &'a Option<String>,
    status: &'a Status,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    virtual_size: Option<u64>,
    disk_format: Option<DiskFormat>,
    container_format: Option<ContainerFormat>,
    checksum: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os_hash_algo: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    os_hash_value: &'a Option<String>,
    visibility: Visibility,
    os_hidden: bool,
    min_ram: u64,
    min_disk: u64,
    owner: &'a Option<String>,
    protected: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
    deleted_at: Option<Timestamp>,
    deleted: bool,
    properties: &'a BTreeMap<String, String>,
    tags: &'a BTreeSet<String>,
    members: &'a [Member],
    locations: &'a [ImageLocation],
    #[serde(skip_serializing_if = "Option::is_none")]
    upload: &'a Option<Upload>,
    is_public: bool,
    location: Option<&'a Location>,
    store: Option<&'a str>,
    #[serde(flatten)]
    extra: &'a BTreeMap<String, Value>,
}

impl Serialize for Image {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let first = self.locations.first();
        Written {
            schema: SCHEMA,
            id: &self.id,
            name: &self.name,
            status: &self.status,
            size: self.size,
            virtual_size: self.virtual_size,
            disk_format: self.disk_format,
            container_format: self.container_format,
            checksum: &self.checksum,
            os_hash_algo: &self.os_hash_algo,
            os_hash_value: &self.os_hash_value,
            visibility: self.visibility,
            os_hidden: self.os_hidden,
            min_ram: self.min_ram,
            min_disk: self.min_disk,
            owner: &self.owner,
            protected: self.protected,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
            deleted: self.deleted,
            properties: &self.properties,
            tags: &self.tags,
            members: &self.members,
            locations: &self.locations,
            upload: &self.upload,
            is_public: self.is_public(),
            location: first.map(|l| &l.url),
            store: first.and_then(|l| l.store.as_deref()).or(self.upload.as_ref().map(|u| u.store.as_str())),
            extra: &self.extra,
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_unix_micros(1_000_000)
    }

    #[test]
    fn apply_keeps_pairing_and_changes_nothing_when_refused() {
        let mut img = Image::new(ImageId::random(), now());
        img.properties.insert("a".into(), "1".into());
        let refused = [Change::Name(Some("x".into())), Change::DiskFormat(Some(DiskFormat::Aki))];
        assert!(img.apply(&refused, now()).is_err(), "aki disk needs aki container");
        assert_eq!((img.disk_format, img.name.as_deref()), (None, None), "a refused list changes nothing");
        let ok = [
            Change::DiskFormat(Some(DiskFormat::Aki)),
            Change::ContainerFormat(Some(ContainerFormat::Aki)),
            Change::SetProperty("b".into(), "2".into()),
            Change::RemoveProperty("a".into()),
            Change::AddTag("t1".into()),
            Change::AddTag("t1".into()),
        ];
        img.apply(&ok, now()).unwrap();
        assert_eq!(img.properties.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(img.tags.len(), 1, "tags are a set");
        img.apply(&[Change::ReplaceProperties(BTreeMap::new()), Change::RemoveTag("t1".into())], now()).unwrap();
        assert!(img.properties.is_empty() && img.tags.is_empty());
    }

    #[test]
    fn record_changes_move_the_status_and_the_first_location() {
        let mut img = Image::new(ImageId::random(), now());
        assert!(img.apply(&[Change::Store(Some("fs".into()))], now()).is_err(), "no location to hold");
        let url = Location::parse("file:///x/y").unwrap();
        img.apply(&[Change::Location(Some(url.clone())), Change::Store(Some("fs".into()))], now()).unwrap();
        assert_eq!(img.locations, [ImageLocation::stored(url, "fs")]);
        assert!(img.apply(&[Change::Status(Status::Killed), Change::Status(Status::Active)], now()).is_err());
        assert_eq!(img.status, Status::Queued);
        img.apply(&[Change::Status(Status::Active)], now()).unwrap();
        img.apply(&[Change::Location(None)], now()).unwrap();
        assert!(img.locations.is_empty());
        assert!(Change::Status(Status::Active).is_record_change() && !Change::Name(None).is_record_change());
    }

    #[test]
    fn record_round_trips_through_json() {
        let mut img = Image::new(ImageId::random(), now());
        img.locations.push(ImageLocation::stored(Location::parse("file:///x/y").unwrap(), "fs"));
        img.locations.push(ImageLocation::external(Location::parse("http://h/z").unwrap()));
        img.members.push(Member::new("t1", true, now()));
        img.tags.insert("gold".into());
        img.os_hash_algo = Some("sha512".into());
        img.virtual_size = Some(7);
        img.upload = Some(Upload { node: "n".into(), token: "t".into(), store: "fs".into(), lease_until: now() });
        let json = serde_json::to_value(&img).unwrap();
        assert_eq!(json["schema"], SCHEMA);
        assert_eq!(
            (json["is_public"].clone(), json["location"].clone(), json["store"].clone()),
            (json!(false), json!("file:///x/y"), json!("fs"))
        );
        assert_eq!(serde_json::from_value::<Image>(json).unwrap(), img);
    }

    #[test]
    fn unknown_fields_and_statuses_survive_a_round_trip() {
        let mut json = serde_json::to_value(Image::new(ImageId::random(), now())).unwrap();
        json["status"] = json!("archived");
        json["schema"] = json!(7);
        json["retention"] = json!({"days": 30, "tiers": ["hot", "cold"]});
        let img: Image = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(img.status, Status::Other("archived".into()));
        assert_eq!(img.extra["retention"]["days"], 30);
        let mut back = serde_json::to_value(&img).unwrap();
        back["schema"] = json!(7);
        assert_eq!(back, json, "everything comes back as it was, but the schema this code writes");
    }

    #[test]
    fn schema_1_records_are_migrated() {
        let id = ImageId::random();
        let at = "2012-03-13T10:00:00.000000";
        let record = |extra: Value| {
            let mut r = json!({"id": id, "name": "old", "status": "active", "size": 5, "disk_format": "raw",
                "container_format": "bare", "checksum": null, "is_public": false, "min_ram": 0, "min_disk": 0,
                "owner": "acme", "protected": false, "created_at": at, "updated_at": at, "deleted_at": null,
                "deleted": false, "properties": {"k": "v"}});
            for (k, v) in extra.as_object().unwrap() {
                r[k] = v.clone();
            }
            serde_json::from_value::<Image>(r).unwrap()
        };
        let shared = record(json!({"members": [{"member_id": "friend", "can_share": true}],
            "location": "file:///var/lib/tank/images/x", "store": "fs"}));
        assert_eq!(shared.visibility, Visibility::Shared, "v1 private: owner and members");
        assert_eq!(
            shared.locations,
            [ImageLocation::stored(Location::parse("file:///var/lib/tank/images/x").unwrap(), "fs")]
        );
        let friend = &shared.members[0];
        assert_eq!(
            (friend.status, friend.can_share, friend.created_at.to_string()),
            (MemberStatus::Accepted, true, at.into())
        );
        let public = record(json!({"is_public": true, "location": "http://h/x"}));
        assert_eq!(public.visibility, Visibility::Public);
        assert!(!public.locations[0].owned(), "registered by URL: not Tank's data");
        let saving = record(json!({"status": "saving", "store": "fs"}));
        let upload = saving.upload.expect("the interrupted upload is known");
        assert!(saving.locations.is_empty());
        assert_eq!(upload.store, "fs");
        assert!(upload.expired(Timestamp::from_unix_micros(1)), "nobody renews a schema-1 upload");
        // Once written by this code, the visibility is what it says, whatever is_public says.
        let mut json = serde_json::to_value(&public).unwrap();
        json["visibility"] = json!("community");
        assert_eq!(serde_json::from_value::<Image>(json).unwrap().visibility, Visibility::Community);
    }

    #[test]
    fn stored_bytes_count_data_held_or_arriving() {
        let mut img = Image::new(ImageId::random(), now());
        img.size = 10;
        assert_eq!(img.stored_bytes(), 0, "a reservation holds nothing");
        img.set_status(Status::Saving, now()).unwrap();
        assert_eq!(img.stored_bytes(), 10);
        img.set_status(Status::Active, now()).unwrap();
        assert_eq!(img.stored_bytes(), 10);
        img.set_status(Status::PendingDelete, now()).unwrap();
        assert_eq!(img.stored_bytes(), 0);
    }

    #[test]
    fn deleting_sets_deleted_fields_and_a_restore_clears_them() {
        let mut img = Image::new(ImageId::random(), now());
        img.set_status(Status::Active, now()).unwrap();
        img.set_status(Status::PendingDelete, now()).unwrap();
        assert!(!img.deleted && img.deleted_at.is_some() && img.is_deleted());
        img.set_status(Status::Active, now()).unwrap();
        assert!(img.deleted_at.is_none() && !img.is_deleted());
        img.set_status(Status::Deleted, now()).unwrap();
        assert!(img.deleted && img.deleted_at.is_some());
        assert!(img.set_status(Status::Active, now()).is_err());
    }
}
