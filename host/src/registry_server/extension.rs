//! Tank's extension of the registry API, under `/tank/`: the `RegistryDriver` trait over
//! HTTP, record for record, so that the remote registry driver can do everything a local
//! driver does. Records here are `tank_core::Image` JSON exactly as drivers store them.
//!
//! | method and path | body → answer |
//! |---|---|
//! | `POST /tank/images` | an image → 201 `{"revision"}`; 409 `duplicate` |
//! | `GET /tank/images/{id}` | → `{"revision", "image"}`, deleted images included |
//! | `PUT /tank/images/{id}` + `If-Match: "<rev>"` | an image → `{"revision"}`; 409 `conflict` |
//! | `DELETE /tank/images/{id}` | → 204, the record is gone |
//! | `POST /tank/images/query` | a `ListQuery` → `{"images": [...]}`; bad marker 400 |
//! | `GET /tank/images?status=S&status=T` | → `{"images": [...]}` in those statuses |
//! | `GET /tank/check` | → 200 when the driver's database is usable |
//! | `POST /tank/call/{op}` | the payload → the driver's answer, as text |
//!
//! Every answer carrying a record or a new revision also sets `ETag: "<revision>"`. The
//! caller must be an admin (no token, or a confirmed admin role): these endpoints bypass
//! visibility.

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tank_core::{query::ListQuery, Image, ImageId, Status};
use tank_sdk::ErrorKind;

use super::{error::RegistryError, params, read_body, with_revision, RegistryServer};
use crate::api::{full, json_response, ResponseBody};

fn decode<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(body).map_err(|e| RegistryError::bad_request(format!("the body is not {what}: {e}")))
}

fn parse_id(id: &str) -> Result<ImageId, RegistryError> {
    id.parse().map_err(|e: tank_core::Error| RegistryError::bad_request(e.to_string()))
}

/// Routes `/tank/<segments>`.
pub async fn route(
    server: &RegistryServer,
    req: Request<Incoming>,
    segments: &[&str],
) -> Result<Response<ResponseBody>, RegistryError> {
    let ctx = super::caller(req.headers())?;
    if !ctx.is_admin {
        return Err(RegistryError::forbidden(
            "the /tank/ endpoints are for API servers' remote registry driver and need an admin context",
        ));
    }
    let method = req.method().clone();
    match (&method, segments) {
        (&Method::POST, ["images"]) => {
            let image: Image = decode("an image record", &read_body(req).await?)?;
            let revision = server.blocking(move |r| r.create(&image)).await?;
            Ok(with_revision(StatusCode::CREATED, json!({ "revision": revision }).to_string(), revision))
        }
        (&Method::GET, ["images"]) => {
            let mut statuses = Vec::new();
            for (key, value) in params::pairs(req.uri().query().unwrap_or("")) {
                if key == "status" {
                    statuses.push(Status::from_record(&value));
                }
            }
            let images = server.blocking(move |r| r.with_status(&statuses)).await?;
            Ok(json_response(StatusCode::OK, json!({ "images": images }).to_string()))
        }
        (&Method::POST, ["images", "query"]) => {
            let query: ListQuery = serde_json::from_slice(&read_body(req).await?).map_err(|e| {
                let what = e.to_string();
                if what.starts_with("unknown field") || what.starts_with("unknown variant") {
                    // A newer API server's query: refused by name, never answered without
                    // what this registry does not know.
                    RegistryError::new(
                        ErrorKind::UNSUPPORTED,
                        format!("this registry cannot answer the list query: {what}; upgrade tank registry"),
                    )
                } else {
                    RegistryError::bad_request(format!("the body is not a list query: {what}"))
                }
            })?;
            let images = server.blocking(move |r| r.list(&query)).await?;
            Ok(json_response(StatusCode::OK, json!({ "images": images }).to_string()))
        }
        (&Method::GET, ["images", id]) => {
            let id = parse_id(id)?;
            let record = server.blocking(move |r| r.get(id)).await?;
            let body = json!({ "revision": record.revision, "image": record.value }).to_string();
            Ok(with_revision(StatusCode::OK, body, record.revision))
        }
        (&Method::PUT, ["images", id]) => {
            let id = parse_id(id)?;
            let revision = super::if_match(req.headers())?.ok_or_else(|| {
                RegistryError::with_status(
                    StatusCode::PRECONDITION_REQUIRED,
                    "a record is replaced only at the revision it was read at; send If-Match: \"<revision>\"",
                )
            })?;
            let image: Image = decode("an image record", &read_body(req).await?)?;
            if image.id != id {
                return Err(RegistryError::bad_request(format!(
                    "the record's id {} differs from the path's {id}",
                    image.id
                )));
            }
            let revision = server.blocking(move |r| r.update(&image, revision)).await?;
            Ok(with_revision(StatusCode::OK, json!({ "revision": revision }).to_string(), revision))
        }
        (&Method::DELETE, ["images", id]) => {
            let id = parse_id(id)?;
            server.blocking(move |r| r.remove(id)).await?;
            let mut r = Response::new(full(Vec::new()));
            *r.status_mut() = StatusCode::NO_CONTENT;
            Ok(r)
        }
        (&Method::GET, ["check"]) => {
            server.blocking(|r| r.check()).await?;
            Ok(json_response(StatusCode::OK, json!({ "status": "ok" }).to_string()))
        }
        (&Method::POST, ["call", op]) => {
            let op = op.to_string();
            let body = read_body(req).await?;
            let payload = String::from_utf8(body.to_vec())
                .map_err(|_| RegistryError::new(ErrorKind::INVALID_INPUT, "the payload is not UTF-8"))?;
            let answer = server.blocking(move |r| r.call(&op, &payload)).await?;
            let mut r = Response::new(full(answer));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=UTF-8"));
            Ok(r)
        }
        _ => Err(RegistryError::with_status(
            StatusCode::NOT_FOUND,
            format!("no such Tank extension: {method} /tank/{}", segments.join("/")),
        )),
    }
}
