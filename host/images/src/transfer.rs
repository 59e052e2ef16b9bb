//! Moving image data between byte streams and stores with bounded memory.
//!
//! Upload: the async side collects the stream's pieces into [`CHUNK`]-sized buffers and
//! hands each one, by reference count, to three blocking threads at once: one writes it
//! into the store, one feeds MD5, one the multihash (`os_hash_value`). Channels hold at
//! most [`DEPTH`] chunks each, so a slow store slows the client down instead of filling
//! memory, and a 10 GiB upload costs what a 10 MiB one does. Nothing is finished in the
//! store until the size and checksum have been checked.
//!
//! Download: a blocking thread reads the store into chunks and sends them through a
//! bounded channel that the [`Download`] stream drains. If the store ends early, the
//! stream ends with an error, so the connection is cut rather than a short download
//! looking complete.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use md5::{Digest, Md5};
use tank_core::ImageId;
use tokio::sync::{mpsc, watch};

use crate::{
    backend::{Reader, StoreEntry, Writer},
    error::Mismatch,
    HashAlgorithm, ImageError, Result,
};

/// The size of the pieces data moves in: one plugin call per chunk.
pub const CHUNK: usize = 1 << 20;
/// How many chunks may wait in each channel. Enough that the hashes, the slowest stages,
/// never wait for the socket or the store; few enough to bound a transfer's buffers.
const DEPTH: usize = 8;

/// A stream of image bytes: a request body, a copy-from source, a download.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Why an upload is stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The image was deleted.
    Deleted,
    /// Another server took the upload over after its lease passed.
    LeaseLost,
}

/// A finished receive, not yet made durable: the caller checks it, then finishes or
/// aborts the writer.
pub(crate) struct Received {
    /// The open write, holding all the data.
    pub writer: Box<dyn Writer>,
    /// Bytes received.
    pub size: u64,
    /// MD5 of the bytes, lowercase hex.
    pub md5: String,
    /// The multihash, lowercase hex.
    pub hash: String,
}

/// The most bytes an upload may bring, and the error for going past it.
#[derive(Debug, Clone)]
pub(crate) struct Limit {
    /// Bytes.
    pub bytes: u64,
    /// What answers an upload past it.
    pub exceeded: ImageError,
}

/// Streams `body` into a new write of image `id` in `store`. `declared` is the size the
/// data must have; more or fewer bytes are refused, and so is anything past `limit`,
/// counted as it arrives. A value on `stop` ends the upload. On any error the write is
/// aborted before this returns, so nothing is left in the store.
pub(crate) async fn receive(
    body: ByteStream,
    entry: &StoreEntry,
    id: ImageId,
    declared: Option<u64>,
    limit: &Limit,
    stop: watch::Receiver<Option<Stop>>,
    algorithm: HashAlgorithm,
) -> Result<Received> {
    let (add_store, store_name) = (entry.store.clone(), entry.names[0].as_str());
    let writer = tokio::task::spawn_blocking(move || add_store.add(id, declared))
        .await
        .map_err(joined)?
        .map_err(|e| ImageError::store(store_name, e))?;

    let (to_writer, mut writer_rx) = mpsc::channel::<Bytes>(DEPTH);
    let (to_md5, mut md5_rx) = mpsc::channel::<Bytes>(DEPTH);
    let (to_hash, mut hash_rx) = mpsc::channel::<Bytes>(DEPTH);
    let writing = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        while let Some(chunk) = writer_rx.blocking_recv() {
            if let Err(e) = writer.write(&chunk) {
                return (writer, Err(e));
            }
        }
        (writer, Ok(()))
    });
    let md5ing = tokio::task::spawn_blocking(move || {
        let mut md5 = Md5::new();
        while let Some(chunk) = md5_rx.blocking_recv() {
            md5.update(&chunk);
        }
        hex::encode(md5.finalize())
    });
    let hashing = tokio::task::spawn_blocking(move || {
        let mut hasher = algorithm.hasher();
        while let Some(chunk) = hash_rx.blocking_recv() {
            hasher.update(&chunk);
        }
        hasher.finish()
    });

    let pumped = pump(body, id, declared, limit, stop, [&to_writer, &to_md5, &to_hash]).await;
    drop((to_writer, to_md5, to_hash));
    let (writer, written) = writing.await.map_err(joined)?;
    let md5 = md5ing.await.map_err(joined)?;
    let hash = hashing.await.map_err(joined)?;

    // A store error explains a failed pump better than "the writer went away".
    let outcome = match (written, pumped) {
        (Err(e), _) => Err(ImageError::store(store_name, e)),
        (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(size)) => Ok(size),
    };
    match outcome {
        Ok(size) => Ok(Received { writer, size, md5, hash }),
        Err(e) => {
            discard(writer, store_name).await;
            Err(e)
        }
    }
}

/// A blocking task that did not finish (it panicked): an internal failure.
pub(crate) fn joined(e: tokio::task::JoinError) -> ImageError {
    tracing::error!("a blocking task failed: {e}");
    ImageError::Internal("an internal task failed; the operator's log has details".into())
}

/// Aborts a write, logging (not answering) a failure to clean up.
pub(crate) async fn discard(writer: Box<dyn Writer>, store: &str) {
    match tokio::task::spawn_blocking(move || writer.abort()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(store, kind = %e.kind, "could not remove partial image data: {}", e.message),
        Err(e) => tracing::error!(store, "could not remove partial image data: {e}"),
    }
}

/// The next piece of `body`.
async fn next(body: &mut ByteStream) -> Option<io::Result<Bytes>> {
    std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await
}

/// Reads the body into chunks for every consumer; returns the byte count.
async fn pump(
    mut body: ByteStream,
    id: ImageId,
    declared: Option<u64>,
    limit: &Limit,
    mut stop: watch::Receiver<Option<Stop>>,
    consumers: [&mpsc::Sender<Bytes>; 3],
) -> Result<u64> {
    let mut total: u64 = 0;
    let mut buf = BytesMut::with_capacity(CHUNK);
    let send = |chunk: Bytes| async move {
        // A closed channel means the store failed; the caller reports its error.
        for to in consumers {
            to.send(chunk.clone())
                .await
                .map_err(|_| ImageError::Internal("the store stopped accepting data".into()))?;
        }
        Ok::<(), ImageError>(())
    };
    // A dropped sender is no stop: only a value stops the upload.
    let mut watching = true;
    loop {
        let piece = tokio::select! {
            piece = next(&mut body) => piece,
            stopped = stop.wait_for(Option::is_some), if watching => {
                match stopped.map(|s| *s) {
                    Ok(Some(Stop::Deleted)) => return Err(ImageError::DeletedDuringUpload(id)),
                    Ok(Some(Stop::LeaseLost)) => return Err(ImageError::Conflict(
                        "the upload was taken over by another server after this server's lease on it passed; \
                         nothing was kept".into(),
                    )),
                    _ => {}
                }
                watching = false;
                continue;
            }
        };
        let Some(piece) = piece else { break };
        let data = piece.map_err(|e| ImageError::Interrupted(format!("the upload was interrupted: {e}")))?;
        total += data.len() as u64;
        if total > limit.bytes {
            return Err(limit.exceeded.clone());
        }
        if let Some(d) = declared.filter(|&d| total > d) {
            return Err(ImageError::SizeMismatch(Mismatch::MoreThan { declared: d }));
        }
        if buf.is_empty() && data.len() >= CHUNK / 2 {
            // Large pieces (a fast client) are passed on as they are, not copied.
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
    if let Some(d) = declared.filter(|&d| total != d) {
        return Err(ImageError::SizeMismatch(Mismatch::Ended { declared: d, got: total }));
    }
    Ok(total)
}

/// A stream fed by a blocking reader thread: a download, or a copy-from's source.
#[derive(Debug)]
pub struct Download {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    /// Bytes still to come, when the size is known.
    remaining: Option<u64>,
}

impl Download {
    /// Starts sending what `reader` reads, which must be `size` bytes when given.
    pub fn start(reader: Box<dyn Reader>, size: Option<u64>) -> Download {
        let (tx, rx) = mpsc::channel(DEPTH);
        tokio::task::spawn_blocking(move || send_all(reader, size, &tx));
        Download { rx, remaining: size }
    }

    /// Bytes still to come, when known.
    pub fn remaining(&self) -> Option<u64> {
        self.remaining
    }
}

fn send_all(mut reader: Box<dyn Reader>, size: Option<u64>, tx: &mpsc::Sender<io::Result<Bytes>>) {
    let mut sent: u64 = 0;
    let mut done = false;
    while !done {
        // Every chunk is filled before it is sent: a store handing over small pieces (a
        // network stream's frames) costs one allocation per CHUNK, not one per piece.
        let mut buf = BytesMut::zeroed(CHUNK);
        let mut filled = 0;
        while filled < CHUNK {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => {
                    done = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) => {
                    tracing::error!(kind = %e.kind, "reading image data failed: {}", e.message);
                    // What was read before the failure is not sent: the download is cut
                    // either way. The client sees the reason without paths or addresses.
                    let _ = tx.blocking_send(Err(io::Error::other(tank_core::redact::for_clients(&e.message))));
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

impl Stream for Download {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        self.rx.poll_recv(cx).map(|item| {
            item.map(|r| {
                r.inspect(|data| {
                    self.remaining = self.remaining.map(|left| left.saturating_sub(data.len() as u64));
                })
            })
        })
    }
}
