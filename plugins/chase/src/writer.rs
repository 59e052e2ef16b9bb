//! One image upload into Swift, streamed: the bytes go out as they arrive, in a request
//! whose body is fed through a short queue, so memory stays bounded whatever the image's
//! size.
//!
//! - An image smaller than `large_object_size` is one `PUT` of the object, with
//!   `If-None-Match: *` so that it can never replace an image's data. Its last chunk is held
//!   back until `finish`: Swift completes an object when the last byte arrives, and the data
//!   must not exist before `finish`.
//! - A larger image is written as segments of `large_object_chunk_size`
//!   (`<container>_segments/<image id>/<upload nonce>/<00000001…>`), one `PUT` each (the
//!   next one streams while Swift answers the previous one), followed at `finish` by a
//!   static large object manifest (`?multipart-manifest=put`)
//!   listing each segment's path, size and ETag.
//! - An image of unknown size is held in memory up to `min(large_object_size,
//!   large_object_chunk_size)`: one object when it ends within that, segments otherwise.
//!
//! Each request keeps the start of what it sent (up to 32 MiB, at most one segment) until
//! Swift answers, so that a 401 (the token expired during the upload; Swift answers it
//! before reading the body) can be answered by authenticating again and sending the
//! request once more. Aborting cancels the
//! request in flight (Swift discards an object whose body did not end) and deletes the
//! segments already written.

use std::{collections::VecDeque, pin::Pin, sync::Arc, task::Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use reqwest::{
    header::{self, HeaderName, HeaderValue},
    Method, Response, StatusCode,
};
use tank_sdk::{Error, ErrorKind, Result, Writer};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    backend::{location, Shared},
    client::{Req, Session, Target},
    error::from_status,
};

/// Chunks queued between the host's thread and the request: with the host's 1 MiB chunks,
/// a few MiB per upload.
const QUEUE: usize = 4;

/// Segments whose body is complete that may wait for Swift's answer while the next one is
/// sent: Swift answers a segment after writing it to disk, and waiting for that before
/// sending on would leave the connection idle once per segment.
const AWAITING: usize = 1;

/// The most of a request's body kept to send again after a 401 (less when a segment is
/// smaller). Swift's proxy checks the token before it reads any of the body, so a 401
/// arrives when at most the sockets' buffers have gone out (under 3 MB measured on
/// loopback); a request that sent more without an answer is being read, so its token was
/// accepted.
const REPLAY_WINDOW: u64 = 32 << 20;

/// How the image is being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Size unknown and all of it still in memory.
    Undecided,
    /// One object.
    Single,
    /// Segments, then a manifest.
    Segmented,
}

/// A segment Swift has acknowledged.
struct Part {
    name: String,
    etag: String,
    size: u64,
}

/// An upload of one image.
pub struct ChaseWriter {
    shared: Arc<Shared>,
    id: String,
    container: String,
    segments: String,
    /// Tells this upload's segments from those of any other upload of the same image id.
    nonce: String,
    declared: Option<u64>,
    mode: Mode,
    written: u64,
    /// `Undecided`: everything so far. `Single`: the last chunk, held back.
    held: Vec<Bytes>,
    held_len: u64,
    /// The request being streamed (the object, or the current segment).
    put: Option<Put>,
    /// Where the current segment starts in the image, and how much of it was written.
    segment_start: u64,
    segment_written: u64,
    /// Segments sent whole, waiting for Swift's answer (with their sizes), oldest first.
    awaiting: VecDeque<(Put, u64)>,
    parts: Vec<Part>,
}

impl ChaseWriter {
    /// A writer for image `id`, after the store checked that the id has no data yet.
    pub(crate) fn new(shared: Arc<Shared>, id: &str, declared: Option<u64>) -> ChaseWriter {
        let config = &shared.config;
        let mode = match declared {
            Some(size) if size >= config.threshold() => Mode::Segmented,
            Some(_) => Mode::Single,
            None => Mode::Undecided,
        };
        let nonce = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        ChaseWriter {
            container: config.container.clone(),
            segments: config.segments_container(),
            shared,
            id: id.to_owned(),
            nonce,
            declared,
            mode,
            written: 0,
            held: Vec::new(),
            held_len: 0,
            put: None,
            segment_start: 0,
            segment_written: 0,
            awaiting: VecDeque::new(),
            parts: Vec::new(),
        }
    }

    fn what(&self, action: impl std::fmt::Display) -> String {
        self.shared.client.what(format_args!("{action} of image {}", self.id))
    }

    /// The most an upload of unknown size keeps in memory before it must be segmented.
    fn undecided_limit(&self) -> u64 {
        self.shared.config.threshold().min(self.shared.config.segment_size())
    }

    /// The length of the segment starting at `segment_start`, when the image's size is known.
    fn segment_len(&self) -> Option<u64> {
        let size = self.shared.config.segment_size();
        self.declared.map(|d| size.min(d - self.segment_start))
    }

    fn segment_name(&self, index: usize) -> String {
        format!("{}/{}/{:08}", self.id, self.nonce, index)
    }

    /// The single object's request, started on first use.
    fn single_put(&mut self) -> Result<&mut Put> {
        if self.put.is_none() {
            let spec = PutSpec {
                what: self.what("PUT"),
                container: self.container.clone(),
                object: self.id.clone(),
                length: self.declared,
                headers: vec![(header::IF_NONE_MATCH, HeaderValue::from_static("*"))],
            };
            self.put = Some(Put::start(&self.shared, spec, Vec::new(), None)?);
        }
        Ok(self.put.as_mut().expect("started above"))
    }

    /// Writes `chunks` into segments, starting and finishing them at their boundaries.
    fn feed_segments(&mut self, chunks: Vec<Bytes>) -> Result<()> {
        let size = self.shared.config.segment_size();
        for mut chunk in chunks {
            while !chunk.is_empty() {
                if self.put.is_none() {
                    self.start_segment()?;
                }
                let cap = self.segment_len().unwrap_or(size);
                let room = (cap - self.segment_written) as usize;
                let piece = chunk.split_to(room.min(chunk.len()));
                self.segment_written += piece.len() as u64;
                let put = self.put.as_mut().expect("started above");
                put.push(&self.shared, piece)?;
                if self.segment_written == cap {
                    self.finish_segment()?;
                }
            }
        }
        Ok(())
    }

    fn start_segment(&mut self) -> Result<()> {
        let segments = self.segments.clone();
        self.shared.block_on(self.shared.ensure_container(&segments))?;
        let index = self.parts.len() + self.awaiting.len() + 1;
        let spec = PutSpec {
            what: self.what(format_args!("PUT of segment {index}")),
            container: self.segments.clone(),
            object: self.segment_name(index),
            length: self.segment_len(),
            headers: Vec::new(),
        };
        self.put = Some(Put::start(&self.shared, spec, Vec::new(), None)?);
        self.segment_written = 0;
        Ok(())
    }

    /// Ends the current segment's body; its answer is awaited later (see [`AWAITING`]).
    fn finish_segment(&mut self) -> Result<()> {
        let mut put = self.put.take().expect("a segment is being written");
        put.close();
        self.awaiting.push_back((put, self.segment_written));
        self.segment_start += self.segment_written;
        self.segment_written = 0;
        while self.awaiting.len() > AWAITING {
            self.settle_oldest()?;
        }
        Ok(())
    }

    /// Waits for the answer to the oldest segment sent whole, and records it.
    fn settle_oldest(&mut self) -> Result<()> {
        let Some((put, size)) = self.awaiting.pop_front() else { return Ok(()) };
        let name = put.spec.object.clone();
        let what = put.spec.what.clone();
        let response = put.finish(&self.shared)?;
        let status = response.status();
        if !status.is_success() {
            let text = self.shared.block_on(self.shared.client.text(&what, response)).unwrap_or_default();
            return Err(from_status(&what, status, &text));
        }
        let etag = response.headers().get(header::ETAG).and_then(|v| v.to_str().ok()).map(|e| e.trim_matches('"'));
        let Some(etag) = etag.map(str::to_owned) else {
            return Err(Error::backend(format!("{what} was answered without an ETag")));
        };
        self.parts.push(Part { name, etag, size });
        Ok(())
    }

    /// The manifest that makes the segments one image.
    fn put_manifest(&self) -> Result<()> {
        let manifest: Vec<serde_json::Value> = self
            .parts
            .iter()
            .map(|p| {
                serde_json::json!({
                    "path": format!("/{}/{}", self.segments, p.name),
                    "etag": p.etag,
                    "size_bytes": p.size,
                })
            })
            .collect();
        let body = serde_json::to_vec(&manifest).map_err(|e| Error::backend(format!("encoding a manifest: {e}")))?;
        let what = self.what("PUT of the manifest");
        let req = Req::new(Method::PUT, Target::Object(&self.container, &self.id))
            .query("multipart-manifest", "put")
            .header(header::IF_NONE_MATCH, "*")
            .body(body);
        let client = &self.shared.client;
        self.shared.block_on(async {
            let response = client.send(&what, &req).await?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let text = client.text(&what, response).await.unwrap_or_default();
            Err(refusal(&what, &self.id, status, &text))
        })
    }

    /// Deletes the segments written so far, and those sent whole but not yet answered
    /// (after their answer, so that Swift cannot store one after the delete).
    fn remove_parts(&mut self) -> Result<()> {
        let mut names: Vec<String> = self.parts.drain(..).map(|p| p.name).collect();
        for (mut put, _) in std::mem::take(&mut self.awaiting) {
            let _ = put.answer(&self.shared);
            names.push(put.spec.object.clone());
        }
        if names.is_empty() {
            return Ok(());
        }
        self.shared.block_on(self.shared.delete_objects(&self.segments, &names))
    }

    fn finish_upload(&mut self) -> Result<()> {
        if let Some(d) = self.declared {
            if self.written != d {
                return Err(Error::invalid_input(
                    self.what(format_args!("upload: {} bytes were written, {d} were declared", self.written)),
                ));
            }
        }
        match self.mode {
            Mode::Undecided => {
                let spec = PutSpec {
                    what: self.what("PUT"),
                    container: self.container.clone(),
                    object: self.id.clone(),
                    length: Some(self.held_len),
                    headers: vec![(header::IF_NONE_MATCH, HeaderValue::from_static("*"))],
                };
                let put = Put::start(&self.shared, spec, std::mem::take(&mut self.held), None)?;
                check_object(&self.id, put.finish(&self.shared)?)
            }
            Mode::Single => {
                let last = self.held.pop();
                let shared = self.shared.clone();
                let put = self.single_put()?;
                if let Some(last) = last {
                    put.push(&shared, last)?;
                }
                let put = self.put.take().expect("started above");
                check_object(&self.id, put.finish(&self.shared)?)
            }
            Mode::Segmented => {
                if self.put.is_some() {
                    self.finish_segment()?;
                }
                while !self.awaiting.is_empty() {
                    self.settle_oldest()?;
                }
                self.put_manifest()
            }
        }
    }
}

fn replay_window(shared: &Shared) -> u64 {
    REPLAY_WINDOW.min(shared.config.segment_size())
}

/// A single object's answer: created, or refused because the image has data already.
fn check_object(id: &str, response: Response) -> Result<()> {
    match response.status() {
        s if s.is_success() => Ok(()),
        s => Err(refusal("PUT", id, s, "")),
    }
}

/// Swift's refusal of a final `PUT` (object or manifest); 412 is `If-None-Match: *` at work.
fn refusal(what: &str, id: &str, status: StatusCode, text: &str) -> Error {
    if status == StatusCode::PRECONDITION_FAILED {
        return Error::duplicate(format!("{what}: image {id} already has data in this store; nothing was overwritten"));
    }
    from_status(what, status, text)
}

impl Writer for ChaseWriter {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let len = data.len() as u64;
        if let Some(d) = self.declared {
            if self.written + len > d {
                return Err(Error::invalid_input(self.what(format_args!("upload: more than the declared {d} bytes"))));
            }
        }
        self.written += len;
        let chunk = Bytes::copy_from_slice(data);
        match self.mode {
            Mode::Undecided => {
                self.held.push(chunk);
                self.held_len += len;
                if self.held_len > self.undecided_limit() {
                    self.mode = Mode::Segmented;
                    self.held_len = 0;
                    let held = std::mem::take(&mut self.held);
                    self.feed_segments(held)?;
                }
                Ok(())
            }
            Mode::Single => {
                if let Some(previous) = self.held.pop() {
                    let shared = self.shared.clone();
                    self.single_put()?.push(&shared, previous)?;
                }
                self.held.push(chunk);
                Ok(())
            }
            Mode::Segmented => self.feed_segments(vec![chunk]),
        }
    }

    fn finish(mut self: Box<Self>) -> Result<String> {
        match self.finish_upload() {
            Ok(()) => {
                tracing::debug!(image = %self.id, segments = self.parts.len(), bytes = self.written, "image stored");
                Ok(location(&self.container, &self.id))
            }
            Err(e) => {
                self.put = None;
                if let Err(cleanup) = self.remove_parts() {
                    tracing::error!(image = %self.id, "could not delete the segments of a failed upload: {}", cleanup.message);
                }
                Err(e)
            }
        }
    }

    fn abort(mut self: Box<Self>) -> Result<()> {
        // Dropping the request cancels it before its body ends: Swift keeps nothing of it.
        self.put = None;
        self.remove_parts()
    }
}

/// What a streamed `PUT` is, so that it can be started again.
struct PutSpec {
    what: String,
    container: String,
    object: String,
    /// The body's length, when known (`Content-Length`); otherwise chunked.
    length: Option<u64>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// A `PUT` whose body is being streamed.
struct Put {
    spec: PutSpec,
    session: Arc<Session>,
    tx: Option<mpsc::Sender<Bytes>>,
    task: JoinHandle<Result<Response>>,
    /// What was sent so far, while it fits in the replay window: sent again after a 401.
    kept: Option<Vec<Bytes>>,
    kept_len: u64,
    retried: bool,
}

impl Put {
    /// Starts the request with `first` as the start of its body; `session` is the one to use
    /// (a renewed one for a retry), else the client's current one.
    fn start(shared: &Shared, spec: PutSpec, first: Vec<Bytes>, session: Option<Arc<Session>>) -> Result<Put> {
        let client = &shared.client;
        let session = match session {
            Some(s) => s,
            None => shared.block_on(client.session())?,
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let kept_len = first.iter().map(|b| b.len() as u64).sum();
        let body = FeedBody { first: first.iter().cloned().collect(), rx, length: spec.length };
        let mut request = client
            .build(&session, Method::PUT, Target::Object(&spec.container, &spec.object))
            .body(reqwest::Body::wrap(body));
        for (name, value) in &spec.headers {
            request = request.header(name, value);
        }
        let what = spec.what.clone();
        let task =
            shared.runtime.spawn(async move { request.send().await.map_err(|e| crate::error::from_reqwest(&what, e)) });
        // What the request starts with is in memory anyway: keep it whatever its size.
        Ok(Put { spec, session, tx: Some(tx), task, kept: Some(first), kept_len, retried: false })
    }

    /// Sends `chunk`. If the request ended before its body did, this is where it shows:
    /// a 401 starts it again with a fresh token, anything else is the upload's error.
    fn push(&mut self, shared: &Shared, chunk: Bytes) -> Result<()> {
        self.keep(shared, &chunk);
        let tx = self.tx.as_ref().expect("the body is open until finish");
        let what = self.spec.what.clone();
        let sent = shared.block_on(shared.client.bounded(&what, async { Ok(tx.send(chunk).await.is_ok()) }));
        match sent {
            Ok(true) => Ok(()),
            // The request is over: Swift answered before reading the whole body.
            Ok(false) => {
                let response = self.answer(shared)?;
                self.restart_after(shared, response)
            }
            Err(e) => Err(Error::new(
                ErrorKind::UNAVAILABLE,
                format!("{what}: Swift stopped reading the upload ({})", e.message),
            )),
        }
    }

    fn keep(&mut self, shared: &Shared, chunk: &Bytes) {
        self.kept_len += chunk.len() as u64;
        if self.kept_len > replay_window(shared) {
            // Swift is reading the body, so it accepted the token (see REPLAY_WINDOW).
            self.kept = None;
        } else if let Some(kept) = &mut self.kept {
            kept.push(chunk.clone());
        }
    }

    /// Ends the body: nothing more will be sent.
    fn close(&mut self) {
        self.tx = None;
    }

    /// Waits for the request's answer.
    fn answer(&mut self, shared: &Shared) -> Result<Response> {
        let what = self.spec.what.clone();
        let task = &mut self.task;
        shared.block_on(shared.client.bounded(&what, async {
            task.await.map_err(|e| Error::backend(format!("{what}: the request's task failed: {e}")))?
        }))
    }

    /// Given an early answer, starts the request again after a 401, or fails with it.
    fn restart_after(&mut self, shared: &Shared, response: Response) -> Result<()> {
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED && !self.retried {
            if let Some(kept) = self.kept.take() {
                let session = shared.block_on(shared.client.renew(&self.session))?;
                let spec = PutSpec {
                    what: self.spec.what.clone(),
                    container: self.spec.container.clone(),
                    object: self.spec.object.clone(),
                    length: self.spec.length,
                    headers: self.spec.headers.clone(),
                };
                let mut again = Put::start(shared, spec, kept, Some(session))?;
                again.retried = true;
                *self = again;
                return Ok(());
            }
        }
        let text = shared.block_on(shared.client.text(&self.spec.what, response)).unwrap_or_default();
        Err(from_status(&self.spec.what, status, &text))
    }

    /// Ends the body and waits for Swift's answer, sending everything again once after a
    /// 401. The answer may still be a refusal; the caller judges it.
    fn finish(mut self, shared: &Shared) -> Result<Response> {
        self.tx = None;
        let response = self.answer(shared)?;
        if response.status() == StatusCode::UNAUTHORIZED && !self.retried && self.kept.is_some() {
            self.restart_after(shared, response)?;
            return self.finish(shared);
        }
        Ok(response)
    }
}

impl Drop for Put {
    fn drop(&mut self) {
        // Cancel the request before the queue's sender goes: a chunked body whose sender
        // closes first would end cleanly, and Swift would keep a truncated object.
        self.task.abort();
    }
}

/// A request body fed from a queue, after the chunks it starts with.
struct FeedBody {
    first: VecDeque<Bytes>,
    rx: mpsc::Receiver<Bytes>,
    length: Option<u64>,
}

impl Body for FeedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if let Some(chunk) = this.first.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        this.rx.poll_recv(cx).map(|c| c.map(|chunk| Ok(Frame::data(chunk))))
    }

    fn size_hint(&self) -> SizeHint {
        self.length.map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}
