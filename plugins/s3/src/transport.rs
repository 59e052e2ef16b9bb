//! OpenDAL's reqwest transport with the store's time limits around it, so that a dead or
//! hung server fails a request instead of holding it forever.
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
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use futures::Stream;
use opendal::{Buffer, Error, ErrorKind, HttpBody, HttpTransport, Result};
use opendal_http_transport_reqwest::ReqwestTransport;
use tokio::time::{Instant, Sleep};

/// The slowest upload rate a request's allowance counts with.
const FLOOR_BYTES_PER_SEC: u64 = 16 * 1024;

/// [`ReqwestTransport`] with deadlines.
pub struct Timed {
    inner: ReqwestTransport,
    timeout: Duration,
}

impl Timed {
    /// `client`'s requests, limited by `timeout` as the module describes.
    pub fn new(client: reqwest::Client, timeout: Duration) -> Timed {
        Timed { inner: ReqwestTransport::new(client), timeout }
    }
}

fn timed_out(what: &str, limit: Duration) -> Error {
    Error::new(ErrorKind::Unexpected, format!("{what} within {} s", limit.as_secs())).set_temporary()
}

impl HttpTransport for Timed {
    async fn fetch(&self, req: http::Request<Buffer>) -> Result<http::Response<HttpBody>> {
        let allowance = Duration::from_secs(req.body().len() as u64 / FLOOR_BYTES_PER_SEC);
        let limit = self.timeout + allowance;
        let response = tokio::time::timeout(limit, self.inner.fetch(req))
            .await
            .map_err(|_| timed_out("the server sent no answer", limit))??;
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
