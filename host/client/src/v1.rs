//! The calls over the Images API v1 (docs/api-v1.md): metadata in `x-image-meta-*`
//! headers, data in the same request.

use http::{header, HeaderMap, HeaderValue, Method};

use crate::{
    body::{DataBody, RequestBody},
    image::encode,
    json_body, json_headers, read_json, Client, Error, ErrorKind, Image, ImageMeta, ImageSummary, ListQuery, Member,
    MemberChange, Result, SharedImage, Upload,
};

impl Client {
    pub(crate) async fn v1_list(&self, query: &ListQuery) -> Result<Vec<ImageSummary>> {
        #[derive(serde::Deserialize)]
        struct Page {
            images: Vec<ImageSummary>,
        }
        Ok(self.json::<Page>(Method::GET, &with_query("/v1/images", query)).await?.images)
    }

    pub(crate) async fn v1_list_detailed(&self, query: &ListQuery) -> Result<Vec<Image>> {
        #[derive(serde::Deserialize)]
        struct Page {
            images: Vec<Image>,
        }
        Ok(self.json::<Page>(Method::GET, &with_query("/v1/images/detail", query)).await?.images)
    }

    pub(crate) async fn v1_get(&self, id: &str) -> Result<Image> {
        let path = format!("/v1/images/{}", encode(id));
        let resp = self.send(Method::HEAD, &path, HeaderMap::new(), RequestBody::Empty, None).await.map_err(|e| {
            // An answer to HEAD has no body, so no message: say what was not found.
            match e.status() {
                Some(404) => Error::from_answer(404, format!("image {id} not found")),
                _ => e,
            }
        })?;
        Image::from_headers(resp.headers())
    }

    /// `POST /v1/images` (create) or `PUT /v1/images/<id>` (update): metadata and data in
    /// one request.
    pub(crate) async fn v1_write(
        &self,
        method: Method,
        path: String,
        meta: &ImageMeta,
        data: Option<Upload>,
    ) -> Result<Image> {
        #[derive(serde::Deserialize)]
        struct Answer {
            image: Image,
        }
        for field in ["visibility", "os_hidden"] {
            if let Some(v) = meta.fields.get(field) {
                return Err(Error::new(
                    ErrorKind::BadInput,
                    format!("{field}={v}: v1 has no {field} (only is_public=true or false); use the v2 API for it"),
                ));
            }
        }
        let mut headers = HeaderMap::new();
        meta.headers(&mut headers)?;
        if method == Method::PUT {
            let purge = if meta.purge_properties { "true" } else { "false" };
            headers.insert("x-glance-registry-purge-props", HeaderValue::from_static(purge));
        }
        let (body, failure) = match data {
            Some(upload) => {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
                if let Some(size) = upload.size().filter(|&s| s > 0) {
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
                }
                let (body, failure) = DataBody::new(upload);
                (RequestBody::Data(body), Some(failure))
            }
            None => (RequestBody::Empty, None),
        };
        let resp = self.send(method, &path, headers, body, failure).await?;
        Ok(read_json::<Answer>(resp).await?.image)
    }

    pub(crate) async fn v1_download(&self, id: &str) -> Result<crate::Download> {
        let path = format!("/v1/images/{}", encode(id));
        let resp = self.send(Method::GET, &path, HeaderMap::new(), RequestBody::Empty, None).await?;
        let image = Image::from_headers(resp.headers())?;
        Ok(crate::Download::new(image, resp.into_body()))
    }

    pub(crate) async fn v1_members(&self, id: &str) -> Result<Vec<Member>> {
        #[derive(serde::Deserialize)]
        struct Answer {
            members: Vec<Member>,
        }
        Ok(self.json::<Answer>(Method::GET, &format!("/v1/images/{}/members", encode(id))).await?.members)
    }

    pub(crate) async fn v1_shared_images(&self, member: &str) -> Result<Vec<SharedImage>> {
        #[derive(serde::Deserialize)]
        struct Answer {
            shared_images: Vec<SharedImage>,
        }
        Ok(self.json::<Answer>(Method::GET, &format!("/v1/shared-images/{}", encode(member))).await?.shared_images)
    }

    pub(crate) async fn v1_add_member(&self, id: &str, member: &str, can_share: Option<bool>) -> Result<()> {
        let path = format!("/v1/images/{}/members/{}", encode(id), encode(member));
        let body = match can_share {
            Some(c) => json_body(&serde_json::json!({"member": {"can_share": c}})),
            None => RequestBody::Empty,
        };
        self.send(Method::PUT, &path, json_headers(), body, None).await?;
        Ok(())
    }

    pub(crate) async fn v1_replace_members(&self, id: &str, members: &[MemberChange]) -> Result<()> {
        let path = format!("/v1/images/{}/members", encode(id));
        let body = json_body(&serde_json::json!({ "memberships": members }));
        self.send(Method::PUT, &path, json_headers(), body, None).await?;
        Ok(())
    }
}

/// `path?query`, or `path` for an empty query.
fn with_query(path: &str, query: &ListQuery) -> String {
    match query.query_string() {
        q if q.is_empty() => path.to_owned(),
        q => format!("{path}?{q}"),
    }
}
