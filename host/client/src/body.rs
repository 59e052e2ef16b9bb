//! Request bodies: nothing, a small JSON document, or image data streamed from any
//! `AsyncRead` in bounded chunks.

use std::{
    path::Path,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};

use crate::{Error, ErrorKind, Result};

/// How much data one read asks for: large enough that the per-chunk costs vanish, small
/// enough that memory stays flat whatever the image's size.
const CHUNK: usize = 256 * 1024;

/// A progress callback: called with the number of bytes moved so far.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// Image data to upload, read as it is sent: from a file, standard input, a socket, or
/// any other [`AsyncRead`]. Only one chunk is held in memory at a time.
///
/// With a known size the request carries `Content-Length` and a reader that ends early
/// or late fails the upload; with an unknown size the data is sent chunked.
///
/// ```no_run
/// # async fn f() -> tank_client::Result<()> {
/// use tank_client::Upload;
///
/// let from_file = Upload::file("cirros.img").await?;
/// let from_stdin = Upload::reader(tokio::io::stdin(), None);
/// let counted = from_file.on_progress(|sent| eprintln!("{sent} bytes sent"));
/// # let _ = (from_stdin, counted); Ok(()) }
/// ```
pub struct Upload {
    reader: Pin<Box<dyn AsyncRead + Send>>,
    size: Option<u64>,
    progress: Option<Progress>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload").field("size", &self.size).finish_non_exhaustive()
    }
}

impl Upload {
    /// Data from `reader`; `size` if it is known in advance.
    pub fn reader(reader: impl AsyncRead + Send + 'static, size: Option<u64>) -> Upload {
        Upload { reader: Box::pin(reader), size, progress: None }
    }

    /// Data from the file at `path`, with its size.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when the file cannot be opened or is a directory. A pipe or
    /// device is read to its end, chunked.
    pub async fn file(path: impl AsRef<Path>) -> Result<Upload> {
        let path = path.as_ref();
        let io = |e: std::io::Error| {
            Error::new(ErrorKind::Io, format!("cannot read {}: {e}", path.display())).with_source(e)
        };
        let file = tokio::fs::File::open(path).await.map_err(io)?;
        let meta = file.metadata().await.map_err(io)?;
        if meta.is_dir() {
            return Err(Error::new(ErrorKind::Io, format!("cannot read {}: it is a directory", path.display())));
        }
        // A pipe or device has no size; send it chunked.
        let size = meta.is_file().then_some(meta.len());
        Ok(Upload::reader(file, size))
    }

    /// Data from bytes already in memory.
    pub fn bytes(data: impl Into<Bytes>) -> Upload {
        let data = data.into();
        let size = data.len() as u64;
        Upload::reader(std::io::Cursor::new(data), Some(size))
    }

    /// Calls `f` with the number of bytes read so far, after every chunk.
    pub fn on_progress(mut self, f: impl Fn(u64) + Send + Sync + 'static) -> Upload {
        self.progress = Some(Arc::new(f));
        self
    }

    /// The size, when known.
    pub fn size(&self) -> Option<u64> {
        self.size
    }
}

/// The body of every request the client sends.
pub(crate) enum RequestBody {
    /// No body.
    Empty,
    /// A complete body (JSON for member changes).
    Full(Option<Bytes>),
    /// Image data.
    Data(DataBody),
}

/// Image data being sent, and the slot where a local read failure is kept so that the
/// caller can tell it from a network failure.
pub(crate) struct DataBody {
    upload: Upload,
    buf: Vec<u8>,
    sent: u64,
    done: bool,
    failure: Arc<Mutex<Option<Error>>>,
}

impl DataBody {
    pub(crate) fn new(upload: Upload) -> (DataBody, Arc<Mutex<Option<Error>>>) {
        let failure = Arc::new(Mutex::new(None));
        (DataBody { upload, buf: vec![0; CHUNK], sent: 0, done: false, failure: failure.clone() }, failure)
    }

    fn fail(&mut self, e: Error) -> Poll<Option<std::result::Result<Frame<Bytes>, std::io::Error>>> {
        let text = e.message().to_owned();
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        self.done = true;
        Poll::Ready(Some(Err(std::io::Error::other(text))))
    }
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let data = match this {
            RequestBody::Empty => return Poll::Ready(None),
            RequestBody::Full(bytes) => return Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            RequestBody::Data(data) => data,
        };
        if data.done {
            return Poll::Ready(None);
        }
        let mut buf = ReadBuf::new(&mut data.buf);
        match data.upload.reader.as_mut().poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                let message = format!("reading the data to upload failed after {} bytes: {e}", data.sent);
                data.fail(Error::new(ErrorKind::Io, message).with_source(e))
            }
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                let chunk = Bytes::copy_from_slice(buf.filled());
                data.sent += n as u64;
                let declared = data.upload.size;
                if n == 0 {
                    data.done = true;
                    return match declared {
                        Some(size) if size != data.sent => data.fail(Error::new(
                            ErrorKind::Io,
                            format!("the data to upload ended after {} bytes, but its size is {size}", data.sent),
                        )),
                        _ => Poll::Ready(None),
                    };
                }
                if let Some(size) = declared.filter(|&s| data.sent > s) {
                    return data.fail(Error::new(
                        ErrorKind::Io,
                        format!("the data to upload is longer than its size, {size} bytes (did the file grow?)"),
                    ));
                }
                if let Some(progress) = &data.upload.progress {
                    progress(data.sent);
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Empty => true,
            RequestBody::Full(b) => b.is_none(),
            RequestBody::Data(d) => d.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Empty => SizeHint::with_exact(0),
            RequestBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            // An empty upload goes chunked: `Content-Length: 0` would tell the server there
            // is no body at all, and it would reserve the image instead of storing 0 bytes.
            RequestBody::Data(d) => match d.upload.size {
                Some(size) if size > 0 => SizeHint::with_exact(size - d.sent.min(size)),
                _ => SizeHint::default(),
            },
        }
    }
}
