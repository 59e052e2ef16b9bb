//! Glance's registry endpoints (reference §2.1): the registry API's JSON in, one call of
//! the images service (a registry-only one, with no stores), the JSON out.
//!
//! The registry API is Glance's internal database API: its callers are servers, and it
//! takes the fields clients may not set (status, through the state machine; location;
//! store). Who may see and change what is the service's rule, the same as the API
//! server's. With `If-Match` the caller's revision must still be current (409 otherwise);
//! without it a concurrent change is read again and the request applied on top.

use http::{Response, StatusCode};
use serde_json::{json, Map, Value};
use tank_core::{Caller, Change, Image, ImageId, Location, Status, Visibility};
use tank_sdk::{Revision, Revisioned};

use super::{error::RegistryError, params, with_revision, RegistryServer};
use crate::api::{json_response, meta, ResponseBody};

/// The registry's view of an image: the API's detailed view plus `location` and `tags`,
/// since the registry's only clients are servers.
fn view(image: &Image) -> Value {
    let mut v = meta::detail(image);
    v["location"] = json!(image.location().map(|l| l.url.expose()));
    v["tags"] = json!(image.tags);
    v
}

fn image_response(status: StatusCode, record: &Revisioned<Image>) -> Response<ResponseBody> {
    with_revision(status, json!({ "image": view(&record.value) }).to_string(), record.revision)
}

fn parse_id(id: &str) -> Result<ImageId, RegistryError> {
    // An id that cannot exist is simply not found, as in Glance.
    id.parse().map_err(|_| RegistryError::image_not_found(id))
}

/// `GET /`, `/images` and `/images/detail`.
pub async fn list(
    server: &RegistryServer,
    who: &Caller,
    query: &str,
    detailed: bool,
) -> Result<Response<ResponseBody>, RegistryError> {
    let q = params::list_query(query, who, server.limits)?;
    let images = server.images.list(who, q).await.map_err(RegistryError::from_image)?;
    let body = if detailed {
        json!({ "images": images.iter().map(view).collect::<Vec<_>>() })
    } else {
        json!({ "images": images.iter().map(meta::brief).collect::<Vec<_>>() })
    };
    Ok(json_response(StatusCode::OK, body.to_string()))
}

/// `GET /images/{id}`.
pub async fn show(server: &RegistryServer, who: &Caller, id: &str) -> Result<Response<ResponseBody>, RegistryError> {
    let record = server.images.get_record(who, parse_id(id)?).await.map_err(RegistryError::from_image)?;
    Ok(image_response(StatusCode::OK, &record))
}

/// The `"image"` object of a request body.
fn image_object(body: &Value) -> Result<&Map<String, Value>, RegistryError> {
    body.get("image")
        .and_then(Value::as_object)
        .ok_or_else(|| RegistryError::bad_request("the body must be {\"image\": {...}}"))
}

fn text(key: &str, v: &Value) -> Result<Option<String>, RegistryError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(RegistryError::bad_request(format!("{key} must be a string or null"))),
    }
}

fn whole(key: &str, v: &Value) -> Result<u64, RegistryError> {
    let n = match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Null => Some(0),
        _ => v.as_u64(),
    };
    n.ok_or_else(|| RegistryError::bad_request(format!("{key} must be a whole number of 0 or more")))
}

fn flag(key: &str, v: &Value) -> Result<bool, RegistryError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => Ok(s.eq_ignore_ascii_case("true")),
        _ => Err(RegistryError::bad_request(format!("{key} must be true or false"))),
    }
}

/// Fields the registry sets itself; Glance ignored them on input, and so does Tank.
const PROTECTED: &[&str] = &["created_at", "updated_at", "deleted_at", "deleted"];

/// The changes `fields` ask for. `status` and `id` are the caller's to handle. With
/// `purge_properties` the properties named replace all others; without, they are merged,
/// and a `null` removes one.
fn changes(fields: &Map<String, Value>, purge_properties: bool) -> Result<Vec<Change>, RegistryError> {
    let mut out = Vec::new();
    for (key, v) in fields {
        let change = match key.as_str() {
            "id" | "status" => continue,
            "name" => Change::Name(text(key, v)?),
            "disk_format" => Change::DiskFormat(text(key, v)?.map(|s| s.parse()).transpose()?),
            "container_format" => Change::ContainerFormat(text(key, v)?.map(|s| s.parse()).transpose()?),
            "size" => Change::Size(whole(key, v)?),
            "min_ram" => Change::MinRam(whole(key, v)?),
            "min_disk" => Change::MinDisk(whole(key, v)?),
            "checksum" => Change::Checksum(text(key, v)?),
            "is_public" => Change::Visibility(Visibility::from_is_public(flag(key, v)?)),
            "protected" => Change::Protected(flag(key, v)?),
            // Glance's registry drops an owner change by anyone but an admin; the
            // service does.
            "owner" => Change::Owner(text(key, v)?),
            "store" => Change::Store(text(key, v)?),
            "location" => Change::Location(text(key, v)?.map(|s| Location::parse(&s)).transpose()?),
            "tags" => {
                let tags = v.as_array().and_then(|a| a.iter().map(|t| t.as_str().map(String::from)).collect());
                Change::ReplaceTags(tags.ok_or_else(|| RegistryError::bad_request("tags must be a list of strings"))?)
            }
            "properties" => {
                let Some(props) = v.as_object() else {
                    return Err(RegistryError::bad_request("properties must be an object of names to strings"));
                };
                let text = |value: &Value| match value {
                    Value::String(s) => Some(s.clone()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                };
                if purge_properties {
                    let all = props.iter().filter_map(|(k, v)| Some((k.clone(), text(v)?))).collect();
                    out.push(Change::ReplaceProperties(all));
                } else {
                    out.extend(props.iter().map(|(k, v)| match text(v) {
                        Some(value) => Change::SetProperty(k.clone(), value),
                        None => Change::RemoveProperty(k.clone()),
                    }));
                }
                continue;
            }
            k if PROTECTED.contains(&k) => continue,
            other => {
                return Err(RegistryError::bad_request(format!(
                    "unknown image field {other:?}; custom properties go in \"properties\""
                )))
            }
        };
        out.push(change);
    }
    Ok(out)
}

fn status_field(fields: &Map<String, Value>) -> Result<Option<Status>, RegistryError> {
    match fields.get("status") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.parse()?)),
        Some(_) => Err(RegistryError::bad_request("status must be a string")),
    }
}

/// `POST /images`.
pub async fn create(
    server: &RegistryServer,
    who: &Caller,
    body: Value,
) -> Result<Response<ResponseBody>, RegistryError> {
    let fields = image_object(&body)?;
    let id = match fields.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            Some(s.parse().map_err(|_| RegistryError::bad_request(format!("id {s:?} is not a UUID")))?)
        }
        Some(_) => return Err(RegistryError::bad_request("id must be a string")),
    };
    let status = status_field(fields)?
        .ok_or_else(|| RegistryError::bad_request("status is required (queued, saving, active, killed, ...)"))?;
    let record = server
        .images
        .create_record(who, id, status, changes(fields, true)?)
        .await
        .map_err(RegistryError::from_image)?;
    Ok(image_response(StatusCode::OK, &record))
}

/// `PUT /images/{id}`.
pub async fn update(
    server: &RegistryServer,
    who: &Caller,
    id: &str,
    body: Value,
    if_match: Option<Revision>,
    purge: bool,
) -> Result<Response<ResponseBody>, RegistryError> {
    let id = parse_id(id)?;
    let fields = image_object(&body)?;
    let mut changes = changes(fields, purge)?;
    if let Some(to) = status_field(fields)? {
        changes.push(Change::Status(to));
    }
    let record = server.images.update_record(who, id, changes, if_match).await.map_err(RegistryError::from_image)?;
    Ok(image_response(StatusCode::OK, &record))
}

/// `DELETE /images/{id}`: a soft delete; the record stays, `deleted`.
pub async fn delete(
    server: &RegistryServer,
    who: &Caller,
    id: &str,
    if_match: Option<Revision>,
) -> Result<Response<ResponseBody>, RegistryError> {
    let record = server.images.delete_record(who, parse_id(id)?, if_match).await.map_err(RegistryError::from_image)?;
    Ok(image_response(StatusCode::OK, &record))
}

/// `GET /images/{id}/members`.
pub async fn members(server: &RegistryServer, who: &Caller, id: &str) -> Result<Response<ResponseBody>, RegistryError> {
    let id = parse_id(id)?;
    let members = server.images.members(who, id).await.map_err(RegistryError::from_image)?;
    let list: Vec<Value> =
        members.iter().map(|m| json!({"member_id": m.member_id, "can_share": m.can_share})).collect();
    let revision = server.images.record(id).await.map_err(RegistryError::from_image)?.revision;
    Ok(with_revision(StatusCode::OK, json!({ "members": list }).to_string(), revision))
}

/// 204, carrying the image's revision after the change.
async fn no_content(server: &RegistryServer, id: ImageId) -> Result<Response<ResponseBody>, RegistryError> {
    let revision = server.images.record(id).await.map_err(RegistryError::from_image)?.revision;
    let mut r = with_revision(StatusCode::NO_CONTENT, String::new(), revision);
    r.headers_mut().remove(http::header::CONTENT_TYPE);
    Ok(r)
}

/// `PUT /images/{id}/members`: the memberships become exactly those named; an omitted
/// `can_share` keeps a member's current value (false for a new member).
pub async fn replace_members(
    server: &RegistryServer,
    who: &Caller,
    id: &str,
    body: Value,
) -> Result<Response<ResponseBody>, RegistryError> {
    let id = parse_id(id)?;
    let bad = || {
        RegistryError::bad_request("the body must be {\"memberships\": [{\"member_id\": ..., \"can_share\"?: bool}]}")
    };
    let list = body.get("memberships").and_then(Value::as_array).ok_or_else(bad)?;
    let mut wanted: Vec<(String, Option<bool>)> = Vec::new();
    for m in list {
        let member = m.get("member_id").and_then(Value::as_str).ok_or_else(bad)?;
        let can_share = m.get("can_share").filter(|v| !v.is_null()).map(|v| flag("can_share", v)).transpose()?;
        wanted.push((member.to_owned(), can_share));
    }
    server.images.replace_members(who, id, wanted).await.map_err(RegistryError::from_image)?;
    no_content(server, id).await
}

/// `PUT /images/{id}/members/{member}`: adds the member (`can_share` false) or, with a body
/// `{"member": {"can_share": bool}}`, sets its `can_share` too.
pub async fn add_member(
    server: &RegistryServer,
    who: &Caller,
    id: &str,
    member: &str,
    body: Option<Value>,
) -> Result<Response<ResponseBody>, RegistryError> {
    let id = parse_id(id)?;
    let can_share = match &body {
        None => None,
        Some(b) => {
            let v = b
                .get("member")
                .and_then(|m| m.get("can_share"))
                .ok_or_else(|| RegistryError::bad_request("the body must be {\"member\": {\"can_share\": bool}}"))?;
            Some(flag("can_share", v)?)
        }
    };
    server.images.add_member(who, id, member, can_share).await.map_err(RegistryError::from_image)?;
    no_content(server, id).await
}

/// `DELETE /images/{id}/members/{member}`.
pub async fn remove_member(
    server: &RegistryServer,
    who: &Caller,
    id: &str,
    member: &str,
) -> Result<Response<ResponseBody>, RegistryError> {
    let id = parse_id(id)?;
    server.images.remove_member(who, id, member).await.map_err(RegistryError::from_image)?;
    no_content(server, id).await
}

/// `GET /shared-images/{member}`: every image shared with `member` that the caller sees.
pub async fn shared(
    server: &RegistryServer,
    who: &Caller,
    member: &str,
) -> Result<Response<ResponseBody>, RegistryError> {
    let images = server.images.shared_with(who, member).await.map_err(RegistryError::from_image)?;
    let shared: Vec<Value> = images
        .iter()
        .map(|image| {
            let can_share = image.member(member).is_some_and(|m| m.can_share);
            json!({"image_id": image.id.to_string(), "can_share": can_share})
        })
        .collect();
    Ok(json_response(StatusCode::OK, json!({ "shared_images": shared }).to_string()))
}
