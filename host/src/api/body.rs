//! HTTP bodies and the images service's byte streams: a request body as the stream an
//! upload reads, a download as a response body, and the guard that drains a refused
//! request's body so that its answer arrives.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_core::Stream;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tank_images::{ByteStream, Download};

use super::ResponseBody;

/// The most of an unread request body read and thrown away after an error answer.
const DRAIN_BYTES: u64 = 16 << 20;
/// The longest that draining may take.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// A request body that, if dropped before its end (the request was refused, or failed
/// part-way), reads and discards what is left in the background, up to `DRAIN_BYTES`
/// and `DRAIN_TIME`. Closing a connection with unread data in it makes the kernel reset
/// it, and a client still sending then loses the answer that says why it was refused;
/// draining lets the answer arrive. Past the limits the connection is closed anyway, so a
/// huge refused upload costs the server little.
pub struct Unread(Option<Incoming>);

impl Unread {
    /// Guards `body`.
    pub fn new(body: Incoming) -> Unread {
        Unread(Some(body))
    }

    /// The body as the stream of bytes an upload reads; a broken connection is an error
    /// of the stream.
    pub fn into_stream(self) -> ByteStream {
        Box::pin(Frames(self))
    }
}

impl Drop for Unread {
    fn drop(&mut self) {
        let Some(mut body) = self.0.take().filter(|b| !b.is_end_stream()) else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let mut drained: u64 = 0;
            let _ = tokio::time::timeout(DRAIN_TIME, async {
                while let Some(Ok(frame)) = body.frame().await {
                    drained += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if drained > DRAIN_BYTES {
                        break;
                    }
                }
            })
            .await;
        });
    }
}

/// The data frames of a request body.
struct Frames(Unread);

impl Stream for Frames {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        loop {
            let Some(body) = self.0 .0.as_mut() else { return Poll::Ready(None) };
            match Pin::new(body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(io::Error::other(e)))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => return Poll::Ready(Some(Ok(data))),
                    Err(_) => continue, // Trailers carry no image data.
                },
            }
        }
    }
}

/// A small request body (JSON), read whole: one larger than `max` bytes is refused
/// (413) before it is all read.
pub async fn read_small(body: Incoming, max: usize) -> Result<Bytes, (http::StatusCode, String)> {
    match http_body_util::Limited::new(body, max).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err((
            http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {max} bytes; image metadata is small JSON"),
        )),
        Err(e) => Err((http::StatusCode::BAD_REQUEST, format!("cannot read the request body: {e}"))),
    }
}

/// A download as a response body, of the size it announced.
pub fn download_body(download: Download) -> ResponseBody {
    DownloadBody(download).boxed()
}

struct DownloadBody(Download);

impl Body for DownloadBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.0).poll_next(cx).map(|item| item.map(|r| r.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        self.0.remaining().map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}
