//! Image sharing (reference §1.7): the members of an image are tenants that may see and
//! download it although it is private; a member with `can_share` may manage the members
//! in turn.
//!
//! Memberships live in the image record, so every change is a compare-and-swap on the
//! record, retried when another request changed the image first.

use std::collections::BTreeMap;

use bytes::Buf;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;
use tank_core::{query::ListQuery, Image, Member};
use tank_sdk::ErrorKind;

use super::{context::Context, error::ApiError, full, images, json_response, ResponseBody};
use crate::state::{now, Tank};

/// Membership bodies are small; anything larger is not one.
const MAX_BODY: usize = 64 << 10;
/// How often a membership change is retried when other requests keep changing the image.
const RETRIES: usize = 16;

/// `GET /v1/images/{id}/members`.
pub async fn list(tank: &Tank, ctx: &Context, id: &str) -> Result<Response<ResponseBody>, ApiError> {
    let image = images::visible(tank, ctx, id).await?.value;
    let members: Vec<_> =
        image.members.iter().map(|m| json!({"member_id": m.member_id, "can_share": m.can_share})).collect();
    Ok(json_response(StatusCode::OK, json!({ "members": members }).to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Membership {
    member_id: String,
    can_share: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Memberships {
    memberships: Vec<Membership>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OneMember {
    member: OneMemberFields,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OneMemberFields {
    can_share: Option<bool>,
}

/// Reads a small JSON body; an empty body is `None`.
async fn json_body<T: serde::de::DeserializeOwned>(body: Incoming, example: &str) -> Result<Option<T>, ApiError> {
    let collected = Limited::new(body, MAX_BODY).collect().await.map_err(|e| {
        ApiError::bad_request(format!("could not read the request body ({e}); send at most {MAX_BODY} bytes of JSON"))
    })?;
    let bytes = collected.aggregate();
    if !bytes.has_remaining() {
        return Ok(None);
    }
    serde_json::from_reader(bytes.reader())
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid here ({e}); expected JSON like {example}")))
}

fn check_member_id(member: &str) -> Result<(), ApiError> {
    if member.trim().is_empty() || member.len() > 255 {
        return Err(ApiError::bad_request("a member id must be a tenant name of 1 to 255 characters"));
    }
    Ok(())
}

/// Applies `change` to image `id`'s memberships, as the caller, retrying on conflicts.
/// `change` answers whether it changed anything, or an error to return as it is.
async fn change_members(
    tank: &Tank,
    ctx: &Context,
    id: &str,
    change: impl Fn(&mut Vec<Member>) -> Result<bool, ApiError> + Send + Sync + 'static,
) -> Result<Response<ResponseBody>, ApiError> {
    if ctx.owner().is_none() {
        // E0: sharing needs a tenant to share from.
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "no authenticated user: sharing an image needs a caller with a tenant (X-Tenant)",
        ));
    }
    for _ in 0..RETRIES {
        let record = images::visible(tank, ctx, id).await?;
        let mut image: Image = record.value;
        if !ctx.can_share(&image) {
            // Reported as not found, as E0 did: a caller who may not share learns nothing.
            return Err(ApiError::image_not_found(image.id));
        }
        if !change(&mut image.members)? {
            return Ok(no_content());
        }
        image.updated_at = now();
        let registry = tank.registry.clone();
        let revision = record.revision;
        let updated = tokio::task::spawn_blocking(move || registry.update(&image, revision)).await?;
        match updated {
            Ok(_) => return Ok(no_content()),
            Err(e) if e.kind == ErrorKind::CONFLICT => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(format!("image {id} keeps changing under this request; retry")))
}

fn no_content() -> Response<ResponseBody> {
    let mut r = Response::new(full(Vec::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// `PUT /v1/images/{id}/members`: the memberships become exactly the ones named; a named
/// member without `can_share` keeps its flag (new ones get `false`).
pub async fn replace(
    tank: &Tank,
    ctx: &Context,
    id: &str,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, ApiError> {
    let example = r#"{"memberships": [{"member_id": "tenant", "can_share": false}]}"#;
    let wanted: Memberships = json_body(req.into_body(), example)
        .await?
        .ok_or_else(|| ApiError::bad_request(format!("a body is required: {example}")))?;
    let mut named = BTreeMap::new();
    for m in wanted.memberships {
        check_member_id(&m.member_id)?;
        named.insert(m.member_id, m.can_share);
    }
    change_members(tank, ctx, id, move |members| {
        let next: Vec<Member> = named
            .iter()
            .map(|(member_id, can_share)| {
                let kept = members.iter().find(|m| &m.member_id == member_id).map(|m| m.can_share);
                Member { member_id: member_id.clone(), can_share: can_share.or(kept).unwrap_or(false) }
            })
            .collect();
        let changed = *members != next;
        *members = next;
        Ok(changed)
    })
    .await
}

/// `PUT /v1/images/{id}/members/{member}`: adds the member; a body sets `can_share` (on a
/// new or an existing membership), no body leaves an existing one as it is.
pub async fn add(
    tank: &Tank,
    ctx: &Context,
    id: &str,
    member: &str,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, ApiError> {
    check_member_id(member)?;
    let body: Option<OneMember> = json_body(req.into_body(), r#"{"member": {"can_share": true}}"#).await?;
    let can_share = body.and_then(|b| b.member.can_share);
    let member = member.to_owned();
    change_members(tank, ctx, id, move |members| match members.iter_mut().find(|m| m.member_id == member) {
        Some(m) => {
            let changed = can_share.is_some_and(|c| c != m.can_share);
            m.can_share = can_share.unwrap_or(m.can_share);
            Ok(changed)
        }
        None => {
            members.push(Member { member_id: member.clone(), can_share: can_share.unwrap_or(false) });
            Ok(true)
        }
    })
    .await
}

/// `DELETE /v1/images/{id}/members/{member}`.
pub async fn remove(tank: &Tank, ctx: &Context, id: &str, member: &str) -> Result<Response<ResponseBody>, ApiError> {
    let (member, image) = (member.to_owned(), id.to_owned());
    change_members(tank, ctx, id, move |members| {
        let before = members.len();
        members.retain(|m| m.member_id != member);
        if members.len() == before {
            return Err(ApiError::new(StatusCode::NOT_FOUND, format!("{member} is not a member of image {image}")));
        }
        Ok(true)
    })
    .await
}

/// `GET /v1/shared-images/{member}`: the images shared with `member` that the caller sees.
pub async fn shared_with(tank: &Tank, ctx: &Context, member: &str) -> Result<Response<ResponseBody>, ApiError> {
    let mut query = ListQuery::new(ctx.viewer());
    query.filters.member = Some(member.to_owned());
    query.filters.is_public = None;
    query.limit = tank.api.api_limit_max;
    let mut shared = Vec::new();
    loop {
        let page_query = query.clone();
        let registry = tank.registry.clone();
        let page = tokio::task::spawn_blocking(move || registry.list(&page_query)).await??;
        for image in &page {
            if let Some(m) = image.members.iter().find(|m| m.member_id == member) {
                shared.push(json!({"image_id": image.id.to_string(), "can_share": m.can_share}));
            }
        }
        match page.last() {
            Some(last) if page.len() == query.limit as usize => query.marker = Some(last.id),
            _ => break,
        }
    }
    Ok(json_response(StatusCode::OK, json!({ "shared_images": shared }).to_string()))
}
