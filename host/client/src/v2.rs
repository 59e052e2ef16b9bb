//! The calls over the Images API v2 (docs/api-v2.md): images as JSON documents, changes as
//! JSON patches, data through `.../file`, members with their status, and copy-from as a
//! `web-download` import.
//!
//! The calls mean what they mean over v1 ([`ImageMeta`] and [`ListQuery`] use v1's names);
//! this module translates. Where v2 cannot do what was asked (register a location, filter
//! on `min_ram`, a member's right to share), the call fails with [`ErrorKind::BadInput`]
//! before anything is sent.

use std::time::Duration;

use base64::Engine;
use http::{header, HeaderMap, HeaderValue, Method};
use serde_json::{json, Map, Value};

use crate::{
    body::{DataBody, RequestBody},
    image::encode,
    json_body, json_headers, read_json, Client, Download, Error, ErrorKind, Image, ImageMeta, ListQuery, Member,
    MemberChange, Result, SharedImage, Upload,
};

/// The attributes of a v2 image document that are not custom properties.
const BASE: &[&str] = &[
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "owner",
    "min_ram",
    "min_disk",
    "disk_format",
    "container_format",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "created_at",
    "updated_at",
    "tags",
    "stores",
    "locations",
    "direct_url",
    "self",
    "file",
    "schema",
];

/// The [`ImageMeta`] fields that describe the data rather than the image: v2 sends them
/// with the upload, not in the image document.
const DATA_FIELDS: &[&str] = &["size", "checksum", "store"];

/// Where the server records the stores an import failed in.
const FAILED_IMPORT: &str = "os_glance_failed_import";

/// The media type of v2.1's JSON patches.
const PATCH: &str = "application/openstack-images-v2.1-json-patch";

/// The page size asked for when the client walks a whole list itself.
const PAGE: u32 = 1000;

/// A member as v2 shows it.
#[derive(serde::Deserialize)]
struct V2Member {
    member_id: String,
    status: String,
}

impl From<V2Member> for Member {
    fn from(m: V2Member) -> Member {
        Member { member_id: m.member_id, can_share: false, status: Some(m.status) }
    }
}

/// Why giving an image its data failed.
enum Fill {
    /// The server refused or lost the data: the image has none.
    Refused(Error),
    /// The answer was lost: the data may have arrived, or an import may still run.
    Unsure(Error),
}

impl Fill {
    /// A failure of a request that sends or asks for the data: lost answers are unsure.
    fn of(e: Error) -> Fill {
        if e.kind() == ErrorKind::Network {
            Fill::Unsure(e)
        } else {
            Fill::Refused(e)
        }
    }
}

impl Client {
    pub(crate) async fn v2_get(&self, id: &str) -> Result<Image> {
        image(self.json::<Value>(Method::GET, &image_path(id)).await?)
    }

    pub(crate) async fn v2_list(&self, query: &ListQuery) -> Result<Vec<Image>> {
        #[derive(serde::Deserialize)]
        struct Page {
            images: Vec<Value>,
        }
        let path = match query_string(query)? {
            q if q.is_empty() => "/v2/images".to_owned(),
            q => format!("/v2/images?{q}"),
        };
        self.json::<Page>(Method::GET, &path).await?.images.into_iter().map(image).collect()
    }

    pub(crate) async fn v2_create(&self, meta: &ImageMeta, data: Option<Upload>) -> Result<Image> {
        check_sources(meta, data.is_some())?;
        let filling = data.is_some() || meta.copy_from.is_some();
        if filling && !["disk_format", "container_format"].iter().all(|f| meta.fields.contains_key(*f)) {
            return Err(Error::new(
                ErrorKind::BadInput,
                "over the v2 API an image takes data only once its formats are set: give disk_format= and \
                 container_format= (disk_format=raw container_format=bare when in doubt)",
            ));
        }
        // Everything the data's requests will say is checked before the image exists.
        let headers = data.as_ref().map(|d| upload_headers(meta, d.size())).transpose()?;
        self.v2_check_store(meta).await?;
        let mut doc = Map::new();
        for (field, value) in meta.fields.iter().filter(|(f, _)| !DATA_FIELDS.contains(&f.as_str())) {
            let (key, value) = attribute(field, value)?;
            doc.insert(key, value);
        }
        for (key, value) in &meta.properties {
            doc.insert(key.clone(), Value::String(value.clone()));
        }
        let resp = self.send(Method::POST, "/v2/images", json_headers(), json_body(&Value::Object(doc)), None).await?;
        let id = image(read_json(resp).await?)?.id;
        match self.v2_fill(&id, meta, data, headers).await {
            Ok(()) => self.v2_get(&id).await,
            // One call, one image: v1's create leaves nothing usable when the data fails,
            // and neither does this one leave a record the caller never got the id of.
            Err(Fill::Refused(e)) => Err(self.v2_discard(&id, meta, e).await),
            Err(Fill::Unsure(e)) => {
                Err(e.with_note(&format!("image {id} was made, and may have its data or be importing it still")))
            }
        }
    }

    /// Deletes image `id`, made by a create whose data failed with `e` (unprotecting it
    /// first if the create protected it), and answers `e`, noting an image left behind.
    async fn v2_discard(&self, id: &str, meta: &ImageMeta, e: Error) -> Error {
        let mut removed = Ok(());
        if meta.fields.get("protected").is_some_and(|p| p.eq_ignore_ascii_case("true")) {
            let ops = json!([{"op": "replace", "path": "/protected", "value": false}]);
            removed = self.v2_patch(id, &ops).await;
        }
        match removed.and(self.delete(id).await) {
            Ok(()) => e,
            Err(d) => e.with_note(&format!("image {id} was made and could not be removed again ({d}); delete it")),
        }
    }

    async fn v2_patch(&self, id: &str, ops: &Value) -> Result<()> {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PATCH));
        self.send(Method::PATCH, &image_path(id), headers, json_body(ops), None).await?;
        Ok(())
    }

    /// Refuses a `store` that the server does not have, before anything changes.
    async fn v2_check_store(&self, meta: &ImageMeta) -> Result<()> {
        #[derive(serde::Deserialize)]
        struct Stores {
            stores: Vec<Store>,
        }
        #[derive(serde::Deserialize)]
        struct Store {
            id: String,
        }
        let Some(wanted) = meta.fields.get("store") else { return Ok(()) };
        let stores = self.json::<Stores>(Method::GET, "/v2/info/stores").await?.stores;
        if stores.iter().any(|s| s.id == *wanted) {
            return Ok(());
        }
        let known: Vec<&str> = stores.iter().map(|s| s.id.as_str()).collect();
        Err(Error::new(
            ErrorKind::BadInput,
            format!("store={wanted}: the server has no such store; it has {}", known.join(", ")),
        ))
    }

    pub(crate) async fn v2_update(&self, id: &str, meta: &ImageMeta, data: Option<Upload>) -> Result<Image> {
        check_sources(meta, data.is_some())?;
        let headers = data.as_ref().map(|d| upload_headers(meta, d.size())).transpose()?;
        let current = self.v2_get(id).await?;
        self.v2_check_store(meta).await?;
        let ops = patch(meta, &current)?;
        if !ops.is_empty() {
            // v1 changes the metadata and takes the data in one request that does neither
            // unless the image is queued: refuse here what the upload would refuse after
            // the patch.
            let filling = data.is_some() || meta.copy_from.is_some();
            if filling && current.status != "queued" {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "image {id} is {}: data can only be uploaded to a queued image; nothing was changed",
                        current.status
                    ),
                ));
            }
            self.v2_patch(id, &Value::Array(ops)).await?;
        }
        match self.v2_fill(id, meta, data, headers).await {
            Ok(()) => self.v2_get(id).await,
            Err(Fill::Refused(e) | Fill::Unsure(e)) => Err(e),
        }
    }

    /// Gives image `id` its data, if any: `data` uploaded with `headers`, or a
    /// web-download of `meta.copy_from` waited for.
    async fn v2_fill(
        &self,
        id: &str,
        meta: &ImageMeta,
        data: Option<Upload>,
        headers: Option<HeaderMap>,
    ) -> Result<(), Fill> {
        if let Some(upload) = data {
            let (body, failure) = DataBody::new(upload);
            let path = format!("{}/file", image_path(id));
            let headers = headers.unwrap_or_default();
            self.send(Method::PUT, &path, headers, RequestBody::Data(body), Some(failure)).await.map_err(Fill::of)?;
        } else if let Some(uri) = &meta.copy_from {
            self.v2_web_download(id, uri, meta.fields.get("store")).await?;
        }
        Ok(())
    }

    /// Imports `uri` into image `id` (`web-download`, into `store` or the default one) and
    /// waits until the image is active, or the import failed.
    async fn v2_web_download(&self, id: &str, uri: &str, store: Option<&String>) -> Result<(), Fill> {
        let mut body = json!({"method": {"name": "web-download", "uri": uri}});
        if let Some(store) = store {
            body["stores"] = json!([store]);
        }
        let path = format!("{}/import", image_path(id));
        self.send(Method::POST, &path, json_headers(), json_body(&body), None).await.map_err(Fill::of)?;
        let mut pause = Duration::from_millis(20);
        loop {
            let now = self.v2_get(id).await.map_err(Fill::Unsure)?;
            match now.status.as_str() {
                "active" => return Ok(()),
                "importing" => {}
                status => {
                    let failed = now.properties.get(FAILED_IMPORT).map(String::as_str).unwrap_or("?");
                    return Err(Fill::Refused(Error::new(
                        ErrorKind::Server,
                        format!(
                            "the server could not import {uri} into image {id} (it is {status} again; store {failed} \
                             failed); its log says why"
                        ),
                    )));
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    pub(crate) async fn v2_download(&self, id: &str) -> Result<Download> {
        let resp = self
            .send(Method::GET, &format!("{}/file", image_path(id)), HeaderMap::new(), RequestBody::Empty, None)
            .await?;
        // Read after the data is on its way: an image with data is active, and its size and
        // checksum no longer change.
        let image = self.v2_get(id).await?;
        if resp.status() == http::StatusCode::NO_CONTENT {
            return Err(Error::new(ErrorKind::NotFound, format!("image {id} has no data: it is {}", image.status)));
        }
        Ok(Download::new(image, resp.into_body()))
    }

    pub(crate) async fn v2_members(&self, id: &str) -> Result<Vec<Member>> {
        #[derive(serde::Deserialize)]
        struct Answer {
            members: Vec<V2Member>,
        }
        let path = format!("{}/members", image_path(id));
        Ok(self.json::<Answer>(Method::GET, &path).await?.members.into_iter().map(Member::from).collect())
    }

    pub(crate) async fn v2_shared_images(&self, member: &str) -> Result<Vec<SharedImage>> {
        let mut shared = Vec::new();
        // v2 lists hidden images only when asked for them alone: two walks.
        for hidden in ["false", "true"] {
            let mut marker: Option<String> = None;
            loop {
                let mut q = ListQuery::new().filter("visibility", "shared").filter("member_status", "all");
                q = q.filter("os_hidden", hidden).limit(PAGE);
                q.marker = marker.take();
                let page = self.v2_list(&q).await?;
                let Some(last) = page.last() else { break };
                marker = Some(last.id.clone());
                for image in &page {
                    let path = format!("{}/members/{}", image_path(&image.id), encode(member));
                    match self.json::<V2Member>(Method::GET, &path).await {
                        Ok(m) => shared.push(SharedImage {
                            image_id: image.id.clone(),
                            can_share: false,
                            status: Some(m.status),
                        }),
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(shared)
    }

    pub(crate) async fn v2_add_member(&self, id: &str, member: &str, can_share: Option<bool>) -> Result<()> {
        if can_share == Some(true) {
            return Err(no_can_share());
        }
        let path = format!("{}/members", image_path(id));
        match self.send(Method::POST, &path, json_headers(), json_body(&json!({ "member": member })), None).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::Conflict => {
                // A second offer is a conflict in v2; v1's add leaves an existing member be.
                let members = self.v2_members(id).await?;
                if members.iter().any(|m| m.member_id == member) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn v2_replace_members(&self, id: &str, members: &[MemberChange]) -> Result<()> {
        if members.iter().any(|m| m.can_share == Some(true)) {
            return Err(no_can_share());
        }
        let current = self.v2_members(id).await?;
        // The new members first: a refused offer (an image that is not shared) then
        // leaves the member list as it was.
        let mut added = Vec::new();
        for new in members.iter().filter(|n| !current.iter().any(|m| m.member_id == n.member_id)) {
            if let Err(e) = self.v2_add_member(id, &new.member_id, None).await {
                for member in added {
                    let _ = self.delete_member(id, member).await;
                }
                return Err(e);
            }
            added.push(&new.member_id);
        }
        for old in current.iter().filter(|m| !members.iter().any(|n| n.member_id == m.member_id)) {
            self.delete_member(id, &old.member_id).await?;
        }
        Ok(())
    }

    pub(crate) async fn v2_set_member_status(&self, id: &str, member: &str, status: &str) -> Result<Member> {
        let path = format!("{}/members/{}", image_path(id), encode(member));
        let resp = self.send(Method::PUT, &path, json_headers(), json_body(&json!({ "status": status })), None).await?;
        Ok(read_json::<V2Member>(resp).await?.into())
    }
}

/// The headers of `PUT .../file` for `meta`'s data of `size` bytes (when known): the
/// declared size and checksum, and the store.
fn upload_headers(meta: &ImageMeta, size: Option<u64>) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Some(size) = size.filter(|&s| s > 0) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    if let Some(size) = meta.fields.get("size") {
        let n: u64 = size
            .parse()
            .map_err(|_| Error::new(ErrorKind::BadInput, format!("size={size}: must be a whole number of bytes")))?;
        headers.insert("x-openstack-image-size", HeaderValue::from(n));
    }
    if let Some(sum) = meta.fields.get("checksum") {
        let md5 = hex::decode(sum).ok().filter(|b| b.len() == 16).ok_or_else(|| {
            Error::new(ErrorKind::BadInput, format!("checksum={sum}: an MD5 checksum is 32 hex digits"))
        })?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(md5);
        headers.insert("content-md5", HeaderValue::from_str(&encoded).expect("base64 is a valid header value"));
    }
    if let Some(store) = meta.fields.get("store") {
        headers.insert("x-image-meta-store", header_value("store", store)?);
    }
    Ok(headers)
}

fn image_path(id: &str) -> String {
    format!("/v2/images/{}", encode(id))
}

fn no_can_share() -> Error {
    Error::new(
        ErrorKind::BadInput,
        "v2 members cannot share an image further (v2 has no can_share); use the v1 API to give that right",
    )
}

fn header_value(field: &str, value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(value)
        .ok()
        .filter(|_| value.bytes().all(|b| (b' '..=b'~').contains(&b)))
        .ok_or_else(|| Error::new(ErrorKind::BadInput, format!("{field}={value:?}: only printable ASCII can be sent")))
}

/// Refuses, before anything is sent, what v2 cannot do with `meta` (data given as
/// `data`, when true).
fn check_sources(meta: &ImageMeta, data: bool) -> Result<()> {
    let bad = |m: String| Err(Error::new(ErrorKind::BadInput, m));
    if meta.location.is_some() {
        return bad("location=URL registers data that stays where it is, which the v2 API does not offer \
             (show_multiple_locations is off); use the v1 API (--api v1)"
            .into());
    }
    if data && meta.copy_from.is_some() {
        return bad("the data and copy_from= both give the data; give one of them".into());
    }
    for field in DATA_FIELDS.iter().filter(|f| meta.fields.contains_key(**f)) {
        let store_of_copy = *field == "store" && meta.copy_from.is_some();
        if !data && !store_of_copy {
            return bad(format!(
                "{field}= describes uploaded data: over the v2 API give it with the data (--file), or use the v1 API \
                 (--api v1) to reserve an image with it"
            ));
        }
    }
    Ok(())
}

/// v2's attribute and JSON value for field `field` given as text (a `key=value` word).
fn attribute(field: &str, value: &str) -> Result<(String, Value)> {
    let bad = |want: &str| Error::new(ErrorKind::BadInput, format!("{field}={value}: {want}"));
    let flag = || match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad("must be true or false")),
    };
    Ok(match field {
        // A v1 private image is one with members: v2's shared.
        "is_public" => ("visibility".into(), json!(if flag()? { "public" } else { "shared" })),
        "protected" | "os_hidden" => (field.into(), json!(flag()?)),
        "min_ram" | "min_disk" => {
            (field.into(), json!(value.parse::<u64>().map_err(|_| bad("must be a whole number of 0 or more"))?))
        }
        _ => (field.into(), json!(value)),
    })
}

/// The JSON patch that makes `current` what `meta` says: fields replaced, properties
/// added (or replaced), and with `purge_properties` the other properties removed (except
/// the server's own `os_glance_*`).
fn patch(meta: &ImageMeta, current: &Image) -> Result<Vec<Value>> {
    let path = |key: &str| format!("/{}", key.replace('~', "~0").replace('/', "~1"));
    let mut ops = Vec::new();
    for (field, value) in meta.fields.iter().filter(|(f, _)| !DATA_FIELDS.contains(&f.as_str())) {
        let (key, value) = attribute(field, value)?;
        ops.push(json!({"op": "replace", "path": path(&key), "value": value}));
    }
    for (key, value) in &meta.properties {
        ops.push(json!({"op": "add", "path": path(key), "value": value}));
    }
    if meta.purge_properties {
        for key in current.properties.keys() {
            if !meta.properties.contains_key(key) && !key.starts_with("os_glance") {
                ops.push(json!({"op": "remove", "path": path(key)}));
            }
        }
    }
    Ok(ops)
}

/// `query`, whose filters have v1's names, as v2's query string.
fn query_string(query: &ListQuery) -> Result<String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (key, value) in &query.filters {
        let pair = match key.as_str() {
            "is_public" => match value.to_ascii_lowercase().as_str() {
                // Every image the caller may see: v2's default list.
                "none" => continue,
                "true" => ("visibility".into(), "public".into()),
                "false" => ("visibility".into(), "shared".into()),
                _ => {
                    return Err(Error::new(ErrorKind::BadInput, format!("is_public={value}: use true, false or none")))
                }
            },
            "changes-since" => ("updated_at".into(), format!("gte:{value}")),
            "min_ram" | "min_disk" => {
                return Err(Error::new(
                    ErrorKind::BadInput,
                    format!("the v2 API has no {key} filter; use the v1 API (--api v1) to filter on it"),
                ))
            }
            other => (other.strip_prefix("property-").unwrap_or(other).to_owned(), value.clone()),
        };
        pairs.push(pair);
    }
    if let Some(limit) = query.limit {
        pairs.push(("limit".into(), limit.to_string()));
    }
    for (key, value) in [("marker", &query.marker), ("sort_key", &query.sort_key), ("sort_dir", &query.sort_dir)] {
        if let Some(v) = value {
            pairs.push((key.into(), v.clone()));
        }
    }
    Ok(pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&"))
}

/// An image from its v2 document.
fn image(doc: Value) -> Result<Image> {
    let Value::Object(map) = doc else {
        return Err(Error::new(ErrorKind::Server, "the server's answer has an image that is not a JSON object"));
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
    let number = |key: &str| map.get(key).and_then(Value::as_u64).unwrap_or(0);
    let flag = |key: &str| map.get(key).and_then(Value::as_bool).unwrap_or(false);
    let properties = map
        .iter()
        .filter(|(k, _)| !BASE.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
        .collect();
    let tags = map.get("tags").and_then(Value::as_array).into_iter().flatten();
    let stores = text("stores").unwrap_or_default();
    Ok(Image {
        id: text("id").ok_or_else(|| Error::new(ErrorKind::Server, "the server's answer has an image without id"))?,
        name: text("name"),
        status: text("status").unwrap_or_default(),
        size: number("size"),
        disk_format: text("disk_format"),
        container_format: text("container_format"),
        checksum: text("checksum"),
        is_public: text("visibility").as_deref() == Some("public"),
        min_ram: number("min_ram"),
        min_disk: number("min_disk"),
        owner: text("owner"),
        protected: flag("protected"),
        created_at: text("created_at").unwrap_or_default(),
        updated_at: text("updated_at").unwrap_or_default(),
        // v2 never shows a deleted image.
        deleted_at: None,
        deleted: false,
        properties,
        visibility: text("visibility"),
        os_hash_algo: text("os_hash_algo"),
        os_hash_value: text("os_hash_value"),
        tags: tags.filter_map(Value::as_str).map(str::to_owned).collect(),
        stores: stores.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v2_document_reads_into_the_same_image_as_v1() {
        let doc = json!({
            "id": "abc", "name": "cirros", "status": "active", "visibility": "public", "protected": true,
            "size": 42, "virtual_size": null, "checksum": "c", "os_hash_algo": "sha512", "os_hash_value": "h",
            "min_ram": 512, "min_disk": 1, "owner": "acme", "disk_format": "qcow2", "container_format": "bare",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:01Z", "tags": ["gold"],
            "stores": "fs,fast", "self": "/v2/images/abc", "file": "/v2/images/abc/file",
            "schema": "/v2/schemas/image", "os_hidden": false, "os_distro": "cirros",
        });
        let i = image(doc).unwrap();
        assert_eq!((i.id.as_str(), i.size, i.is_public, i.protected, i.min_ram), ("abc", 42, true, true, 512));
        assert_eq!(i.properties.into_iter().collect::<Vec<_>>(), [("os_distro".to_string(), "cirros".to_string())]);
        assert_eq!((i.tags, i.stores), (vec!["gold".to_string()], vec!["fs".to_string(), "fast".to_string()]));
        assert_eq!(i.os_hash_value.as_deref(), Some("h"));
        assert_eq!(image(json!({"id": "q", "size": null, "visibility": "shared"})).unwrap().size, 0);
        assert_eq!(image(json!([1])).unwrap_err().kind(), ErrorKind::Server);
    }

    #[test]
    fn fields_become_attributes_and_a_patch() {
        let mut meta = ImageMeta::new();
        for (k, v) in [("name", "n"), ("is_public", "TRUE"), ("min_ram", "512"), ("os/a~b", "x"), ("size", "3")] {
            meta.set(k, v);
        }
        let mut current = image(json!({"id": "i", "old": "1", "os_glance_failed_import": "fs"})).unwrap();
        current.properties.insert("keep".into(), "2".into());
        meta.purge_properties = true;
        meta.properties.insert("keep".into(), "3".into());
        let ops = patch(&meta, &current).unwrap();
        assert_eq!(
            ops,
            [
                json!({"op": "replace", "path": "/visibility", "value": "public"}),
                json!({"op": "replace", "path": "/min_ram", "value": 512}),
                json!({"op": "replace", "path": "/name", "value": "n"}),
                json!({"op": "add", "path": "/keep", "value": "3"}),
                json!({"op": "add", "path": "/os~1a~0b", "value": "x"}),
                json!({"op": "remove", "path": "/old"}),
            ],
            "size is the upload's; os_glance_* stays"
        );
        for (k, v) in [("is_public", "yes"), ("protected", "1"), ("min_disk", "-1")] {
            assert_eq!(attribute(k, v).unwrap_err().kind(), ErrorKind::BadInput, "{k}={v}");
        }
    }

    #[test]
    fn what_v2_cannot_do_is_refused_before_anything_is_sent() {
        let located = ImageMeta { location: Some("http://x/a".into()), ..ImageMeta::new() };
        assert!(check_sources(&located, false).unwrap_err().message().contains("--api v1"));
        let sized = ImageMeta::new().field("size", "3");
        assert_eq!(check_sources(&sized, false).unwrap_err().kind(), ErrorKind::BadInput);
        assert!(check_sources(&sized, true).is_ok());
        let copied = ImageMeta { copy_from: Some("http://x/a".into()), ..ImageMeta::new().field("store", "fast") };
        assert!(check_sources(&copied, false).is_ok(), "a copy names its store");
        assert!(check_sources(&copied, true).is_err(), "two sources");
    }

    #[test]
    fn v1_filters_become_v2_ones() {
        let q = ListQuery::new()
            .filter("is_public", "none")
            .filter("changes-since", "2026-01-01T00:00:00Z")
            .property("os_distro", "debian")
            .filter("size_min", "10")
            .limit(5)
            .marker("m")
            .sort("size", "asc");
        assert_eq!(
            query_string(&q).unwrap(),
            "updated_at=gte%3A2026-01-01T00%3A00%3A00Z&os_distro=debian&size_min=10&limit=5&marker=m&sort_key=size&\
             sort_dir=asc"
        );
        assert_eq!(query_string(&ListQuery::new().filter("is_public", "true")).unwrap(), "visibility=public");
        assert_eq!(query_string(&ListQuery::new().filter("min_ram", "1")).unwrap_err().kind(), ErrorKind::BadInput);
    }
}
