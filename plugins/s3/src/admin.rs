//! The few S3 requests OpenDAL has no call for: HEAD and PUT of the bucket (the check,
//! `create_bucket_on_put`) and listing and aborting an image's multipart uploads
//! (`discard`, after a crash). They are signed with reqsign, the SigV4 signer OpenDAL
//! itself uses, and sent with the same reqwest client as everything else. Their bodies are
//! small, so each request as a whole must be done within the store's `timeout`.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use reqsign_aws_v4::{Credential, RequestSigner};
use reqsign_core::SignRequest;
use serde::Deserialize;
use url::Url;

use crate::config::UrlFormat;

/// Signed requests to one server with one pair of keys.
pub struct Admin {
    client: reqwest::Client,
    endpoint: Url,
    url_format: UrlFormat,
    signer: RequestSigner,
    credential: Credential,
    timeout: Duration,
}

/// Why a request failed: it never got an answer, or the answer was not the expected one.
#[derive(Debug)]
pub enum Failure {
    /// Connecting, sending or reading failed (the error carries no URL).
    Transport(reqwest::Error),
    /// The server answered with this status; the body's S3 error code, if any.
    Status(StatusCode, String),
    /// The request could not be signed.
    Sign(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transport(e) => f.write_str(&crate::error::chain(e)),
            Failure::Status(status, code) if code.is_empty() => write!(f, "the server answered {status}"),
            Failure::Status(status, code) => write!(f, "the server answered {status} ({code})"),
            Failure::Sign(why) => write!(f, "cannot sign the request: {why}"),
        }
    }
}

/// One in-progress multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Upload {
    /// The object it will create.
    #[serde(rename = "Key")]
    pub key: String,
    /// Its id.
    #[serde(rename = "UploadId")]
    pub upload_id: String,
}

#[derive(Deserialize)]
struct ListMultipartUploadsResult {
    #[serde(rename = "Upload", default)]
    uploads: Vec<Upload>,
    #[serde(rename = "IsTruncated", default)]
    is_truncated: bool,
    #[serde(rename = "NextKeyMarker", default)]
    next_key_marker: Option<String>,
    #[serde(rename = "NextUploadIdMarker", default)]
    next_upload_id_marker: Option<String>,
}

#[derive(Deserialize)]
struct S3Error {
    #[serde(rename = "Code", default)]
    code: String,
}

impl Admin {
    /// Requests to `endpoint`, signed with these keys for `region`, each done within
    /// `timeout`.
    pub fn new(
        client: reqwest::Client,
        endpoint: Url,
        url_format: UrlFormat,
        region: &str,
        (access_key, secret_key): (&str, &str),
        timeout: Duration,
    ) -> Admin {
        let credential = Credential {
            access_key_id: access_key.to_owned(),
            secret_access_key: secret_key.to_owned(),
            ..Default::default()
        };
        Admin { client, endpoint, url_format, signer: RequestSigner::new("s3", region), credential, timeout }
    }

    /// The URL of `bucket` (and `key` in it) with `query`, in the configured style.
    fn url(&self, bucket: &str, key: Option<&str>, query: &[(&str, &str)]) -> Url {
        let mut url = self.endpoint.clone();
        if self.url_format == UrlFormat::Virtual {
            let host = format!("{bucket}.{}", url.host_str().unwrap_or_default());
            // The endpoint was checked to have a host, and a valid bucket name keeps it one.
            let _ = url.set_host(Some(&host));
        }
        {
            let mut path = url.path_segments_mut().expect("http(s) URLs have paths");
            path.clear();
            if self.url_format == UrlFormat::Path {
                path.push(bucket);
            }
            if let Some(key) = key {
                // A key's slashes are S3's own separators, not to be escaped.
                path.extend(key.split('/'));
            }
        }
        if !query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// Sends a signed request; returns the status and body of any answer.
    async fn send(&self, method: Method, url: Url, body: Bytes) -> Result<(StatusCode, Bytes), Failure> {
        let request = http::Request::builder()
            .method(method)
            .uri(url.as_str())
            .body(())
            .map_err(|e| Failure::Sign(e.to_string()))?;
        let (mut parts, ()) = request.into_parts();
        self.signer
            .sign_request(&reqsign_core::Context::new(), &mut parts, Some(&self.credential), None)
            .await
            .map_err(|e| Failure::Sign(e.to_string()))?;
        let response = self
            .client
            .request(parts.method, url)
            .headers(parts.headers)
            .body(body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| Failure::Transport(e.without_url()))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| Failure::Transport(e.without_url()))?;
        Ok((status, body))
    }

    /// A status that is not the one expected, with the S3 error code from the body.
    fn unexpected(status: StatusCode, body: &[u8]) -> Failure {
        let code = quick_xml::de::from_reader::<_, S3Error>(body).map(|e| e.code).unwrap_or_default();
        Failure::Status(status, code)
    }

    /// Whether `bucket` exists and the keys may use it: `Ok(true)` exists, `Ok(false)` does
    /// not, an error for anything else (403 included).
    pub async fn bucket_exists(&self, bucket: &str) -> Result<bool, Failure> {
        let (status, body) = self.send(Method::HEAD, self.url(bucket, None, &[]), Bytes::new()).await?;
        match status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(Self::unexpected(s, &body)),
        }
    }

    /// Creates `bucket` in `region`; one that the keys already own is success.
    pub async fn create_bucket(&self, bucket: &str, region: &str) -> Result<(), Failure> {
        // us-east-1 is S3's default and takes no location constraint; any other region
        // must be named in the body.
        let body = if region == "us-east-1" {
            Bytes::new()
        } else {
            Bytes::from(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            ))
        };
        let (status, answer) = self.send(Method::PUT, self.url(bucket, None, &[]), body).await?;
        if status.is_success() {
            return Ok(());
        }
        match Self::unexpected(status, &answer) {
            Failure::Status(_, code) if code == "BucketAlreadyOwnedByYou" => Ok(()),
            other => Err(other),
        }
    }

    /// The multipart uploads in progress in `bucket` whose key starts with `prefix`.
    pub async fn uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<Upload>, Failure> {
        let mut all = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut query = vec![("uploads", ""), ("prefix", prefix)];
            if let Some((key, id)) = &markers {
                query.push(("key-marker", key));
                query.push(("upload-id-marker", id));
            }
            let (status, body) = self.send(Method::GET, self.url(bucket, None, &query), Bytes::new()).await?;
            if !status.is_success() {
                return Err(Self::unexpected(status, &body));
            }
            let page: ListMultipartUploadsResult = quick_xml::de::from_reader(&body[..])
                .map_err(|e| Failure::Status(status, format!("an unreadable upload list: {e}")))?;
            all.extend(page.uploads);
            match (page.is_truncated, page.next_key_marker, page.next_upload_id_marker) {
                (true, Some(key), Some(id)) => markers = Some((key, id)),
                _ => return Ok(all),
            }
        }
    }

    /// Aborts one multipart upload; one that is already gone is success.
    pub async fn abort(&self, bucket: &str, upload: &Upload) -> Result<(), Failure> {
        let url = self.url(bucket, Some(&upload.key), &[("uploadId", &upload.upload_id)]);
        let (status, body) = self.send(Method::DELETE, url, Bytes::new()).await?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(Self::unexpected(status, &body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(endpoint: &str, format: UrlFormat) -> Admin {
        let endpoint = Url::parse(endpoint).unwrap();
        Admin::new(reqwest::Client::new(), endpoint, format, "us-east-1", ("AK", "SK"), Duration::from_secs(1))
    }

    #[test]
    fn urls_follow_the_configured_style() {
        let path = admin("http://127.0.0.1:7480", UrlFormat::Path);
        assert_eq!(path.url("images", None, &[]).as_str(), "http://127.0.0.1:7480/images");
        assert_eq!(
            path.url("images", Some("dir/a b"), &[("uploadId", "2~x/y")]).as_str(),
            "http://127.0.0.1:7480/images/dir/a%20b?uploadId=2%7Ex%2Fy"
        );
        assert_eq!(path.url("images", None, &[("uploads", ""), ("prefix", "id")]).query(), Some("uploads=&prefix=id"));
        let virtual_host = admin("https://s3.example.com", UrlFormat::Virtual);
        assert_eq!(virtual_host.url("images", Some("k"), &[]).as_str(), "https://images.s3.example.com/k");
    }

    #[test]
    fn upload_lists_parse() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
            <ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Bucket>images</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
              <NextKeyMarker>b</NextKeyMarker><NextUploadIdMarker>2~y</NextUploadIdMarker>
              <MaxUploads>1000</MaxUploads><IsTruncated>true</IsTruncated>
              <Upload><Key>a</Key><UploadId>2~x</UploadId><Initiated>2026-01-01T00:00:00Z</Initiated></Upload>
              <Upload><Key>b</Key><UploadId>2~y</UploadId></Upload>
            </ListMultipartUploadsResult>"#;
        let page: ListMultipartUploadsResult = quick_xml::de::from_reader(&xml[..]).unwrap();
        assert_eq!(page.uploads.len(), 2);
        assert_eq!(page.uploads[1], Upload { key: "b".into(), upload_id: "2~y".into() });
        assert!(page.is_truncated);
        assert_eq!(page.next_upload_id_marker.as_deref(), Some("2~y"));
        let empty: ListMultipartUploadsResult = quick_xml::de::from_reader(
            &b"<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>"[..],
        )
        .unwrap();
        assert!(empty.uploads.is_empty());
    }
}
