//! Moving image data between HTTP bodies and store plugins with bounded memory.
//!
//! Upload: the async side collects body frames into [`CHUNK`]-sized buffers and hands each
//! one, by reference count, to two blocking threads at once: one writes it into the store,
//! the other feeds MD5. Channels hold at most `DEPTH` chunks each, so a slow store slows
//! the client down instead of filling memory, and a 10 GiB upload costs what a 10 MiB one
//! does. Nothing is finished in the store until the size and checksum have been checked.
//!
//! Download: a blocking thread reads the store into chunks and sends them through a
//! bounded channel that the response body drains. If the store ends early, the body ends
//! with an error, so the connection is cut rather than a short download looking complete.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use md5::{Digest, Md5};
use tank_core::ImageId;
use tokio::sync::{mpsc, watch};

use super::error::ApiError;
use crate::plugin::handles::{self, Reader, Store, Writer};

/// The size of the pieces data moves in: one plugin call per chunk.
pub const CHUNK: usize = 1 << 20;
/// How many chunks may wait in each channel. Enough that MD5, the slowest stage, never
/// waits for the socket or the store; few enough to bound a transfer's buffers to about 20 MiB.
const DEPTH: usize = 8;

/// The bytes of an upload: a request body, or a copy-from source read through its store.
pub type UploadBody = UnsyncBoxBody<Bytes, io::Error>;

/// A request body as an upload.
pub fn request_body(body: Unread) -> UploadBody {
    body.map_err(io::Error::other).boxed_unsync()
}

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
}

impl Body for Unread {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.0.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.0.as_ref().map(Body::size_hint).unwrap_or_default()
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

/// What `reader` reads from a source store (copy-from), as an upload: a store error
/// interrupts it like a broken connection.
pub fn source_body(reader: Reader) -> UploadBody {
    Download::start(reader, None).boxed_unsync()
}

/// A finished receive, not yet made durable: the caller checks it, then finishes or
/// aborts the writer.
pub struct Received {
    /// The open write, holding all the data.
    pub writer: Writer,
    /// Bytes received.
    pub size: u64,
    /// MD5 of the bytes, lowercase hex.
    pub checksum: String,
}

/// The most bytes an upload may bring, and what sets that limit (for the 413's message).
#[derive(Debug, Clone)]
pub struct Limit {
    /// Bytes.
    pub bytes: u64,
    /// "image_size_cap (1099511627776 bytes)", say.
    pub reason: String,
}

impl Limit {
    /// The 413 for an upload that goes past this limit.
    pub fn exceeded(&self) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the image is larger than {}; nothing was kept", self.reason),
        )
    }
}

/// Streams `body` into a new write of image `id` in `store`. `declared` is the size the
/// client announced; more or fewer bytes are refused, and so is anything past `limit`,
/// counted as it arrives (a chunked body declares nothing). A `true` on `cancel` stops
/// the upload. On any error the write is aborted before this returns, so nothing is left
/// in the store.
pub async fn receive(
    body: UploadBody,
    store: Arc<Store>,
    id: ImageId,
    declared: Option<u64>,
    limit: &Limit,
    cancel: watch::Receiver<bool>,
) -> Result<Received, ApiError> {
    let add_store = store.clone();
    let writer = tokio::task::spawn_blocking(move || add_store.add(id, declared)).await??;

    let (to_writer, mut writer_rx) = mpsc::channel::<Bytes>(DEPTH);
    let (to_hasher, mut hasher_rx) = mpsc::channel::<Bytes>(DEPTH);
    let writing = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        while let Some(chunk) = writer_rx.blocking_recv() {
            if let Err(e) = handles::write(&mut writer, &chunk) {
                return (writer, Err(e));
            }
        }
        (writer, Ok(()))
    });
    let hashing = tokio::task::spawn_blocking(move || {
        let mut md5 = Md5::new();
        while let Some(chunk) = hasher_rx.blocking_recv() {
            md5.update(&chunk);
        }
        hex::encode(md5.finalize())
    });

    let pumped = pump(body, declared, limit, cancel, &to_writer, &to_hasher).await;
    drop((to_writer, to_hasher));
    let (writer, written) = writing.await?;
    let checksum = hashing.await?;

    // A store error explains a failed pump better than "the writer went away".
    let outcome = match (written, pumped) {
        (Err(e), _) => Err(ApiError::from(e)),
        (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(size)) => Ok(size),
    };
    match outcome {
        Ok(size) => Ok(Received { writer, size, checksum }),
        Err(e) => {
            discard(writer).await;
            Err(e)
        }
    }
}

/// Aborts a write, logging (not answering) a failure to clean up.
pub async fn discard(writer: Writer) {
    match tokio::task::spawn_blocking(move || handles::abort(writer)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(kind = %e.kind, "could not remove partial image data: {}", e.message),
        Err(e) => tracing::error!("could not remove partial image data: {e}"),
    }
}

/// Reads the body into chunks for both consumers; returns the byte count.
async fn pump(
    mut body: UploadBody,
    declared: Option<u64>,
    limit: &Limit,
    mut cancel: watch::Receiver<bool>,
    to_writer: &mpsc::Sender<Bytes>,
    to_hasher: &mpsc::Sender<Bytes>,
) -> Result<u64, ApiError> {
    let mut total: u64 = 0;
    let mut buf = BytesMut::with_capacity(CHUNK);
    let send = |chunk: Bytes| async move {
        // A closed channel means the store failed; the caller reports its error.
        let gone = || ApiError::internal("the store stopped accepting data");
        // The writer first: it is the faster consumer, so its queue is rarely full, and the
        // pump then waits on MD5, the stage that sets the pace, which is never left idle.
        to_writer.send(chunk.clone()).await.map_err(|_| gone())?;
        to_hasher.send(chunk).await.map_err(|_| gone())
    };
    // A dropped sender is no cancellation: only an explicit `true` stops the upload.
    let mut watching = true;
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            stopped = cancel.wait_for(|stop| *stop), if watching => {
                if stopped.is_ok() {
                    return Err(ApiError::conflict("the image was deleted during the upload; nothing was kept"));
                }
                watching = false;
                continue;
            }
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| ApiError::bad_request(format!("the upload was interrupted: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        total += data.len() as u64;
        if total > limit.bytes {
            return Err(limit.exceeded());
        }
        if let Some(d) = declared {
            if total > d {
                return Err(ApiError::bad_request(format!(
                    "the body holds more than the declared size of {d} bytes (x-image-meta-size)"
                )));
            }
        }
        if buf.is_empty() && data.len() >= CHUNK / 2 {
            // hyper hands over large frames when the client is fast: pass them on as they
            // are instead of copying them into a chunk.
            send(data).await?;
            continue;
        }
        buf.extend_from_slice(&data);
        if buf.len() >= CHUNK {
            send(buf.split().freeze()).await?;
            buf.reserve(CHUNK);
        }
    }
    if !buf.is_empty() {
        send(buf.freeze()).await?;
    }
    if let Some(d) = declared {
        if total != d {
            return Err(ApiError::bad_request(format!(
                "the body holds {total} bytes, the declared size is {d} (x-image-meta-size)"
            )));
        }
    }
    Ok(total)
}

/// A body fed by a blocking reader thread: a download's response, or a copy-from's source.
pub struct Download {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    /// Bytes still to come, when the size is known.
    remaining: Option<u64>,
}

impl Download {
    /// Starts sending the data `reader` reads, which must be `size` bytes when given.
    pub fn start(reader: Reader, size: Option<u64>) -> Download {
        let (tx, rx) = mpsc::channel(DEPTH);
        tokio::task::spawn_blocking(move || send_all(reader, size, &tx));
        Download { rx, remaining: size }
    }
}

fn send_all(mut reader: Reader, size: Option<u64>, tx: &mpsc::Sender<io::Result<Bytes>>) {
    let mut sent: u64 = 0;
    let mut done = false;
    while !done {
        // Every chunk is filled before it is sent: a store handing over small pieces (a
        // network stream's frames) costs one allocation per CHUNK, not one per piece.
        let mut buf = BytesMut::zeroed(CHUNK);
        let mut filled = 0;
        while filled < CHUNK {
            match handles::read(&mut reader, &mut buf[filled..]) {
                Ok(0) => {
                    done = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) => {
                    tracing::error!(kind = %e.kind, "reading image data failed: {}", e.message);
                    // Plugins' messages never hold credentials (sdk contract); a copy-from's
                    // client sees this one. What was read before the failure is not sent:
                    // the download is cut either way.
                    let _ = tx.blocking_send(Err(io::Error::other(e.message)));
                    return;
                }
            }
        }
        if filled == 0 {
            break;
        }
        buf.truncate(filled);
        sent += filled as u64;
        if tx.blocking_send(Ok(buf.freeze())).is_err() {
            return; // The client went away.
        }
    }
    let Some(size) = size else { return };
    if sent != size {
        tracing::error!(sent, size, "the store returned {sent} bytes of a {size}-byte image; cutting the download");
        let _ = tx.blocking_send(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "corrupt image download")));
    }
}

impl Body for Download {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.rx.poll_recv(cx).map(|item| {
            item.map(|r| {
                r.map(|data| {
                    self.remaining = self.remaining.map(|left| left.saturating_sub(data.len() as u64));
                    Frame::data(data)
                })
            })
        })
    }

    fn size_hint(&self) -> SizeHint {
        self.remaining.map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}
