//! The `RegistryDriver` methods, each one request to the registry's `/tank/` extension.

use http::{Method, StatusCode};
use serde::{de::DeserializeOwned, Deserialize};
use tank_sdk::{
    image::{query::ListQuery, Image, ImageId, Status},
    Error, OpenContext, RegistryDriver, Result, Revision, Revisioned,
};

use crate::{
    client::{Answer, Http},
    config::Config,
    error::{self, On409},
};

/// Image metadata in a `tank registry`, over HTTP.
pub struct RemoteDriver {
    http: Http,
}

#[derive(Deserialize)]
struct RevisionAnswer {
    revision: Revision,
}

#[derive(Deserialize)]
struct RecordAnswer {
    revision: Revision,
    image: Image,
}

#[derive(Deserialize)]
struct ImagesAnswer {
    images: Vec<Image>,
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::backend(format!("cannot encode JSON: {e}")))
}

/// Characters a path segment may hold as they are (RFC 3986 unreserved).
fn escape_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl RemoteDriver {
    /// Sends the request and returns the answer if its status is `ok`, else the error the
    /// answer stands for.
    fn call_ok(
        &self,
        method: Method,
        path: &str,
        if_match: Option<Revision>,
        body: Option<Vec<u8>>,
        ok: StatusCode,
        on409: On409,
    ) -> Result<Answer> {
        let what = format!("{method} {path}");
        let answer = self.http.send(method, path, if_match, body)?;
        if answer.status != ok {
            return Err(error::from_answer(self.http.base(), &what, answer.status, &answer.body, on409));
        }
        Ok(answer)
    }

    fn decode<T: DeserializeOwned>(&self, what: &str, answer: &Answer) -> Result<T> {
        serde_json::from_slice(&answer.body).map_err(|e| error::bad_answer(self.http.base(), what, e))
    }
}

impl RegistryDriver for RemoteDriver {
    fn open(ctx: &OpenContext) -> Result<Self> {
        let config: Config = ctx.config()?;
        let endpoint = config.endpoint()?;
        tracing::info!(registry = %endpoint.base, "remote registry driver ready");
        Ok(RemoteDriver { http: Http::new(endpoint)? })
    }

    fn create(&self, image: &Image) -> Result<Revision> {
        let answer = self.call_ok(
            Method::POST,
            "/tank/images",
            None,
            Some(to_json(image)?),
            StatusCode::CREATED,
            On409::Duplicate,
        )?;
        Ok(self.decode::<RevisionAnswer>("POST /tank/images", &answer)?.revision)
    }

    fn get(&self, id: ImageId) -> Result<Revisioned<Image>> {
        let path = format!("/tank/images/{id}");
        let answer = self.call_ok(Method::GET, &path, None, None, StatusCode::OK, On409::Conflict)?;
        let record: RecordAnswer = self.decode(&path, &answer)?;
        Ok(Revisioned { revision: record.revision, value: record.image })
    }

    fn update(&self, image: &Image, revision: Revision) -> Result<Revision> {
        let path = format!("/tank/images/{}", image.id);
        let answer =
            self.call_ok(Method::PUT, &path, Some(revision), Some(to_json(image)?), StatusCode::OK, On409::Conflict)?;
        Ok(self.decode::<RevisionAnswer>(&path, &answer)?.revision)
    }

    fn remove(&self, id: ImageId) -> Result<()> {
        let path = format!("/tank/images/{id}");
        self.call_ok(Method::DELETE, &path, None, None, StatusCode::NO_CONTENT, On409::Conflict)?;
        Ok(())
    }

    fn list(&self, query: &ListQuery) -> Result<Vec<Image>> {
        let path = "/tank/images/query";
        let answer = self.call_ok(Method::POST, path, None, Some(to_json(query)?), StatusCode::OK, On409::Conflict)?;
        Ok(self.decode::<ImagesAnswer>(path, &answer)?.images)
    }

    fn with_status(&self, statuses: &[Status]) -> Result<Vec<Image>> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let query: Vec<String> = statuses.iter().map(|s| format!("status={}", s.as_str())).collect();
        let path = format!("/tank/images?{}", query.join("&"));
        let answer = self.call_ok(Method::GET, &path, None, None, StatusCode::OK, On409::Conflict)?;
        Ok(self.decode::<ImagesAnswer>(&path, &answer)?.images)
    }

    /// The registry's driver answers: the figure lives where the records do.
    fn usage(&self, owner: &str) -> Result<u64> {
        #[derive(Deserialize)]
        struct Usage {
            bytes: u64,
        }
        let answer = self.call(tank_sdk::USAGE_OP, &serde_json::json!({ "owner": owner }).to_string())?;
        serde_json::from_str::<Usage>(&answer)
            .map(|u| u.bytes)
            .map_err(|e| error::bad_answer(self.http.base(), "/tank/call/usage", e))
    }

    fn check(&self) -> Result<()> {
        self.call_ok(Method::GET, "/tank/check", None, None, StatusCode::OK, On409::Conflict).map(drop)
    }

    fn call(&self, op: &str, payload: &str) -> Result<String> {
        let path = format!("/tank/call/{}", escape_segment(op));
        let answer = self.call_ok(
            Method::POST,
            &path,
            None,
            Some(payload.as_bytes().to_vec()),
            StatusCode::OK,
            On409::Conflict,
        )?;
        String::from_utf8(answer.body.to_vec()).map_err(|e| error::bad_answer(self.http.base(), &path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_escaped_into_one_segment() {
        assert_eq!(escape_segment("compact"), "compact");
        assert_eq!(escape_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn an_unreachable_registry_is_named_and_retryable() {
        // Port 9 (discard) on loopback: nothing listens there in a test environment, so the
        // connection is refused at once.
        let ctx = OpenContext {
            name: "remote".into(),
            config: serde_json::json!({"url": "http://127.0.0.1:9", "timeout_secs": 5}),
            config_dir: std::env::temp_dir(),
        };
        let driver = RemoteDriver::open(&ctx).unwrap();
        let e = driver.check().unwrap_err();
        assert_eq!(e.kind, tank_sdk::ErrorKind::UNAVAILABLE, "{e:?}");
        assert!(e.retryable);
        assert!(e.message.starts_with("registry at http://127.0.0.1:9 is unreachable: "), "{}", e.message);
    }
}
