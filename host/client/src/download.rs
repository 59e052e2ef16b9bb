//! Image data coming down: streamed chunk by chunk, counted and hashed on the way, and
//! checked against the size and checksum the server declared before it is called good.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use md5::{Digest, Md5};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::{Error, ErrorKind, Image, Result};

/// Writes to files and standard output go through a buffer of this size, so that a large
/// download costs a few thousand writes rather than one per network frame.
const WRITE_BUFFER: usize = 1024 * 1024;

/// A download in progress: the image's metadata (from the answer's headers) and its data,
/// read with [`chunk`](Download::chunk), [`write_to`](Download::write_to) or
/// [`save`](Download::save).
///
/// Only the chunk being handled is in memory. The MD5 is computed as the data arrives; when
/// the data ends, its size and MD5 must match the image's `size` and `checksum`, or the
/// last call fails with [`ErrorKind::Integrity`]. Data taken before that point is not
/// known to be good yet.
#[derive(Debug)]
pub struct Download {
    image: Image,
    body: Incoming,
    md5: Md5,
    received: u64,
    finished: bool,
}

impl Download {
    pub(crate) fn new(image: Image, body: Incoming) -> Download {
        Download { image, body, md5: Md5::new(), received: 0, finished: false }
    }

    /// The image being downloaded.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The next chunk of data, or `None` once all of it has arrived and been checked.
    ///
    /// # Errors
    /// [`ErrorKind::Network`] if the connection breaks; [`ErrorKind::Integrity`] if the
    /// data is longer or shorter than the image's size or its MD5 is not the image's
    /// checksum.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        if self.finished {
            return Ok(None);
        }
        loop {
            match self.body.frame().await {
                None => {
                    self.finished = true;
                    self.verify()?;
                    return Ok(None);
                }
                Some(Err(e)) => {
                    let message = format!(
                        "the connection broke after {} of {} bytes of image {}",
                        self.received, self.image.size, self.image.id
                    );
                    return Err(Error::new(ErrorKind::Network, message).with_source(e));
                }
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    self.received += data.len() as u64;
                    if self.received > self.image.size {
                        self.finished = true;
                        return Err(Error::new(
                            ErrorKind::Integrity,
                            format!("image {} sent more than its size, {} bytes", self.image.id, self.image.size),
                        ));
                    }
                    self.md5.update(&data);
                    return Ok(Some(data));
                }
            }
        }
    }

    fn verify(&mut self) -> Result<()> {
        let id = &self.image.id;
        if self.received != self.image.size {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!("image {id} arrived with {} bytes, but its size is {}", self.received, self.image.size),
            ));
        }
        let got = hex::encode(std::mem::take(&mut self.md5).finalize());
        match &self.image.checksum {
            Some(expected) if !expected.eq_ignore_ascii_case(&got) => Err(Error::new(
                ErrorKind::Integrity,
                format!("image {id} arrived with MD5 {got}, but its checksum is {expected}: the copy is corrupt"),
            )),
            _ => Ok(()),
        }
    }

    /// Copies all the data into `out`, calling `progress` with the bytes received so far
    /// after every chunk, and returns the image once size and checksum have been checked.
    ///
    /// On an error, `out` has received part of the data: throw it away.
    pub async fn write_to<W: AsyncWrite + Unpin>(mut self, out: W, mut progress: impl FnMut(u64)) -> Result<Image> {
        let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, out);
        let io =
            |e: std::io::Error| Error::new(ErrorKind::Io, format!("cannot write the image data: {e}")).with_source(e);
        while let Some(chunk) = self.chunk().await? {
            out.write_all(&chunk).await.map_err(io)?;
            progress(self.received);
        }
        out.flush().await.map_err(io)?;
        Ok(self.image)
    }

    /// Saves the data as the file `path`. It is written to a temporary file beside `path`
    /// and renamed to `path` only once its size and checksum have been checked and it is
    /// on disk, so `path` never holds a partial or corrupt image; on failure the temporary
    /// file is removed.
    pub async fn save(self, path: impl AsRef<Path>, progress: impl FnMut(u64)) -> Result<Image> {
        let path = path.as_ref();
        let temp = temp_beside(path);
        let io = |what: &str, e: std::io::Error| {
            Error::new(ErrorKind::Io, format!("cannot {what} {}: {e}", temp.display())).with_source(e)
        };
        let file = tokio::fs::File::create(&temp).await.map_err(|e| io("create", e))?;
        let result = async {
            let mut file = file;
            let image = self.write_to(&mut file, progress).await?;
            file.sync_all().await.map_err(|e| io("sync", e))?;
            tokio::fs::rename(&temp, path).await.map_err(|e| {
                Error::new(ErrorKind::Io, format!("cannot rename {} to {}: {e}", temp.display(), path.display()))
                    .with_source(e)
            })?;
            Ok(image)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result
    }
}

/// `<dir>/.<name>.part-<pid>`: in the same directory, so the final rename stays on one
/// file system and is atomic.
fn temp_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
    path.with_file_name(format!(".{name}.part-{}", std::process::id()))
}
