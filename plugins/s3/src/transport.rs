//! OpenDAL's reqwest transport with the store's time limits around it, so that a dead or
//! hung server fails a request instead of holding it forever, and with aborts that wait for
//! the parts still on their way.
//!
//! # Aborts after the last part
//! OpenDAL aborts a multipart upload by dropping the part uploads in flight and sending
//! AbortMultipartUpload at once. Dropping a request whose body the server already has does
//! not stop the server: radosgw then finishes that part *after* the abort, and the part
//! stays in the bucket's index for good, outside any upload (seen in this store's tests,
//! about one abort in three with four parts in flight). So part uploads are not cancelled
//! with their caller here (they run to their end, within their time limit, in a task of
//! their own), and an AbortMultipartUpload waits until no part of the same object is in
//! flight. The abort is then the last word, and removes every part.
//!
//! reqwest's own `read_timeout` cannot be used: its clock starts when the request is
//! created, so it would cut a part upload that is slow but moving. Instead:
//! - the answer's head must arrive within `timeout`, plus one second for every 16 KiB
//!   of the request's body (a part of 10 MiB gets 640 s more: enough for a slow link, and
//!   still an end for a server that took the body and went silent);
//! - every read of the answer's body must bring data within `timeout` (stalled, not slow);
//! - connecting takes at most `timeout`, and data sent but not acknowledged for `timeout`
//!   closes the connection (the client's `tcp_user_timeout`).

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use futures::Stream;
use opendal::{Buffer, Error, ErrorKind, HttpBody, HttpTransport, Result};
use opendal_http_transport_reqwest::ReqwestTransport;
use tokio::{
    sync::Notify,
    time::{Instant, Sleep},
};

/// The slowest upload rate a request's allowance counts with.
const FLOOR_BYTES_PER_SEC: u64 = 16 * 1024;

/// [`ReqwestTransport`] with deadlines and part-aware aborts.
pub struct Timed {
    inner: ReqwestTransport,
    timeout: Duration,
    parts: Arc<InFlight>,
}

impl Timed {
    /// `client`'s requests, limited by `timeout` as the module describes.
    pub fn new(client: reqwest::Client, timeout: Duration) -> Timed {
        Timed { inner: ReqwestTransport::new(client), timeout, parts: Default::default() }
    }
}

/// Part uploads in flight, counted per object (the URL's authority and path).
#[derive(Default)]
struct InFlight {
    count: Mutex<HashMap<String, usize>>,
    changed: Notify,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // A panic while holding the lock leaves counts that are still right.
        self.count.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a part of `object` until the guard is dropped.
    fn start(self: &Arc<Self>, object: String) -> PartGuard {
        *self.lock().entry(object.clone()).or_default() += 1;
        PartGuard { parts: self.clone(), object }
    }

    /// Returns once no part of `object` is in flight.
    async fn drained(&self, object: &str) {
        loop {
            // Registered before the check, so a part ending in between still wakes us.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !self.lock().contains_key(object) {
                return;
            }
            changed.await;
        }
    }
}

struct PartGuard {
    parts: Arc<InFlight>,
    object: String,
}

impl Drop for PartGuard {
    fn drop(&mut self) {
        let mut count = self.parts.lock();
        if let Some(n) = count.get_mut(&self.object) {
            *n -= 1;
            if *n == 0 {
                count.remove(&self.object);
            }
        }
        drop(count);
        self.parts.changed.notify_waiters();
    }
}

/// Whether the query string `query` has a parameter `name`.
fn has_param(query: &str, name: &str) -> bool {
    query.split('&').any(|pair| pair.split('=').next() == Some(name))
}

fn timed_out(what: &str, limit: Duration) -> Error {
    Error::new(ErrorKind::Unexpected, format!("{what} within {} s", limit.as_secs())).set_temporary()
}

impl HttpTransport for Timed {
    async fn fetch(&self, req: http::Request<Buffer>) -> Result<http::Response<HttpBody>> {
        let allowance = Duration::from_secs(req.body().len() as u64 / FLOOR_BYTES_PER_SEC);
        let limit = self.timeout + allowance;
        let uri = req.uri();
        let query = uri.query().unwrap_or_default();
        let object = format!("{}{}", uri.authority().map(|a| a.as_str()).unwrap_or_default(), uri.path());
        let upload = has_param(query, "uploadId");
        let part = upload && has_param(query, "partNumber");
        if upload && req.method() == http::Method::DELETE {
            self.parts.drained(&object).await;
        }
        let inner = self.inner.clone();
        let call = async move {
            tokio::time::timeout(limit, inner.fetch(req))
                .await
                .map_err(|_| timed_out("the server sent no answer", limit))?
        };
        let response = if part {
            let guard = self.parts.start(object);
            // Not cancelled when the writer drops it: see "Aborts after the last part".
            let task = tokio::spawn(async move {
                let response = call.await;
                drop(guard);
                response
            });
            task.await.map_err(|e| Error::new(ErrorKind::Unexpected, format!("a part upload failed: {e}")))??
        } else {
            call.await?
        };
        let stall = self.timeout;
        Ok(response.map(|body| body.map_inner(|stream| Box::new(Stalls::new(stream, stall)))))
    }
}

type Inner = Box<dyn Stream<Item = Result<Buffer>> + Send + Sync + Unpin + 'static>;

/// A body stream that fails when no data comes for `limit`.
struct Stalls {
    inner: Inner,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
}

impl Stalls {
    fn new(inner: Inner, limit: Duration) -> Stalls {
        Stalls { inner, limit, timer: Box::pin(tokio::time::sleep(limit)) }
    }
}

impl Stream for Stalls {
    type Item = Result<Buffer>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(item) => {
                let next = Instant::now() + self.limit;
                self.timer.as_mut().reset(next);
                Poll::Ready(item)
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(timed_out("the server sent no data", self.limit)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[test]
    fn parameters_are_found_by_name() {
        assert!(has_param("partNumber=3&uploadId=2~x", "uploadId"));
        assert!(has_param("uploads", "uploads"));
        assert!(!has_param("uploads&prefix=uploadId", "uploadId"));
        assert!(!has_param("", "uploadId"));
    }

    #[tokio::test]
    async fn an_abort_waits_for_the_parts_of_its_object() {
        let parts: Arc<InFlight> = Default::default();
        let first = parts.start("h/b/k".into());
        let second = parts.start("h/b/k".into());
        let other = parts.start("h/b/other".into());
        let mut abort = Box::pin(parts.drained("h/b/k"));
        assert!(futures::poll!(abort.as_mut()).is_pending());
        drop(first);
        drop(other);
        assert!(futures::poll!(abort.as_mut()).is_pending(), "one part of the object is still in flight");
        drop(second);
        abort.await;
        parts.drained("h/b/none").await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_and_a_moving_one_does_not() {
        // Two chunks 9 s apart, then silence: with a 10 s limit both arrive, then it fails.
        let chunks = futures::stream::unfold(0, |n| async move {
            match n {
                0 | 1 => {
                    tokio::time::sleep(Duration::from_secs(9)).await;
                    Some((Ok(Buffer::from(vec![n as u8])), n + 1))
                }
                _ => std::future::pending().await,
            }
        });
        let mut s = Stalls::new(Box::new(Box::pin(chunks)), Duration::from_secs(10));
        assert_eq!(s.next().await.unwrap().unwrap().to_vec(), [0]);
        assert_eq!(s.next().await.unwrap().unwrap().to_vec(), [1]);
        let e = s.next().await.unwrap().unwrap_err();
        assert!(e.is_temporary());
        assert!(e.message().contains("no data within 10 s"), "{e}");
    }
}
