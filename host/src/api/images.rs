//! The `/v1/images` handlers: the v1 wire format in, one images-service call, the v1 wire
//! format out (reference §1.6, docs/api-v1.md). No domain rule lives here: the checks,
//! the owner rule, the upload life cycle and deletes are the service's.

use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tank_core::{query::ListQuery, Caller, Image, ImageId};
use tank_images::{Data, NewImage, Source};

use super::{body, error::ApiError, full, json_response, meta, ResponseBody};
use crate::{config::ApiSettings, list_params, state::Tank};

/// The image id in a path: one that cannot exist is simply not found, as in Glance.
pub(super) fn parse_id(id: &str) -> Result<ImageId, ApiError> {
    id.parse().map_err(|_| ApiError::image_not_found(id))
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

/// The data a v1 request brings: its body, a copy-from URL or a location, one of them,
/// and the header that named a URL (for messages about it).
fn data_of(
    headers: &HeaderMap,
    m: &meta::RequestMeta,
    body: body::Unread,
) -> Result<(Option<Data>, Option<&'static str>), ApiError> {
    let sources = [has_body(headers), m.copy_from.is_some(), m.location.is_some()];
    if sources.iter().filter(|s| **s).count() > 1 {
        return Err(ApiError::bad_request(
            "send the image data in the body, name it with copy-from, or register it with x-image-meta-location: one of them",
        ));
    }
    let store = m.store.clone();
    if let Some(url) = &m.copy_from {
        return Ok((Some(Data { source: Source::CopyFrom(url.clone()), store }), Some("x-glance-api-copy-from")));
    }
    if let Some(url) = &m.location {
        return Ok((Some(Data { source: Source::Location(url.clone()), store }), Some("x-image-meta-location")));
    }
    if !has_body(headers) {
        return Ok((None, None));
    }
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
    Ok((Some(Data { source: Source::Stream { body: body.into_stream(), length }, store }), None))
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

/// `POST /v1/images`: reserve, and fill when data comes with it.
pub async fn create(tank: &Tank, who: &Caller, req: Request<Incoming>) -> Result<Response<ResponseBody>, ApiError> {
    let (parts, body) = req.into_parts();
    // Dropped unread when the request is refused: see `Unread`.
    let body = body::Unread::new(body);
    let m = meta::from_headers(&parts.headers)?;
    let (data, source) = data_of(&parts.headers, &m, body)?;
    let new = NewImage { id: m.id, changes: m.changes(false), store: m.store.clone() };
    let image = tank.images.create(who, new, data).await.map_err(|e| ApiError::v1(e, source))?;
    Ok(image_response(StatusCode::CREATED, &image))
}

/// `PUT /v1/images/{id}`: update metadata, and fill a queued image with data.
pub async fn update(
    tank: &Tank,
    who: &Caller,
    id: &str,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, ApiError> {
    let (parts, body) = req.into_parts();
    // Dropped unread when the request is refused: see `Unread`.
    let body = body::Unread::new(body);
    let id = parse_id(id)?;
    let m = meta::from_headers(&parts.headers)?;
    if m.id.is_some_and(|new| new != id) {
        return Err(ApiError::bad_request("an image's id cannot be changed"));
    }
    let (data, source) = data_of(&parts.headers, &m, body)?;
    // Glance replaces the property set on a metadata update unless told not to, and never
    // when data is uploaded (reference §1.3).
    let purge = parts
        .headers
        .get("x-glance-registry-purge-props")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| !v.eq_ignore_ascii_case("false"));
    let changes = m.changes(purge && data.is_none());
    let image = tank.images.update(who, id, changes, data).await.map_err(|e| ApiError::v1(e, source))?;
    Ok(image_response(StatusCode::OK, &image))
}

/// `HEAD /v1/images/{id}`.
pub async fn head(tank: &Tank, who: &Caller, id: &str) -> Result<Response<ResponseBody>, ApiError> {
    let record = tank.images.get(who, parse_id(id)?).await.map_err(|e| ApiError::v1(e, None))?;
    let mut r = Response::new(full(Vec::new()));
    meta::to_headers(&record.value, r.headers_mut());
    Ok(r)
}

/// `GET /v1/images/{id}`: headers and the data.
pub async fn download(tank: &Tank, who: &Caller, id: &str) -> Result<Response<ResponseBody>, ApiError> {
    let (image, data) = tank.images.download(who, parse_id(id)?, None).await.map_err(|e| ApiError::v1(e, None))?;
    let mut r = Response::new(body::download_body(data));
    meta::to_headers(&image, r.headers_mut());
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(image.size));
    Ok(r)
}

/// `GET /v1/images` and `/v1/images/detail`.
pub async fn list(
    tank: &Tank,
    who: &Caller,
    req: &Request<Incoming>,
    detailed: bool,
) -> Result<Response<ResponseBody>, ApiError> {
    let query = list_query(req.uri().query().unwrap_or(""), who, &tank.api)?;
    let images = tank.images.list(who, query).await.map_err(|e| ApiError::v1(e, None))?;
    let view = if detailed { meta::detail } else { meta::brief };
    let body = json!({ "images": images.iter().map(view).collect::<Vec<_>>() });
    Ok(json_response(StatusCode::OK, body.to_string()))
}

/// A list request's filters, sort and page, with the API's defaults: E0's `is_public`
/// (public images and the caller's own and shared ones), and unknown parameters refused.
fn list_query(query: &str, who: &Caller, api: &ApiSettings) -> Result<ListQuery, ApiError> {
    let rules = list_params::Rules {
        limit_default: api.limit_param_default,
        limit_max: api.api_limit_max,
        is_public_default: Some(true),
        refuse_unknown: true,
    };
    list_params::parse(query, who.viewer(), rules).map_err(ApiError::bad_request)
}

/// A path segment with its `%XX` escapes decoded (member names may hold any character).
pub(super) fn decode_segment(segment: &str) -> String {
    list_params::percent_decode(segment)
}

/// `DELETE /v1/images/{id}`.
pub async fn delete(tank: &Tank, who: &Caller, id: &str) -> Result<Response<ResponseBody>, ApiError> {
    tank.images.delete(who, parse_id(id)?).await.map_err(|e| ApiError::v1(e, None))?;
    Ok(Response::new(full(Vec::new())))
}

#[cfg(test)]
mod tests {
    use tank_core::{
        query::{SortDir, SortKey},
        Status,
    };

    use super::*;

    #[test]
    fn list_parameters_are_checked_and_decoded() {
        let api = ApiSettings::default();
        let admin = Caller::admin();
        let q = list_query("limit=5&sort_key=name&sort_dir=asc&changes-since=2020-01-02T03%3A04%3A05", &admin, &api)
            .unwrap();
        assert_eq!((q.limit, q.sort_key, q.sort_dir), (5, SortKey::Name, SortDir::Asc));
        assert_eq!(q.filters.changes_since.unwrap().to_string(), "2020-01-02T03:04:05.000000");
        assert_eq!(list_query("limit=99999", &admin, &api).unwrap().limit, 1000);
        let small = ApiSettings { limit_param_default: 7, api_limit_max: 9, ..ApiSettings::default() };
        assert_eq!(list_query("", &admin, &small).unwrap().limit, 7);
        assert_eq!(list_query("limit=10", &admin, &small).unwrap().limit, 9);
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
            let e = list_query(bad, &admin, &api).unwrap_err();
            let key = bad.split('=').next().unwrap();
            assert!(e.message.contains(key), "{bad}: {}", e.message);
        }
        assert_eq!(list_params::percent_decode("a%20b%zz%4"), "a b%zz%4");
    }

    #[test]
    fn every_filter_reaches_the_query() {
        let q = list_query(
            "name=my%20image&status=active&disk_format=qcow2&container_format=bare&size_min=1&size_max=9\
             &min_ram=2&min_disk=3&is_public=none&protected=false&property-os%5Fdistro=debian+12",
            &Caller::admin(),
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
        assert_eq!(list_query("", &Caller::admin(), &ApiSettings::default()).unwrap().filters.is_public, Some(true));
    }
}
