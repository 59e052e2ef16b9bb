//! `GET /v2/schemas/{image,images,member,members}`: the JSON Schemas clients build their
//! models from (python-glanceclient validates every create and update against the image
//! schema; Nova picks a disk format from its enum), and the attribute classes the create
//! and patch handlers check requests against.

use serde_json::{json, Value};
use tank_core::{ContainerFormat, DiskFormat, MemberStatus, Status, Visibility};

use crate::config::ApiSettings;

/// Attributes only the server sets: a request that names one is refused (403).
pub const READ_ONLY: &[&str] = &[
    "checksum",
    "created_at",
    "direct_url",
    "file",
    "id",
    "os_hash_algo",
    "os_hash_value",
    "schema",
    "self",
    "size",
    "status",
    "stores",
    "updated_at",
    "virtual_size",
];

/// Attribute names that are neither base attributes nor custom properties (403).
pub const RESERVED: &[&str] = &["deleted", "deleted_at", "location"];

const UUID: &str = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";

/// The image schema, its format enums the configured ones.
pub fn image(api: &ApiSettings) -> Value {
    let mut disk: Vec<Value> = vec![Value::Null];
    disk.extend(api.disk_formats.iter().map(|f| json!(DiskFormat::as_str(*f))));
    let mut container: Vec<Value> = vec![Value::Null];
    container.extend(api.container_formats.iter().map(|f| json!(ContainerFormat::as_str(*f))));
    let statuses: Vec<&str> = Status::KNOWN.iter().map(|s| s.as_str()).collect();
    let visibilities: Vec<&str> = Visibility::ALL.iter().map(|v| v.as_str()).collect();
    let ro = |kind: Value, description: &str| json!({"type": kind, "readOnly": true, "description": description});
    json!({
        "name": "image",
        "properties": {
            "id": {"type": "string", "pattern": UUID, "description": "An identifier for the image"},
            "name": {"type": ["null", "string"], "maxLength": 255, "description": "Descriptive name for the image"},
            "status": {"type": "string", "readOnly": true, "enum": statuses, "description": "Status of the image"},
            "visibility": {"type": "string", "enum": visibilities, "description": "Scope of image accessibility"},
            "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
            "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
            "checksum": {"type": ["null", "string"], "readOnly": true, "maxLength": 32, "description": "md5 hash of image contents."},
            "os_hash_algo": {"type": ["null", "string"], "readOnly": true, "maxLength": 64, "description": "Algorithm to calculate the os_hash_value"},
            "os_hash_value": {"type": ["null", "string"], "readOnly": true, "maxLength": 128, "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo"},
            "owner": {"type": ["null", "string"], "maxLength": 255, "description": "Owner of the image"},
            "size": ro(json!(["null", "integer"]), "Size of image file in bytes"),
            "virtual_size": ro(json!(["null", "integer"]), "Virtual size of image in bytes"),
            "container_format": {"type": ["null", "string"], "enum": container, "description": "Format of the container"},
            "disk_format": {"type": ["null", "string"], "enum": disk, "description": "Format of the disk"},
            "created_at": ro(json!("string"), "Date and time of image registration"),
            "updated_at": ro(json!("string"), "Date and time of the last image modification"),
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}, "description": "List of strings related to the image"},
            "direct_url": ro(json!("string"), "URL to access the image file kept in external store"),
            "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
            "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
            "self": ro(json!("string"), "An image self url"),
            "file": ro(json!("string"), "An image file url"),
            "stores": ro(json!("string"), "Store in which image data resides. Only present when the operator has enabled multiple stores."),
            "schema": ro(json!("string"), "An image schema url"),
            "locations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "url": {"type": "string", "maxLength": 255},
                        "metadata": {"type": "object"},
                        "validation_data": {"type": "object"},
                    },
                    "required": ["url", "metadata"],
                },
                "description": "A set of URLs to access the image file kept in external store",
            },
            "kernel_id": {"type": ["null", "string"], "pattern": UUID, "description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.", "is_base": false},
            "ramdisk_id": {"type": ["null", "string"], "pattern": UUID, "description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.", "is_base": false},
            "instance_uuid": {"type": "string", "description": "Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)", "is_base": false},
            "architecture": {"type": "string", "description": "Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html", "is_base": false},
            "os_distro": {"type": "string", "description": "Common name of operating system distribution as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html", "is_base": false},
            "os_version": {"type": "string", "description": "Operating system version as specified by the distributor.", "is_base": false},
            "description": {"type": "string", "description": "A human-readable string describing this image.", "is_base": false},
        },
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

/// The schema of a list of images.
pub fn images(api: &ApiSettings) -> Value {
    json!({
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image(api)},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

/// The schema of a membership.
pub fn member() -> Value {
    let statuses: Vec<&str> = MemberStatus::ALL.iter().map(|s| s.as_str()).collect();
    json!({
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {"type": "string", "pattern": UUID, "description": "An identifier for the image"},
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "schema": {"type": "string", "readOnly": true},
            "status": {"type": "string", "enum": statuses, "description": "The status of this image member"},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
        },
    })
}

/// The schema of a list of memberships.
pub fn members() -> Value {
    json!({
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member()},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_enums_follow_the_configuration_and_every_attribute_class_is_in_the_schema() {
        let api = ApiSettings { disk_formats: vec![DiskFormat::Qcow2, DiskFormat::Raw], ..ApiSettings::default() };
        let schema = image(&api);
        assert_eq!(schema["properties"]["disk_format"]["enum"], json!([null, "qcow2", "raw"]));
        assert_eq!(schema["additionalProperties"]["type"], "string");
        for name in READ_ONLY {
            assert!(schema["properties"].get(*name).is_some(), "{name} is described");
            if !matches!(*name, "id") {
                assert_eq!(schema["properties"][*name]["readOnly"], true, "{name} reads as read-only");
            }
        }
        for name in RESERVED {
            assert!(schema["properties"].get(*name).is_none(), "{name} is not an attribute");
        }
        assert_eq!(images(&api)["properties"]["images"]["items"], schema);
        assert_eq!(members()["properties"]["members"]["items"], member());
    }
}
