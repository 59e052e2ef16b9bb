//! The `/v1/images` handlers: create, upload, read, list, update and delete, following
//! Glance's E0 code (reference §1.6) unless docs/api-v1.md says otherwise.
//!
//! Registry calls block (they enter a plugin), so each runs on the blocking pool; image
//! data moves through [`super::transfer`].

use std::sync::Arc;

use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tank_core::{query::ListQuery, Image, ImageId, Location, Status};
use tank_sdk::{ErrorKind, Revisioned};

use super::{
    context::Context,
    error::ApiError,
    full, json_response, meta,
    transfer::{self, Download},
    ResponseBody,
};
use crate::{
    config::ApiSettings,
    list_params,
    plugin::handles::{self, Registry, Store},
    state::{move_status, now, Tank},
};

/// Glance's hard cap on a declared size (`IMAGE_SIZE_CAP`, 1 PiB).
const SIZE_CAP: u64 = 1 << 50;

async fn blocking<T: Send + 'static>(
    registry: &Arc<Registry>,
    f: impl FnOnce(&Registry) -> tank_sdk::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let registry = registry.clone();
    Ok(tokio::task::spawn_blocking(move || f(&registry)).await??)
}

fn parse_id(id: &str) -> Result<ImageId, ApiError> {
    // An id that cannot exist is simply not found, as in Glance.
    id.parse().map_err(|_| ApiError::image_not_found(id))
}

/// The image `id` as the caller may see it: deleted images and images the caller may not
/// see are not found (never "forbidden": a caller must not learn that they exist).
pub(super) async fn visible(tank: &Tank, ctx: &Context, id: &str) -> Result<Revisioned<Image>, ApiError> {
    let id = parse_id(id)?;
    let record = blocking(&tank.registry, move |r| r.get(id)).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            ApiError::image_not_found(id)
        } else {
            e
        }
    })?;
    if record.value.deleted
        || matches!(record.value.status, Status::Deleted | Status::PendingDelete)
        || !ctx.can_see(&record.value)
    {
        return Err(ApiError::image_not_found(id));
    }
    Ok(record)
}

/// [`visible`], and the caller may change it.
async fn modifiable(tank: &Tank, ctx: &Context, id: &str, what: &str) -> Result<Revisioned<Image>, ApiError> {
    let record = visible(tank, ctx, id).await?;
    if !ctx.can_modify(&record.value) {
        return Err(ctx.refuse_change(&record.value, what));
    }
    Ok(record)
}

/// Whether the request carries a body (Glance's rule: chunked, or a positive length).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

/// Checks an upload's headers before anything is created, and returns the size the body
/// must have, if known.
fn check_upload_headers(headers: &HeaderMap, declared: Option<u64>, cap: u64) -> Result<Option<u64>, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some("application/octet-stream") {
        return Err(ApiError::bad_request(format!(
            "image data must be sent as Content-Type: application/octet-stream, not {content_type:?}"
        )));
    }
    let length = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("Content-Length is not a number"))?,
        ),
    };
    check_sizes(length, declared, cap, "Content-Length")
}

/// The size the data must have: the length its source announces (`length`, named `what`
/// in messages) and the declared one must agree, and neither may pass the caps.
fn check_sizes(length: Option<u64>, declared: Option<u64>, cap: u64, what: &str) -> Result<Option<u64>, ApiError> {
    if let (Some(l), Some(d)) = (length, declared) {
        if l != d {
            return Err(ApiError::bad_request(format!(
                "x-image-meta-size says {d} bytes but {what} says {l}; send matching values"
            )));
        }
    }
    let size = length.or(declared);
    if size.is_some_and(|s| s > SIZE_CAP) {
        return Err(ApiError::bad_request(format!("images larger than {SIZE_CAP} bytes are not accepted")));
    }
    if let Some(s) = size.filter(|&s| s > cap) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the image's {s} bytes are more than image_size_cap ({cap} bytes); nothing was created"),
        ));
    }
    Ok(size)
}

/// Refuses a declared size over [`SIZE_CAP`] (400) or `image_size_cap` (413) in every
/// request, with data or without: E0 refused the header itself (reference §1.3,
/// docs/api-v1.md), and a reservation larger than either could never be filled. With data,
/// [`check_sizes`] checks it again together with the data's length.
fn check_declared_size(m: &meta::RequestMeta, image_size_cap: u64) -> Result<(), ApiError> {
    check_sizes(None, m.patch.size, image_size_cap, "x-image-meta-size").map(drop)
}

/// Refuses to change the size or checksum of an image that has (or is receiving) data:
/// they describe that data, and `ETag` and downloads rely on them. Sending the values it
/// already has is fine.
fn refuse_data_fields_change(image: &Image, m: &meta::RequestMeta) -> Result<(), ApiError> {
    if image.status == Status::Queued {
        return Ok(());
    }
    let size_changes = m.patch.size.is_some_and(|s| s != image.size);
    let checksum_changes = m.patch.checksum.as_ref().is_some_and(|c| image.checksum.as_ref() != Some(c));
    if size_changes || checksum_changes {
        let field = if size_changes { "size" } else { "checksum" };
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "x-image-meta-{field} of image {} cannot change: it is {} and the field describes its data",
                image.id, image.status
            ),
        ));
    }
    Ok(())
}

fn pick_store(tank: &Tank, name: Option<&str>) -> Result<Arc<Store>, ApiError> {
    match name {
        None => Ok(tank.stores.default_store().clone()),
        Some(n) => tank.stores.named(n).cloned().ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown store {n:?} (x-image-meta-store); this server has: {}",
                tank.stores.describe()
            ))
        }),
    }
}

fn image_response(status: StatusCode, image: &Image) -> Response<ResponseBody> {
    let mut r = json_response(status, json!({ "image": meta::detail(image) }).to_string());
    let id = image.id.to_string();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/images/{id}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(sum) = image.checksum.as_deref().and_then(|s| HeaderValue::from_str(s).ok()) {
        r.headers_mut().insert(header::ETAG, sum);
    }
    r
}

/// What a request brings besides metadata, checked before anything is created.
enum Data {
    /// Bytes to store (the request body, or a copy-from source's), with the size they
    /// must have when known.
    Upload(transfer::UploadBody, Option<u64>),
    /// Data that stays where it is (`x-image-meta-location`), read by `store`, of `size`
    /// bytes.
    Registered { location: Location, store: Arc<Store>, size: u64 },
}

/// Whether the request brings data: a body, a copy-from URL or a location.
fn brings_data(headers: &HeaderMap, m: &meta::RequestMeta) -> bool {
    has_body(headers) || m.copy_from.is_some() || m.location.is_some()
}

/// The store that reads `url`, a URL the client gave in `header`: one whose locations are
/// external (http, s3, ...). Anything else is refused, `file://` above all: a client must
/// not point an image at a path on the server.
fn external_source(tank: &Tank, url: &str, header: &str) -> Result<(Location, Arc<Store>), ApiError> {
    let location = Location::parse(url).map_err(|e| ApiError::bad_request(format!("{header}: {e}")))?;
    match tank.stores.external(location.scheme()) {
        Some(store) => Ok((location, store.clone())),
        None => Err(ApiError::bad_request(format!(
            "{header}: {}:// URLs are not accepted; this server reads images from {}",
            location.scheme(),
            match tank.stores.external_schemes() {
                schemes if schemes.is_empty() => "no URLs (no store with external locations is loaded)".to_owned(),
                schemes => schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(", "),
            }
        ))),
    }
}

/// A source store's error about a URL the client gave in `header`. "Not found" there is
/// the client's mistake, not a missing image: 400.
fn source_error(header: &str, store: &str, e: tank_sdk::Error) -> ApiError {
    let status = match e.kind {
        ErrorKind::NOT_FOUND => StatusCode::BAD_REQUEST,
        kind => super::error::status_of(kind),
    };
    let mut error = ApiError::from(e);
    error.status = status;
    error.message = format!("{header} (store {store}): {}", error.message);
    error
}

/// The data a request brings and the size it must have: the request body, the response of
/// the copy-from URL, or the location to register. Everything is checked before anything
/// is created; `None` when the request brings no data.
async fn incoming_data(
    tank: &Tank,
    headers: &HeaderMap,
    m: &meta::RequestMeta,
    body: transfer::Unread,
    declared: Option<u64>,
) -> Result<Option<Data>, ApiError> {
    let cap = tank.api.image_size_cap;
    let sources = [has_body(headers), m.copy_from.is_some(), m.location.is_some()];
    if sources.iter().filter(|s| **s).count() > 1 {
        return Err(ApiError::bad_request(
            "send the image data in the body, name it with copy-from, or register it with x-image-meta-location: one of them",
        ));
    }
    if let Some(url) = &m.copy_from {
        const HEADER: &str = "x-glance-api-copy-from";
        let (location, source) = external_source(tank, url, HEADER)?;
        // The source's length is checked as the bytes arrive (against the declared size
        // and the caps), like a chunked upload's.
        check_sizes(None, declared, cap, "")?;
        let name = source.name.clone();
        let reader = tokio::task::spawn_blocking(move || source.get(location.expose(), 0, None))
            .await?
            .map_err(|e| source_error(HEADER, &name, e))?;
        return Ok(Some(Data::Upload(transfer::source_body(reader), declared)));
    }
    if let Some(url) = &m.location {
        const HEADER: &str = "x-image-meta-location";
        let (location, store) = external_source(tank, url, HEADER)?;
        let (source, at) = (store.clone(), location.clone());
        let size = tokio::task::spawn_blocking(move || source.size(at.expose()))
            .await?
            .map_err(|e| source_error(HEADER, &store.name, e))?;
        let size = check_sizes(Some(size), declared, cap, "the data at x-image-meta-location")?.unwrap_or(size);
        return Ok(Some(Data::Registered { location, store, size }));
    }
    if has_body(headers) {
        let size = check_upload_headers(headers, declared, cap)?;
        return Ok(Some(Data::Upload(transfer::request_body(body), size)));
    }
    Ok(None)
}

/// Points `image` at data registered by location: it is `active` at once, with the size
/// the store reported and no checksum (Tank never read the data), and with no store of
/// its own, since Tank did not write the data and will not delete it.
fn register(image: &mut Image, location: Location, size: u64) -> Result<(), ApiError> {
    image.size = size;
    image.location = Some(location);
    image.store = None;
    image.set_status(Status::Active, now())?;
    Ok(())
}

/// `POST /v1/images`: reserve, and upload when a body comes with it.
pub async fn create(tank: &Tank, ctx: &Context, req: Request<Incoming>) -> Result<Response<ResponseBody>, ApiError> {
    let (parts, body) = req.into_parts();
    // Dropped unread when the request is refused: see `Unread`.
    let body = transfer::Unread::new(body);
    let mut m = meta::from_headers(&parts.headers)?;
    if !ctx.is_admin || m.patch.owner.is_none() {
        // Only admins choose an owner; everyone else's images are their own (E0 silently
        // replaced the header, and so does Tank).
        m.patch.owner = ctx.owner().map(str::to_owned);
    }
    check_declared_size(&m, tank.api.image_size_cap)?;
    let store = pick_store(tank, m.patch.store.as_deref())?;
    let data = incoming_data(tank, &parts.headers, &m, body, m.patch.size).await?;

    let mut image = Image::new(m.patch.id.unwrap_or_else(ImageId::random), now());
    m.patch.apply(&mut image, now())?;
    let data = match data {
        None => {
            // A reservation's size is whatever the client declared; the upload must match it.
            image.size = m.patch.size.unwrap_or(0);
            None
        }
        Some(Data::Registered { location, store, size }) => {
            register(&mut image, location, size)?;
            tracing::info!(image = %image.id, store = %store.name, size, "image registered at an external location");
            None
        }
        Some(Data::Upload(body, size)) => Some((body, size)),
    };
    let record = image.clone();
    let revision = blocking(&tank.registry, move |r| r.create(&record)).await.map_err(|e| {
        if e.status == StatusCode::CONFLICT {
            ApiError::conflict(format!("an image with id {} already exists", image.id))
        } else {
            e
        }
    })?;
    let Some((body, size)) = data else {
        return Ok(image_response(StatusCode::CREATED, &image));
    };
    let image = upload_data(tank, Revisioned { revision, value: image }, store, body, size, m.patch.checksum).await?;
    Ok(image_response(StatusCode::CREATED, &image))
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How many bytes `image`'s upload may bring: `image_size_cap`, and what is left of its
/// owner's `user_storage_quota` (active and uploading images count; the quota needs a
/// look at every image, so it costs a registry scan per upload when it is set).
async fn upload_limit(tank: &Tank, image: &Image) -> Result<transfer::Limit, ApiError> {
    let cap = tank.api.image_size_cap;
    let mut limit = transfer::Limit { bytes: cap, reason: format!("image_size_cap ({cap} bytes)") };
    let quota = tank.api.user_storage_quota;
    if quota > 0 {
        if let Some(owner) = image.owner.clone() {
            let me = image.id;
            let used: u64 = blocking(&tank.registry, move |r| {
                let all = r.with_status(&[Status::Active, Status::Saving])?;
                Ok(all.iter().filter(|i| i.id != me && i.owner.as_ref() == Some(&owner)).map(|i| i.size).sum())
            })
            .await?;
            let left = quota.saturating_sub(used);
            if left < limit.bytes {
                limit = transfer::Limit {
                    bytes: left,
                    reason: format!("what is left of the owner's user_storage_quota ({left} of {quota} bytes)"),
                };
            }
        }
    }
    Ok(limit)
}

/// Moves a queued image through `saving` to `active` with the body's data, or to `killed`
/// with nothing left in the store.
async fn upload_data(
    tank: &Tank,
    record: Revisioned<Image>,
    store: Arc<Store>,
    body: transfer::UploadBody,
    size: Option<u64>,
    checksum: Option<String>,
) -> Result<Image, ApiError> {
    let Revisioned { value: mut image, revision } = record;
    image.set_status(Status::Saving, now())?;
    // The store is recorded before any data exists, so recovery after a crash knows where
    // the partial data is.
    image.store = Some(store.name.clone());
    let saving = image.clone();
    let revision = blocking(&tank.registry, move |r| r.update(&saving, revision)).await?;

    let limit = upload_limit(tank, &image).await?;
    let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
    lock(&tank.uploads).insert(image.id, cancel_tx);
    let started = std::time::Instant::now();
    let received = transfer::receive(body, store.clone(), image.id, size, &limit, cancel).await;
    lock(&tank.uploads).remove(&image.id);
    let received_ms = started.elapsed().as_millis() as u64;
    let outcome = match received {
        Err(e) => Err(e),
        Ok(r) => match checksum.as_deref() {
            Some(want) if want != r.checksum => {
                transfer::discard(r.writer).await;
                Err(ApiError::bad_request(format!(
                    "checksum mismatch: the data has MD5 {}, x-image-meta-checksum says {want}; the image was not stored",
                    r.checksum
                )))
            }
            _ => {
                let writer = r.writer;
                match tokio::task::spawn_blocking(move || handles::finish(writer)).await? {
                    Ok(location) => Ok((location, r.size, r.checksum)),
                    Err(e) => Err(ApiError::from(e)),
                }
            }
        },
    };
    match outcome {
        Ok((location, size, checksum)) => {
            let location = Location::parse(&location).map_err(|e| {
                tracing::error!(store = %store.name, "the store returned an unusable location: {e}");
                ApiError::internal("the store returned an unusable location")
            })?;
            image.size = size;
            image.checksum = Some(checksum);
            image.location = Some(location.clone());
            image.set_status(Status::Active, now())?;
            let active = image.clone();
            if let Err(e) = blocking(&tank.registry, move |r| r.update(&active, revision)).await {
                // Someone deleted the image meanwhile: its data must not outlive it.
                let store = store.clone();
                let _ = tokio::task::spawn_blocking(move || store.delete(location.expose())).await;
                return Err(if e.status == StatusCode::CONFLICT {
                    ApiError::conflict(format!("image {} was changed or deleted during the upload", image.id))
                } else {
                    e
                });
            }
            tracing::info!(image = %image.id, size, store = %store.name, received_ms,
                durable_ms = started.elapsed().as_millis() as u64 - received_ms, "image stored");
            Ok(image)
        }
        Err(e) => {
            let id = image.id;
            let killed =
                blocking(&tank.registry, move |r| move_status(r, id, Status::Killed, |s| s == Status::Saving)).await;
            if let Err(k) = killed {
                tracing::error!(image = %id, "could not mark a failed upload killed: {}", k.message);
            }
            tracing::warn!(image = %id, status = e.status.as_u16(), "upload failed: {}", e.message);
            Err(e)
        }
    }
}

/// `PUT /v1/images/{id}`: update metadata, and upload data to a queued image.
pub async fn update(
    tank: &Tank,
    ctx: &Context,
    id: &str,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, ApiError> {
    let (parts, body) = req.into_parts();
    // Dropped unread when the request is refused: see `Unread`.
    let body = transfer::Unread::new(body);
    let record = modifiable(tank, ctx, id, "change it").await?;
    let mut m = meta::from_headers(&parts.headers)?;
    if !ctx.is_admin {
        // The registry drops an owner change that does not come from an admin.
        m.patch.owner = None;
    }
    check_declared_size(&m, tank.api.image_size_cap)?;
    refuse_data_fields_change(&record.value, &m)?;
    if m.patch.id.is_some_and(|new| new != record.value.id) {
        return Err(ApiError::bad_request("an image's id cannot be changed"));
    }
    let upload = brings_data(&parts.headers, &m);
    if upload && record.value.status != Status::Queued {
        return Err(ApiError::conflict(format!(
            "cannot upload to image {id}: it is {}, and data can only be uploaded to a queued image",
            record.value.status
        )));
    }
    let declared = m.patch.size.or((record.value.size > 0).then_some(record.value.size));
    let store = if upload { Some(pick_store(tank, m.patch.store.as_deref())?) } else { None };
    let data = incoming_data(tank, &parts.headers, &m, body, declared).await?;

    let mut patch = m.patch;
    // Glance replaces the property set on a metadata update unless told not to, and never
    // when data is uploaded (reference §1.3).
    let purge = parts
        .headers
        .get("x-glance-registry-purge-props")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| !v.eq_ignore_ascii_case("false"));
    patch.purge_properties = purge && !upload;
    let mut image = record.value;
    patch.apply(&mut image, now())?;
    let data = match data {
        Some(Data::Registered { location, size, .. }) => {
            register(&mut image, location, size)?;
            None
        }
        Some(Data::Upload(body, size)) => Some((body, size)),
        None => None,
    };
    let changed = image.clone();
    let revision = blocking(&tank.registry, move |r| r.update(&changed, record.revision)).await.map_err(|e| {
        if e.status == StatusCode::CONFLICT {
            ApiError::conflict(format!("image {id} was changed by another request; retry"))
        } else {
            e
        }
    })?;
    let image = match (store, data) {
        (Some(store), Some((body, size))) => {
            let checksum = patch.checksum.clone();
            upload_data(tank, Revisioned { revision, value: image }, store, body, size, checksum).await?
        }
        _ => image,
    };
    Ok(image_response(StatusCode::OK, &image))
}

/// `HEAD /v1/images/{id}`.
pub async fn head(tank: &Tank, ctx: &Context, id: &str) -> Result<Response<ResponseBody>, ApiError> {
    let record = visible(tank, ctx, id).await?;
    let mut r = Response::new(full(Vec::new()));
    meta::to_headers(&record.value, r.headers_mut());
    Ok(r)
}

/// The store holding `image`'s data, or 503 when it is not loaded.
fn store_holding(tank: &Tank, image: &Image) -> Result<Arc<Store>, ApiError> {
    tank.stores.holding(image).cloned().ok_or_else(|| {
        let scheme = image.location.as_ref().map(|l| l.scheme().to_owned());
        tracing::error!(image = %image.id, ?scheme, store = ?image.store, "no loaded store holds this image's data");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("the store holding image {} is not available", image.id))
    })
}

/// `GET /v1/images/{id}`: headers and the data, for active images only.
pub async fn download(tank: &Tank, ctx: &Context, id: &str) -> Result<Response<ResponseBody>, ApiError> {
    let image = visible(tank, ctx, id).await?.value;
    let location = match (&image.status, &image.location) {
        (Status::Active, Some(l)) => l.clone(),
        _ => {
            return Err(ApiError::new(StatusCode::NOT_FOUND, format!("image {id} has no data: it is {}", image.status)))
        }
    };
    let store = store_holding(tank, &image)?;
    let reader = tokio::task::spawn_blocking(move || store.get(location.expose(), 0, None)).await??;
    use http_body_util::BodyExt;
    let mut r = Response::new(Download::start(reader, Some(image.size)).boxed());
    meta::to_headers(&image, r.headers_mut());
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(image.size));
    Ok(r)
}

/// `GET /v1/images` and `/v1/images/detail`.
pub async fn list(
    tank: &Tank,
    ctx: &Context,
    req: &Request<Incoming>,
    detailed: bool,
) -> Result<Response<ResponseBody>, ApiError> {
    let query = list_query(req.uri().query().unwrap_or(""), ctx, &tank.api)?;
    let marker = query.marker;
    let images = blocking(&tank.registry, move |r| r.list(&query)).await.map_err(|e| match marker {
        Some(m) if e.status == StatusCode::BAD_REQUEST => {
            ApiError::bad_request(format!("invalid marker {m}: no image with that id is visible to you"))
        }
        _ => e,
    })?;
    let view = if detailed { meta::detail } else { meta::brief };
    let body = json!({ "images": images.iter().map(view).collect::<Vec<_>>() });
    Ok(json_response(StatusCode::OK, body.to_string()))
}

/// A list request's filters, sort and page, with the API's defaults: E0's `is_public`
/// (public images and the caller's own and shared ones), and unknown parameters refused.
fn list_query(query: &str, ctx: &Context, api: &ApiSettings) -> Result<ListQuery, ApiError> {
    let rules = list_params::Rules {
        limit_default: api.limit_param_default,
        limit_max: api.api_limit_max,
        is_public_default: Some(true),
        refuse_unknown: true,
    };
    list_params::parse(query, ctx.viewer(), rules).map_err(ApiError::bad_request)
}

/// A path segment with its `%XX` escapes decoded (member names may hold any character).
pub(super) fn decode_segment(segment: &str) -> String {
    list_params::percent_decode(segment)
}

/// `DELETE /v1/images/{id}`: the data first, then the record, so a failure never leaves
/// data without an image pointing at it.
pub async fn delete(tank: &Tank, ctx: &Context, id: &str) -> Result<Response<ResponseBody>, ApiError> {
    let record = modifiable(tank, ctx, id, "delete it").await?;
    let image = record.value;
    if image.protected {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("image {id} is protected; set x-image-meta-protected: false first"),
        ));
    }
    if tank.api.delayed_delete && image.location.is_some() && image.owns_data() {
        // The data stays for scrub_time; the scrubber removes it (crate::scrubber).
        let id = image.id;
        blocking(&tank.registry, move |r| {
            move_status(r, id, Status::PendingDelete, |s| !matches!(s, Status::Deleted | Status::PendingDelete))
        })
        .await?;
        return Ok(Response::new(full(Vec::new())));
    }
    // Data registered by location is someone else's: only the record goes.
    if let Some(location) = image.location.clone().filter(|_| image.owns_data()) {
        let store = store_holding(tank, &image)?;
        match tokio::task::spawn_blocking(move || store.delete(location.expose())).await? {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::NOT_FOUND => {
                tracing::warn!(image = %image.id, "image data was already gone from its store");
            }
            Err(e) => return Err(e.into()),
        }
    }
    // The data is gone: the record must follow even if another request changed it since.
    let id = image.id;
    let was_saving = image.status == Status::Saving;
    blocking(&tank.registry, move |r| move_status(r, id, Status::Deleted, |s| s != Status::Deleted)).await?;
    if was_saving {
        // Stop the upload here: it removes its partial data. (An upload on another server
        // finds the image deleted when it finishes, and removes its data then.)
        if let Some(stop) = lock(&tank.uploads).get(&id) {
            let _ = stop.send(true);
        }
    }
    Ok(Response::new(full(Vec::new())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tank_core::query::{SortDir, SortKey};

    fn admin() -> Context {
        Context::from_headers(&HeaderMap::new(), true).unwrap()
    }

    #[test]
    fn list_parameters_are_checked_and_decoded() {
        let api = ApiSettings::default();
        let q = list_query("limit=5&sort_key=name&sort_dir=asc&changes-since=2020-01-02T03%3A04%3A05", &admin(), &api)
            .unwrap();
        assert_eq!((q.limit, q.sort_key, q.sort_dir), (5, SortKey::Name, SortDir::Asc));
        assert_eq!(q.filters.changes_since.unwrap().to_string(), "2020-01-02T03:04:05.000000");
        assert_eq!(list_query("limit=99999", &admin(), &api).unwrap().limit, 1000);
        let small = ApiSettings { limit_param_default: 7, api_limit_max: 9, ..ApiSettings::default() };
        assert_eq!(list_query("", &admin(), &small).unwrap().limit, 7);
        assert_eq!(list_query("limit=10", &admin(), &small).unwrap().limit, 9);
        for bad in [
            "limit=-1",
            "limit=x",
            "marker=nope",
            "sort_key=colour",
            "sort_dir=up",
            "changes-since=yesterday",
            "size_min=-3",
            "size_max=big",
            "min_ram=1.5",
            "min_disk=x",
            "is_public=maybe",
            "protected=2",
            "status=sleeping",
            "disk_format=floppy",
            "container_format=box",
            "colour=blue",
        ] {
            let e = list_query(bad, &admin(), &api).unwrap_err();
            let key = bad.split('=').next().unwrap();
            assert!(e.message.contains(key), "{bad}: {}", e.message);
        }
        assert_eq!(list_params::percent_decode("a%20b%zz%4"), "a b%zz%4");
    }

    #[test]
    fn a_declared_size_over_one_pib_is_refused_with_or_without_data() {
        let mut m = meta::RequestMeta::default();
        m.patch.size = Some(SIZE_CAP);
        assert!(check_declared_size(&m, u64::MAX).is_ok());
        m.patch.size = Some(SIZE_CAP + 1);
        let e = check_declared_size(&m, u64::MAX).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains(&SIZE_CAP.to_string()), "{}", e.message);
        m.patch.size = Some(11);
        assert_eq!(check_declared_size(&m, 10).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn size_and_checksum_of_an_image_with_data_cannot_change() {
        let mut image = Image::new(ImageId::random(), now());
        image.size = 5;
        image.checksum = Some("abc".into());
        let mut m = meta::RequestMeta::default();
        m.patch.size = Some(6);
        assert!(refuse_data_fields_change(&image, &m).is_ok(), "a queued image's size is only a declaration");
        image.set_status(Status::Saving, now()).unwrap();
        image.set_status(Status::Active, now()).unwrap();
        assert_eq!(refuse_data_fields_change(&image, &m).unwrap_err().status, StatusCode::FORBIDDEN);
        m.patch.size = Some(5);
        assert!(refuse_data_fields_change(&image, &m).is_ok(), "the same value is no change");
        m.patch.checksum = Some("def".into());
        let e = refuse_data_fields_change(&image, &m).unwrap_err();
        assert!(e.message.contains("x-image-meta-checksum"), "{}", e.message);
    }

    #[test]
    fn every_filter_reaches_the_query() {
        let q = list_query(
            "name=my%20image&status=active&disk_format=qcow2&container_format=bare&size_min=1&size_max=9\
             &min_ram=2&min_disk=3&is_public=none&protected=false&property-os%5Fdistro=debian+12",
            &admin(),
            &ApiSettings::default(),
        )
        .unwrap();
        let f = &q.filters;
        assert_eq!(f.name.as_deref(), Some("my image"));
        assert_eq!(f.status, Some(Status::Active));
        assert_eq!(f.disk_format.map(|d| d.as_str()), Some("qcow2"));
        assert_eq!(f.container_format.map(|c| c.as_str()), Some("bare"));
        assert_eq!((f.size_min, f.size_max, f.min_ram, f.min_disk), (Some(1), Some(9), Some(2), Some(3)));
        assert_eq!((f.is_public, f.protected), (None, Some(false)));
        assert_eq!(f.properties.get("os_distro").map(String::as_str), Some("debian 12"));
        // Without is_public, E0's default: public, own and shared images.
        assert_eq!(list_query("", &admin(), &ApiSettings::default()).unwrap().filters.is_public, Some(true));
    }
}
