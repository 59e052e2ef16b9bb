//! The Images API v2 (reference §7, docs/api-v2.md): a router over the images service.
//!
//! Each handler reads the v2 wire format into typed values, calls one service operation
//! with the caller, and renders the result, or the error through [`ApiError::v2`]. No
//! domain rule lives here: visibility, sharing, policy, quotas, the upload life cycle and
//! the state machine are the service's.
//!
//! - [`schemas`]: the JSON Schemas, and which attributes are read-only or reserved.
//! - [`attrs`]: request attributes into changes (create and patch share it).
//! - [`patch`]: the JSON-patch dialects.
//! - [`list`]: list parameters and links.
//! - [`view`]: images and memberships as JSON.

mod attrs;
mod list;
mod patch;
mod schemas;
mod view;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tank_core::{Caller, ImageId, MemberStatus};
use tank_images::{Data, ImageError, ImportTo, NewImage, Range, Source};

use super::{body, error::ApiError, full, json_response, ResponseBody};
use crate::state::Tank;

/// The interoperable import methods this server offers (`GET /v2/info/import`):
/// glance-direct when it has a staging store.
fn import_methods(tank: &Tank) -> Vec<&'static str> {
    let mut methods = vec!["web-download", "copy-image"];
    if tank.api.staging_store.is_some() {
        methods.insert(0, "glance-direct");
    }
    methods
}

/// `POST /v2/images/{id}/import`: 202 once the image is `importing` (or, for copy-image,
/// once its copy has begun); the data arrives in the background.
async fn import(
    tank: &Tank,
    who: &Caller,
    id: ImageId,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, ApiError> {
    let header_store = match req.headers().get("x-image-meta-store").map(|v| v.to_str()) {
        None => None,
        Some(Ok(name)) => Some(name.to_owned()),
        Some(Err(_)) => return Err(ApiError::bad_request("x-image-meta-store must be a store id")),
    };
    let body = read_json(req).await?;
    let method = body["method"]["name"].as_str().ok_or_else(|| {
        ApiError::bad_request(
            "the body must name an import method: {\"method\": {\"name\": \"web-download\", \"uri\": ...}}",
        )
    })?;
    let offered = import_methods(tank);
    if !offered.contains(&method) {
        return Err(ApiError::bad_request(format!(
            "import method {method:?} is not offered by this server; it offers: {}",
            offered.join(", ")
        )));
    }
    let to = import_to(&body, header_store)?;
    let started = match method {
        "glance-direct" => tank.images.import_staged(who, id, to).await,
        "copy-image" => tank.images.copy_image(who, id, to).await,
        _ => {
            let uri = body["method"]["uri"]
                .as_str()
                .ok_or_else(|| ApiError::bad_request("web-download needs the image's \"uri\" in \"method\""))?;
            tank.images.import_from_url(who, id, uri.to_owned(), to).await
        }
    };
    match started {
        Ok(_) => {
            let mut r = Response::new(full(Bytes::new()));
            *r.status_mut() = StatusCode::ACCEPTED;
            Ok(r)
        }
        // Glance: an import into a store that does not exist is a conflict.
        Err(e @ ImageError::UnknownStore { .. }) => Err(ApiError::new(StatusCode::CONFLICT, ApiError::v2(e).message)),
        // A URL's failures read as v1's copy-from ones do, naming where the URL came from.
        Err(e @ (ImageError::Source { .. } | ImageError::UnsupportedSource { .. })) => {
            Err(ApiError::v1(e, Some("web-download uri")))
        }
        Err(e) => Err(ApiError::v2(e)),
    }
}

/// The stores an import body asks for: `stores` (or the `X-Image-Meta-Store` header),
/// `all_stores` and `all_stores_must_succeed` (true unless false, as Glance reads it).
fn import_to(body: &Value, header: Option<String>) -> Result<ImportTo, ApiError> {
    let flag = |key: &str, default: bool| match body.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::bad_request(format!("{key} must be true or false"))),
    };
    let stores: Vec<String> = match body.get("stores") {
        None | Some(Value::Null) => header.into_iter().collect(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|s| {
                s.as_str().map(str::to_owned).ok_or_else(|| ApiError::bad_request("stores must be a list of store ids"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ApiError::bad_request("stores must be a list of store ids")),
    };
    Ok(ImportTo {
        stores,
        all_stores: flag("all_stores", false)?,
        must_succeed: flag("all_stores_must_succeed", true)?,
    })
}

/// The largest JSON body a v2 request may have (Glance's `max_request_body_size`).
const MAX_JSON: usize = 114_688;

/// The rest of a path addressed to v2 (`/v2` or `/v2/...`).
pub fn path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2")?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The methods each v2 path takes, for the router and for 405's `Allow`.
fn allowed(segments: &[&str]) -> Option<&'static [Method]> {
    const GET: &[Method] = &[Method::GET];
    Some(match segments {
        ["schemas", "image" | "images" | "member" | "members"] => GET,
        ["images"] => &[Method::GET, Method::POST],
        ["images", _] => &[Method::GET, Method::PATCH, Method::DELETE],
        ["images", _, "file"] => &[Method::GET, Method::PUT],
        ["images", _, "stage"] => &[Method::PUT],
        ["images", _, "tags", _] => &[Method::PUT, Method::DELETE],
        ["images", _, "members"] => &[Method::GET, Method::POST],
        ["images", _, "members", _] => &[Method::GET, Method::PUT, Method::DELETE],
        ["images", _, "actions", "deactivate" | "reactivate"] => &[Method::POST],
        ["images", _, "import"] => &[Method::POST],
        ["info", "import" | "stores"] => GET,
        ["stores", _, _] => &[Method::DELETE],
        _ => return None,
    })
}

/// Answers a v2 request; `base` is the public URL of this server, `rest` the path after
/// `/v2`.
pub async fn route(
    tank: &Tank,
    base: &str,
    rest: &str,
    peer: std::net::SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, ApiError> {
    let owned: Vec<String> = rest.split('/').filter(|s| !s.is_empty()).map(super::images::decode_segment).collect();
    let segments: Vec<&str> = owned.iter().map(String::as_str).collect();
    let Some(methods) = allowed(&segments) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no such resource: /v2{rest}")));
    };
    let method = req.method().clone();
    // HEAD is answered as GET would be, without the body (hyper drops it).
    let as_get = if method == Method::HEAD { Method::GET } else { method.clone() };
    if !methods.contains(&as_get) {
        let allow: Vec<&str> = methods.iter().map(Method::as_str).collect();
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on /v2{rest}; use {}", allow.join(", ")),
        )
        .with_header("allow", allow.join(", ")));
    }
    let who = super::authenticate(tank, req.headers(), peer)?;
    let who = &who;
    let images = &tank.images;
    let id = |s: &str| s.parse::<ImageId>().map_err(|_| ApiError::image_not_found(s));
    match (as_get, segments.as_slice()) {
        (Method::GET, ["schemas", which]) => {
            let schema = match *which {
                "image" => schemas::image(&tank.api),
                "images" => schemas::images(&tank.api),
                "member" => schemas::member(),
                _ => schemas::members(),
            };
            Ok(json_response(StatusCode::OK, schema.to_string()))
        }
        (Method::GET, ["images"]) => list_images(tank, who, req.uri().query().unwrap_or("")).await,
        (Method::POST, ["images"]) => create(tank, base, who, req).await,
        (Method::GET, ["images", i]) => {
            let record = images.get(who, id(i)?).await.map_err(ApiError::v2)?;
            Ok(image_json(tank, StatusCode::OK, &record.value))
        }
        (Method::PATCH, ["images", i]) => update(tank, who, id(i)?, req).await,
        (Method::DELETE, ["images", i]) => {
            images.delete(who, id(i)?).await.map_err(ApiError::v2)?;
            Ok(no_content())
        }
        (Method::PUT, ["images", i, "file"]) => upload(tank, who, id(i)?, req, Target::File).await,
        (Method::PUT, ["images", i, "stage"]) => upload(tank, who, id(i)?, req, Target::Stage).await,
        (Method::GET, ["images", i, "file"]) => download(tank, who, id(i)?, req.headers()).await,
        (Method::PUT, ["images", i, "tags", tag]) => {
            images.add_tag(who, id(i)?, tag).await.map_err(ApiError::v2)?;
            Ok(no_content())
        }
        (Method::DELETE, ["images", i, "tags", tag]) => match images.remove_tag(who, id(i)?, tag).await {
            Ok(_) => Ok(no_content()),
            Err(ImageError::Invalid { field: "tag", reason }) => Err(ApiError::new(StatusCode::NOT_FOUND, reason)),
            Err(e) => Err(ApiError::v2(e)),
        },
        (Method::POST, ["images", i, "actions", action]) => {
            let id = id(i)?;
            let done = if *action == "deactivate" {
                images.deactivate(who, id).await
            } else {
                images.reactivate(who, id).await
            };
            done.map_err(ApiError::v2)?;
            Ok(no_content())
        }
        (Method::GET, ["images", i, "members"]) => {
            let id = id(i)?;
            let members = images.memberships(who, id).await.map_err(ApiError::v2)?;
            let list: Vec<Value> = members.iter().map(|m| view::member(id, m)).collect();
            Ok(json_response(StatusCode::OK, json!({"members": list, "schema": "/v2/schemas/members"}).to_string()))
        }
        (Method::POST, ["images", i, "members"]) => {
            let id = id(i)?;
            let body = read_json(req).await?;
            let member = body.get("member").and_then(Value::as_str).ok_or_else(|| {
                ApiError::bad_request("the body must be {\"member\": \"<project id>\"}, naming whom to share with")
            })?;
            let m = images.offer(who, id, member).await.map_err(ApiError::v2)?;
            Ok(json_response(StatusCode::OK, view::member(id, &m).to_string()))
        }
        (Method::GET, ["images", i, "members", member]) => {
            let id = id(i)?;
            let visible = images.memberships(who, id).await.map_err(ApiError::v2)?;
            let m = visible.iter().find(|m| m.member_id == *member).ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, format!("{member} is not a member of image {id}"))
            })?;
            Ok(json_response(StatusCode::OK, view::member(id, m).to_string()))
        }
        (Method::PUT, ["images", i, "members", member]) => {
            let id = id(i)?;
            let body = read_json(req).await?;
            let status =
                body.get("status").and_then(Value::as_str).and_then(|s| s.parse::<MemberStatus>().ok()).ok_or_else(
                    || ApiError::bad_request("the body must be {\"status\": \"accepted\"}, or rejected, or pending"),
                )?;
            let m = images.set_member_status(who, id, member, status).await.map_err(ApiError::v2)?;
            Ok(json_response(StatusCode::OK, view::member(id, &m).to_string()))
        }
        (Method::DELETE, ["images", i, "members", member]) => {
            images.withdraw(who, id(i)?, member).await.map_err(ApiError::v2)?;
            Ok(no_content())
        }
        (Method::DELETE, ["stores", store, i]) => {
            images.remove_from_store(who, id(i)?, store).await.map_err(ApiError::v2)?;
            Ok(no_content())
        }
        (Method::POST, ["images", i, "import"]) => import(tank, who, id(i)?, req).await,
        (Method::GET, ["info", "import"]) => {
            let doc = json!({"import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": import_methods(tank),
            }});
            Ok(json_response(StatusCode::OK, doc.to_string()))
        }
        (Method::GET, ["info", "stores"]) => {
            let stores = images.stores();
            // The staging store holds no image's data: it is not one to choose.
            let staging = tank.api.staging_store.as_deref();
            let list: Vec<Value> = stores
                .entries()
                .iter()
                .filter(|e| staging.is_none_or(|s| !e.names.iter().any(|n| n == s)))
                .map(|e| {
                    let mut s = json!({"id": e.names[0], "description": format!("the {} store plugin", e.names[0])});
                    if stores.is_default(e) {
                        s["default"] = json!("true");
                    }
                    if e.external {
                        s["read-only"] = json!("true");
                    }
                    s
                })
                .collect();
            Ok(json_response(StatusCode::OK, json!({ "stores": list }).to_string()))
        }
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no such resource: /v2{rest}"))),
    }
}

fn no_content() -> Response<ResponseBody> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

fn image_json(tank: &Tank, status: StatusCode, image: &tank_core::Image) -> Response<ResponseBody> {
    json_response(status, view::image(image, shown(tank)).to_string())
}

fn shown(tank: &Tank) -> view::Shown {
    view::Shown { direct_url: tank.api.show_image_direct_url, locations: tank.api.show_multiple_locations }
}

/// A JSON request body: `application/json` (or no type), at most [`MAX_JSON`] bytes.
async fn read_json(req: Request<Incoming>) -> Result<Value, ApiError> {
    let media = content_type(req.headers());
    if !media.is_empty() && media != "application/json" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send the body as Content-Type application/json, not {media:?}"),
        ));
    }
    let bytes = body::read_small(req.into_body(), MAX_JSON).await.map_err(|(s, m)| ApiError::new(s, m))?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

fn content_type(headers: &HeaderMap) -> String {
    let value = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    value.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// `POST /v2/images`.
async fn create(
    tank: &Tank,
    base: &str,
    who: &Caller,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, ApiError> {
    let body = read_json(req).await?;
    let fields =
        body.as_object().ok_or_else(|| ApiError::bad_request("the body must be a JSON object of image attributes"))?;
    let mut new = NewImage::default();
    for (name, value) in fields {
        if name == "id" {
            let text = value.as_str().ok_or_else(|| ApiError::bad_request("invalid id: it must be a UUID string"))?;
            new.id = Some(text.parse().map_err(|e: tank_core::Error| ApiError::bad_request(e.to_string()))?);
            continue;
        }
        let attr = attrs::classify(name)?;
        if value.is_null() && matches!(attr, attrs::Attr::Custom(_)) {
            // `"kernel_id": null` and the like: a property that is not set.
            continue;
        }
        new.changes.push(attrs::set(&attr, value)?);
    }
    let image = tank.images.create(who, new, None).await.map_err(ApiError::v2)?;
    let mut r = image_json(tank, StatusCode::CREATED, &image);
    if let Ok(methods) = HeaderValue::from_str(&import_methods(tank).join(",")) {
        r.headers_mut().insert("openstack-image-import-methods", methods);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{base}{}", view::image_path(image.id))) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// `GET /v2/images`.
async fn list_images(tank: &Tank, who: &Caller, query: &str) -> Result<Response<ResponseBody>, ApiError> {
    let q = list::parse(query, who, &tank.api)?;
    let limit = q.limit as usize;
    let page = tank.images.list(who, q).await.map_err(ApiError::v2)?;
    let mut doc = json!({
        "images": page.iter().map(|i| view::image(i, shown(tank))).collect::<Vec<_>>(),
        "first": list::first_link(query),
        "schema": "/v2/schemas/images",
    });
    if let Some(last) = page.last().filter(|_| limit > 0 && page.len() == limit) {
        doc["next"] = json!(list::next_link(query, last.id));
    }
    Ok(json_response(StatusCode::OK, doc.to_string()))
}

/// `PATCH /v2/images/{id}`: the patch is applied to the image as read, and written only
/// if nothing changed it meanwhile; otherwise it is applied again to the new state.
async fn update(
    tank: &Tank,
    who: &Caller,
    id: ImageId,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, ApiError> {
    let dialect = patch::Dialect::of(req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()))?;
    let bytes = body::read_small(req.into_body(), MAX_JSON).await.map_err(|(s, m)| ApiError::new(s, m))?;
    let ops = patch::parse(&bytes, dialect)?;
    const ATTEMPTS: usize = 16;
    for attempt in 1..=ATTEMPTS {
        let record = tank.images.get(who, id).await.map_err(ApiError::v2)?;
        let changes = patch::changes(&ops, dialect, &record.value)?;
        match tank.images.update_metadata(who, id, changes, Some(record.revision)).await {
            Ok(updated) => return Ok(image_json(tank, StatusCode::OK, &updated.value)),
            Err(ImageError::Conflict(_)) if attempt < ATTEMPTS => continue,
            Err(e) => return Err(ApiError::v2(e)),
        }
    }
    unreachable!("the last attempt returns")
}

fn size_header(headers: &HeaderMap, name: &str) -> Result<Option<u64>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("{name} must be a whole number of bytes"))),
    }
}

/// Where a `PUT` of data goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `/file`: the image's data.
    File,
    /// `/stage`: staged for a glance-direct import.
    Stage,
}

/// `PUT /v2/images/{id}/file` and `/stage`: streamed, sized or chunked.
async fn upload(
    tank: &Tank,
    who: &Caller,
    id: ImageId,
    req: Request<Incoming>,
    target: Target,
) -> Result<Response<ResponseBody>, ApiError> {
    let (parts, body) = req.into_parts();
    // Dropped unread when the request is refused: see `Unread`.
    let body = body::Unread::new(body);
    let media = content_type(&parts.headers);
    if media != "application/octet-stream" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("image data must be sent as Content-Type: application/octet-stream, not {media:?}"),
        ));
    }
    let declared = size_header(&parts.headers, "x-openstack-image-size")?;
    let transport = size_header(&parts.headers, header::CONTENT_LENGTH.as_str())?;
    if let (Some(d), Some(t)) = (declared, transport) {
        if d != t {
            return Err(ApiError::v2(ImageError::SizeMismatch(tank_images::Mismatch::Declarations {
                declared: d,
                transport: t,
                registered: false,
            })));
        }
    }
    let chunked = parts.headers.contains_key(header::TRANSFER_ENCODING);
    // Without a length or chunking, the body is empty: Nova's zero-length activation.
    let length = transport.or(declared).or(if chunked { None } else { Some(0) });
    let store = parts.headers.get("x-image-meta-store").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let checksum = parts.headers.get("content-md5").map(content_md5).transpose()?;
    let data = Data { source: Source::Stream { body: body.into_stream(), length }, store };
    let done = match target {
        Target::File => tank.images.upload(who, id, data, checksum).await,
        Target::Stage => tank.images.stage(who, id, data, checksum).await,
    };
    done.map_err(ApiError::v2)?;
    Ok(no_content())
}

/// A `Content-MD5` request header as the MD5 in lower-case hex: RFC 1864's base64 of the
/// 16 bytes, or the 32 hex digits that Glance and Tank send on downloads.
fn content_md5(value: &HeaderValue) -> Result<String, ApiError> {
    use base64::Engine;
    let text = value.to_str().unwrap_or("").trim();
    let bytes = if text.len() == 32 {
        hex::decode(text).ok()
    } else {
        base64::engine::general_purpose::STANDARD.decode(text).ok()
    };
    match bytes {
        Some(md5) if md5.len() == 16 => Ok(hex::encode(md5)),
        _ => Err(ApiError::bad_request(
            "content-md5 must be the data's MD5: its 16 bytes in base64 (RFC 1864), or 32 hex digits",
        )),
    }
}

/// A `Range` request header: `bytes=a-b`, `bytes=a-` or `bytes=-n`. `None` for anything
/// else, which is ignored as RFC 9110 allows (several ranges included).
fn parse_range(value: &str) -> Option<(Option<u64>, Option<u64>)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let num = |s: &str| if s.trim().is_empty() { Ok(None) } else { s.trim().parse::<u64>().map(Some) };
    match (num(a).ok()?, num(b).ok()?) {
        (None, None) => None,
        (Some(first), Some(last)) if last < first => None,
        pair => Some(pair),
    }
}

/// `GET /v2/images/{id}/file`: the whole data (200), a range of it (206), or 204 when the
/// image has none.
async fn download(
    tank: &Tank,
    who: &Caller,
    id: ImageId,
    headers: &HeaderMap,
) -> Result<Response<ResponseBody>, ApiError> {
    let wanted = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(parse_range);
    let range = match wanted {
        None => None,
        Some((Some(first), last)) => Some(Range { offset: first, length: last.map(|l| (l - first).saturating_add(1)) }),
        Some((None, Some(suffix))) => {
            // The last `suffix` bytes: the size is needed to know where they start.
            let image = tank.images.get(who, id).await.map_err(ApiError::v2)?.value;
            if suffix == 0 {
                return Err(unsatisfiable(image.size));
            }
            Some(Range { offset: image.size.saturating_sub(suffix), length: None })
        }
        Some((None, None)) => unreachable!("parse_range refuses it"),
    };
    let (image, data) = match tank.images.download(who, id, range).await {
        Ok(found) => found,
        Err(ImageError::NoData { .. }) => return Ok(no_content()),
        Err(ImageError::RangeNotSatisfiable { size }) => return Err(unsatisfiable(size)),
        Err(e) => return Err(ApiError::v2(e)),
    };
    if range.is_some() && image.size == 0 {
        // No byte of an empty image is there to send (RFC 9110).
        return Err(unsatisfiable(0));
    }
    let length = data.remaining().unwrap_or(image.size);
    let mut r = Response::new(body::download_body(data));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(sum) = image.checksum.as_deref().and_then(|s| HeaderValue::from_str(s).ok()) {
        h.insert("content-md5", sum);
    }
    if let Some(range) = range {
        let last = range.offset.saturating_add(length).saturating_sub(1);
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{last}/{}", range.offset, image.size)) {
            h.insert(header::CONTENT_RANGE, v);
        }
        *r.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(r)
}

fn unsatisfiable(size: u64) -> ApiError {
    ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, format!("the range is outside the image's {size} bytes"))
        .with_header("content-range", format!("bytes */{size}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(parse_range("bytes=0-99"), Some((Some(0), Some(99))));
        assert_eq!(parse_range("bytes=100-"), Some((Some(100), None)));
        assert_eq!(parse_range("bytes=-5"), Some((None, Some(5))));
        for ignored in ["bytes=5-1", "bytes=-", "items=0-1", "bytes=0-1,4-5", "bytes=a-b"] {
            assert_eq!(parse_range(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn content_md5_is_read_in_base64_and_in_hex() {
        let md5 = "9e107d9d372bb6826bd81d3542a419d6";
        for form in [md5, "9E107D9D372BB6826BD81D3542A419D6", "nhB9nTcrtoJr2B01QqQZ1g=="] {
            assert_eq!(content_md5(&HeaderValue::from_static(form)).unwrap(), md5, "{form}");
        }
        for bad in ["", "9e107d9d", "not base64 at all", "AAAA", "zz107d9d372bb6826bd81d3542a419d6"] {
            assert_eq!(content_md5(&HeaderValue::from_static(bad)).unwrap_err().status, 400, "{bad:?}");
        }
    }

    #[test]
    fn every_route_has_its_methods() {
        assert_eq!(allowed(&["images"]), Some(&[Method::GET, Method::POST][..]));
        assert_eq!(allowed(&["images", "x", "file"]), Some(&[Method::GET, Method::PUT][..]));
        assert_eq!(allowed(&["images", "x", "actions", "explode"]), None);
        assert_eq!(path("/v2/images"), Some("/images"));
        assert_eq!(path("/v2"), Some(""));
        assert_eq!(path("/v20/images"), None);
        assert_eq!(path("/v1/images"), None);
    }
}
