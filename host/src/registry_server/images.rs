//! Glance's registry endpoints (reference §2.1) over the registry driver.
//!
//! Writes are read-modify-write loops on the record's revision: with `If-Match` the caller's
//! revision must still be current (409 otherwise); without it a concurrent change is read
//! again and the request applied on top, so no change is ever lost. Images a caller may not
//! see answer 404, exactly like unknown ones; 403 is only for an image the caller sees but
//! may not change.

use http::{Response, StatusCode};
use serde_json::{json, Map, Value};
use tank_core::{query::ListQuery, Image, ImageId, Location, Member, Status};
use tank_sdk::{ErrorKind, Revision, Revisioned};

use super::{context::Context, error::RegistryError, params, with_revision, RegistryServer};
use crate::{
    api::{json_response, meta, ResponseBody},
    state::now,
};

/// The registry's view of an image: the API's detailed view plus `location`, since the
/// registry's only clients are API servers.
fn view(image: &Image) -> Value {
    let mut v = meta::detail(image);
    v["location"] = json!(image.location.as_ref().map(Location::expose));
    v
}

fn image_response(status: StatusCode, record: &Revisioned<Image>) -> Response<ResponseBody> {
    with_revision(status, json!({ "image": view(&record.value) }).to_string(), record.revision)
}

fn parse_id(id: &str) -> Result<ImageId, RegistryError> {
    // An id that cannot exist is simply not found, as in Glance.
    id.parse().map_err(|_| RegistryError::image_not_found(id))
}

/// The record of `id` if `ctx` may see it; 404 for unknown and hidden alike.
async fn visible(server: &RegistryServer, ctx: &Context, id: ImageId) -> Result<Revisioned<Image>, RegistryError> {
    let record = server.blocking(move |r| r.get(id)).await?;
    if !ctx.can_see(&record.value) {
        return Err(RegistryError::image_not_found(id));
    }
    Ok(record)
}

/// Reads `id`, checks that `ctx` may change it (`allowed`), applies `change` and writes it
/// back at the revision read. `if_match` pins the revision the caller read.
async fn modify(
    server: &RegistryServer,
    ctx: &Context,
    id: ImageId,
    if_match: Option<Revision>,
    allowed: fn(&Context, &Image) -> bool,
    change: impl Fn(&mut Image) -> Result<(), RegistryError>,
) -> Result<Revisioned<Image>, RegistryError> {
    loop {
        let record = visible(server, ctx, id).await?;
        if !allowed(ctx, &record.value) {
            // Glance's rule: a public image says 403; a private one the caller sees only
            // through membership stays hidden (404), as if it did not exist.
            if !record.value.is_public {
                return Err(RegistryError::image_not_found(id));
            }
            return Err(RegistryError::forbidden(format!(
                "you may not change image {id}; only its owner or an admin may"
            )));
        }
        if let Some(want) = if_match {
            if want != record.revision {
                return Err(RegistryError::conflict(format!(
                    "image {id} changed since it was read (revision {}, not {want}); read it again",
                    record.revision
                )));
            }
        }
        let mut image = record.value;
        change(&mut image)?;
        image.updated_at = now();
        let (revision, written) = (record.revision, image.clone());
        match server.blocking(move |r| r.update(&written, revision)).await {
            Ok(revision) => return Ok(Revisioned { revision, value: image }),
            Err(e) if e.kind == ErrorKind::CONFLICT && if_match.is_none() => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `GET /`, `/images` and `/images/detail`.
pub async fn list(
    server: &RegistryServer,
    ctx: &Context,
    query: &str,
    detailed: bool,
) -> Result<Response<ResponseBody>, RegistryError> {
    let q = params::list_query(query, ctx, server.limits)?;
    let images = server.blocking(move |r| r.list(&q)).await.map_err(|e| {
        if e.kind == ErrorKind::INVALID_INPUT {
            RegistryError::bad_request(format!("invalid marker: image could not be found ({})", e.message))
        } else {
            e
        }
    })?;
    let body = if detailed {
        json!({ "images": images.iter().map(view).collect::<Vec<_>>() })
    } else {
        json!({ "images": images.iter().map(meta::brief).collect::<Vec<_>>() })
    };
    Ok(json_response(StatusCode::OK, body.to_string()))
}

/// `GET /images/{id}`.
pub async fn show(server: &RegistryServer, ctx: &Context, id: &str) -> Result<Response<ResponseBody>, RegistryError> {
    let record = visible(server, ctx, parse_id(id)?).await?;
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

/// Sets the fields of `fields` on `image`. `status` is handled by the caller (it is
/// required on create and a transition on update), `id` too.
fn apply_fields(
    image: &mut Image,
    fields: &Map<String, Value>,
    ctx: &Context,
    purge_properties: bool,
) -> Result<(), RegistryError> {
    for (key, v) in fields {
        match key.as_str() {
            "id" | "status" => {}
            "name" => image.name = text(key, v)?,
            "disk_format" => image.disk_format = text(key, v)?.map(|s| s.parse()).transpose()?,
            "container_format" => image.container_format = text(key, v)?.map(|s| s.parse()).transpose()?,
            "size" => image.size = whole(key, v)?,
            "min_ram" => image.min_ram = whole(key, v)?,
            "min_disk" => image.min_disk = whole(key, v)?,
            "checksum" => image.checksum = text(key, v)?,
            "is_public" => image.is_public = flag(key, v)?,
            "protected" => image.protected = flag(key, v)?,
            // Glance's registry drops an owner change by anyone but an admin.
            "owner" if ctx.is_admin => image.owner = text(key, v)?,
            "owner" => {}
            "store" => image.store = text(key, v)?,
            "location" => image.location = text(key, v)?.map(|s| Location::parse(&s)).transpose()?,
            "properties" => {
                let Some(props) = v.as_object() else {
                    return Err(RegistryError::bad_request("properties must be an object of names to strings"));
                };
                if purge_properties {
                    image.properties.clear();
                }
                for (name, value) in props {
                    let value = match value {
                        Value::String(s) => s.clone(),
                        Value::Null => {
                            image.properties.remove(name);
                            continue;
                        }
                        other => other.to_string(),
                    };
                    image.properties.insert(name.clone(), value);
                }
            }
            k if PROTECTED.contains(&k) => {}
            other => {
                return Err(RegistryError::bad_request(format!(
                    "unknown image field {other:?}; custom properties go in \"properties\""
                )))
            }
        }
    }
    tank_core::check_format_pair(image.disk_format, image.container_format)?;
    Ok(())
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
    ctx: &Context,
    body: Value,
) -> Result<Response<ResponseBody>, RegistryError> {
    let fields = image_object(&body)?;
    let id = match fields.get("id") {
        None | Some(Value::Null) => ImageId::random(),
        Some(Value::String(s)) => {
            s.parse().map_err(|_| RegistryError::bad_request(format!("id {s:?} is not a UUID")))?
        }
        Some(_) => return Err(RegistryError::bad_request("id must be a string")),
    };
    let status = status_field(fields)?
        .ok_or_else(|| RegistryError::bad_request("status is required (queued, saving, active, killed, ...)"))?;
    let mut image = Image::new(id, now());
    image.status = status;
    if matches!(status, Status::Deleted | Status::PendingDelete) {
        image.deleted = status == Status::Deleted;
        image.deleted_at = Some(image.created_at);
    }
    // The caller owns what it creates, unless an admin names another owner.
    image.owner = ctx.tenant.clone();
    apply_fields(&mut image, fields, ctx, true)?;
    if status == Status::Active && (image.disk_format.is_none() || image.container_format.is_none()) {
        return Err(RegistryError::bad_request("an active image needs disk_format and container_format"));
    }
    let written = image.clone();
    let revision = server.blocking(move |r| r.create(&written)).await?;
    Ok(image_response(StatusCode::OK, &Revisioned { revision, value: image }))
}

/// `PUT /images/{id}`.
pub async fn update(
    server: &RegistryServer,
    ctx: &Context,
    id: &str,
    body: Value,
    if_match: Option<Revision>,
    purge: bool,
) -> Result<Response<ResponseBody>, RegistryError> {
    let id = parse_id(id)?;
    let fields = image_object(&body)?.clone();
    let status = status_field(&fields)?;
    let record = modify(server, ctx, id, if_match, Context::can_change, |image| {
        apply_fields(image, &fields, ctx, purge)?;
        if let Some(to) = status.filter(|s| *s != image.status) {
            image.set_status(to, now())?;
        }
        Ok(())
    })
    .await?;
    Ok(image_response(StatusCode::OK, &record))
}

/// `DELETE /images/{id}`: a soft delete; the record stays, `deleted`.
pub async fn delete(
    server: &RegistryServer,
    ctx: &Context,
    id: &str,
    if_match: Option<Revision>,
) -> Result<Response<ResponseBody>, RegistryError> {
    let id = parse_id(id)?;
    let record = modify(server, ctx, id, if_match, Context::can_change, |image| {
        image.set_status(Status::Deleted, now())?;
        Ok(())
    })
    .await?;
    Ok(image_response(StatusCode::OK, &record))
}

fn members_json(image: &Image) -> Value {
    json!(image.members.iter().map(|m| json!({"member_id": m.member_id, "can_share": m.can_share})).collect::<Vec<_>>())
}

/// `GET /images/{id}/members`.
pub async fn members(
    server: &RegistryServer,
    ctx: &Context,
    id: &str,
) -> Result<Response<ResponseBody>, RegistryError> {
    let record = visible(server, ctx, parse_id(id)?).await?;
    let body = json!({ "members": members_json(&record.value) }).to_string();
    Ok(with_revision(StatusCode::OK, body, record.revision))
}

fn no_content(revision: Revision) -> Response<ResponseBody> {
    let mut r = with_revision(StatusCode::NO_CONTENT, String::new(), revision);
    r.headers_mut().remove(http::header::CONTENT_TYPE);
    r
}

/// `PUT /images/{id}/members`: the memberships become exactly those named; an omitted
/// `can_share` keeps a member's current value (false for a new member).
pub async fn replace_members(
    server: &RegistryServer,
    ctx: &Context,
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
    let record = modify(server, ctx, id, None, Context::can_share, |image| {
        let members = wanted
            .iter()
            .map(|(member_id, can_share)| {
                let current = image.members.iter().find(|m| &m.member_id == member_id).map(|m| m.can_share);
                Member { member_id: member_id.clone(), can_share: can_share.or(current).unwrap_or(false) }
            })
            .collect();
        image.members = members;
        Ok(())
    })
    .await?;
    Ok(no_content(record.revision))
}

/// `PUT /images/{id}/members/{member}`: adds the member (`can_share` false) or, with a body
/// `{"member": {"can_share": bool}}`, sets its `can_share` too.
pub async fn add_member(
    server: &RegistryServer,
    ctx: &Context,
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
    let record = modify(server, ctx, id, None, Context::can_share, |image| {
        match image.members.iter_mut().find(|m| m.member_id == member) {
            Some(m) => m.can_share = can_share.unwrap_or(m.can_share),
            None => image.members.push(Member { member_id: member.to_owned(), can_share: can_share.unwrap_or(false) }),
        }
        Ok(())
    })
    .await?;
    Ok(no_content(record.revision))
}

/// `DELETE /images/{id}/members/{member}`.
pub async fn remove_member(
    server: &RegistryServer,
    ctx: &Context,
    id: &str,
    member: &str,
) -> Result<Response<ResponseBody>, RegistryError> {
    let id = parse_id(id)?;
    let record = modify(server, ctx, id, None, Context::can_share, |image| {
        let before = image.members.len();
        image.members.retain(|m| m.member_id != member);
        if image.members.len() == before {
            return Err(RegistryError::new(ErrorKind::NOT_FOUND, format!("{member} is not a member of image {id}")));
        }
        Ok(())
    })
    .await?;
    Ok(no_content(record.revision))
}

/// `GET /shared-images/{member}`: every image shared with `member` that the caller sees,
/// gathered page by page.
pub async fn shared(
    server: &RegistryServer,
    ctx: &Context,
    member: &str,
) -> Result<Response<ResponseBody>, RegistryError> {
    let mut q = ListQuery::new(ctx.viewer());
    q.filters.member = Some(member.to_owned());
    q.limit = server.limits.max;
    let mut shared = Vec::new();
    loop {
        let page_query = q.clone();
        let page = server.blocking(move |r| r.list(&page_query)).await?;
        for image in &page {
            let can_share = image.members.iter().find(|m| m.member_id == member).is_some_and(|m| m.can_share);
            shared.push(json!({"image_id": image.id.to_string(), "can_share": can_share}));
        }
        match page.last() {
            Some(last) if page.len() == q.limit as usize => q.marker = Some(last.id),
            _ => break,
        }
    }
    Ok(json_response(StatusCode::OK, json!({ "shared_images": shared }).to_string()))
}
