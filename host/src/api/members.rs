//! Image sharing (reference §1.7): the members of an image are tenants that may see and
//! download it although it is not public; a member with `can_share` may manage the members
//! in turn. The rules and the compare-and-swap on the record are the images service's.

use bytes::Buf;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;
use tank_core::Caller;

use super::{error::ApiError, full, images::parse_id, json_response, ResponseBody};
use crate::state::Tank;

/// Membership bodies are small; anything larger is not one.
const MAX_BODY: usize = 64 << 10;

/// `GET /v1/images/{id}/members`.
pub async fn list(tank: &Tank, who: &Caller, id: &str) -> Result<Response<ResponseBody>, ApiError> {
    let members = tank.images.members(who, parse_id(id)?).await.map_err(|e| ApiError::v1(e, None))?;
    let members: Vec<_> = members.iter().map(|m| json!({"member_id": m.member_id, "can_share": m.can_share})).collect();
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

fn no_content() -> Response<ResponseBody> {
    let mut r = Response::new(full(Vec::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// `PUT /v1/images/{id}/members`: the memberships become exactly the ones named; a named
/// member without `can_share` keeps its flag (new ones get `false`).
pub async fn replace(
    tank: &Tank,
    who: &Caller,
    id: &str,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, ApiError> {
    let example = r#"{"memberships": [{"member_id": "tenant", "can_share": false}]}"#;
    let wanted: Memberships = json_body(req.into_body(), example)
        .await?
        .ok_or_else(|| ApiError::bad_request(format!("a body is required: {example}")))?;
    // v1 keeps a replaced membership list in member order (the registry API keeps the
    // order it was given).
    let mut wanted: Vec<_> = wanted.memberships.into_iter().map(|m| (m.member_id, m.can_share)).collect();
    wanted.sort_by(|a, b| a.0.cmp(&b.0));
    tank.images.replace_members(who, parse_id(id)?, wanted).await.map_err(|e| ApiError::v1(e, None))?;
    Ok(no_content())
}

/// `PUT /v1/images/{id}/members/{member}`: adds the member; a body sets `can_share` (on a
/// new or an existing membership), no body leaves an existing one as it is.
pub async fn add(
    tank: &Tank,
    who: &Caller,
    id: &str,
    member: &str,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, ApiError> {
    let body: Option<OneMember> = json_body(req.into_body(), r#"{"member": {"can_share": true}}"#).await?;
    let can_share = body.and_then(|b| b.member.can_share);
    tank.images.add_member(who, parse_id(id)?, member, can_share).await.map_err(|e| ApiError::v1(e, None))?;
    Ok(no_content())
}

/// `DELETE /v1/images/{id}/members/{member}`.
pub async fn remove(tank: &Tank, who: &Caller, id: &str, member: &str) -> Result<Response<ResponseBody>, ApiError> {
    tank.images.remove_member(who, parse_id(id)?, member).await.map_err(|e| ApiError::v1(e, None))?;
    Ok(no_content())
}

/// `GET /v1/shared-images/{member}`: the images shared with `member` that the caller sees.
pub async fn shared_with(tank: &Tank, who: &Caller, member: &str) -> Result<Response<ResponseBody>, ApiError> {
    let images = tank.images.shared_with(who, member).await.map_err(|e| ApiError::v1(e, None))?;
    let shared: Vec<_> = images
        .iter()
        .filter_map(|image| {
            let m = image.member(member)?;
            Some(json!({"image_id": image.id.to_string(), "can_share": m.can_share}))
        })
        .collect();
    Ok(json_response(StatusCode::OK, json!({ "shared_images": shared }).to_string()))
}
