//! The s3 store: one object per image, key = image id, written with OpenDAL's S3 writer
//! (one PUT for small images of known size, a multipart upload otherwise), read with
//! streaming, ranged GETs.
//!
//! Everything runs on a small tokio runtime the store owns; the host's calls block on it.
//! Reads are pumped by a task on that runtime into a short channel, so a download costs
//! one blocking receive per host read instead of one `block_on` per network frame.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use opendal::{options::WriteOptions, HttpTransporter, OperationContext, Operator};
use tank_sdk::{Error, ErrorKind, OpenContext, Reader, Result, Store, Writer};
use tokio::{runtime::Runtime, sync::mpsc, task::JoinHandle};
use url::Url;

use crate::{
    admin::{Admin, Failure},
    config::{Config, Settings, UrlFormat, MB},
    error::{Redact, What},
    location::{Location, Remote},
    transport::Timed,
};

/// S3 allows at most this many parts in one multipart upload.
const MAX_PARTS: u64 = 10_000;

/// Bytes a download hands to the host at a time, and how many such chunks may wait.
const READ_CHUNK: usize = 1 << 20;
const READ_DEPTH: usize = 4;

/// The longest `check` waits for the server, so `tank plugins --verify` and the start of
/// `tank api` report a dead server quickly.
const CHECK_LIMIT: Duration = Duration::from_secs(5);

/// Images in a bucket of an S3 server.
pub struct S3Store {
    /// The store's name in the host's configuration, for messages.
    name: String,
    settings: Settings,
    runtime: Arc<Runtime>,
    client: reqwest::Client,
    /// The operator of the configured bucket.
    op: Operator,
    admin: Admin,
    redact: Redact,
    /// Set once the bucket is known to exist (`create_bucket_on_put`).
    bucket_ready: AtomicBool,
}

/// `host:port` of an endpoint: how messages name a server.
fn server(endpoint: &Url) -> String {
    let host = endpoint.host_str().unwrap_or("?");
    match endpoint.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// An OpenDAL operator for `bucket` at `endpoint` with these keys, sending through
/// `client` with the store's deadlines.
fn operator(
    client: &reqwest::Client,
    timeout: Duration,
    endpoint: &Url,
    url_format: UrlFormat,
    region: &str,
    keys: (&str, &str),
    bucket: &str,
) -> std::result::Result<Operator, opendal::Error> {
    let mut builder = opendal::services::S3::default()
        .endpoint(endpoint.as_str().trim_end_matches('/'))
        .region(region)
        .bucket(bucket)
        .access_key_id(keys.0)
        .secret_access_key(keys.1)
        // Only the configured keys: no AWS_* variables, profiles or instance metadata,
        // which would make the store's identity depend on the machine it runs on.
        .disable_config_load()
        .disable_ec2_metadata();
    if url_format == UrlFormat::Virtual {
        builder = builder.enable_virtual_host_style();
    }
    let transport = HttpTransporter::new(Timed::new(client.clone(), timeout));
    Ok(Operator::new(builder)?.with_context(OperationContext::new().with_http_transport(transport)))
}

/// What one request is about, for messages.
struct Target {
    op: Operator,
    bucket: String,
    key: String,
    server: String,
    redact: Redact,
}

impl Target {
    fn what<'a>(&'a self, store: &'a str, verb: &str) -> What<'a> {
        What { store, op: format!("{verb} of {}/{} at {}", self.bucket, self.key, self.server), redact: &self.redact }
    }
}

impl S3Store {
    /// The operator, bucket and key of the location URI `location`.
    fn target(&self, location: &str) -> Result<Target> {
        let location = Location::parse(location)
            .map_err(|e| Error::new(e.kind, format!("store '{}': {}", self.name, e.message)))?;
        self.target_of(location)
    }

    /// The operator, bucket and key of `location`.
    fn target_of(&self, location: Location) -> Result<Target> {
        let s = &self.settings;
        match &location.remote {
            None if location.bucket == s.bucket => Ok(Target {
                op: self.op.clone(),
                server: server(&s.endpoint),
                bucket: location.bucket,
                key: location.key,
                redact: self.redact.clone(),
            }),
            None => self.other_target(&s.endpoint, (&s.access_key, &s.secret_key), location),
            Some(remote) => {
                let Remote { endpoint, access_key, secret_key } = remote.clone();
                self.other_target(&endpoint, (&access_key, &secret_key), location)
            }
        }
    }

    /// A target outside the configured bucket: a bucket the store used before, or a
    /// Glance location's own server and keys.
    fn other_target(&self, endpoint: &Url, keys: (&str, &str), location: Location) -> Result<Target> {
        let s = &self.settings;
        let redact = Redact::new([s.access_key.as_str(), s.secret_key.as_str(), keys.0, keys.1]);
        let server = server(endpoint);
        let op = {
            let _inside = self.runtime.enter();
            operator(&self.client, s.timeout, endpoint, s.url_format, &s.region, keys, &location.bucket)
        }
        .map_err(|e| {
            let what = What {
                store: &self.name,
                op: format!("opening bucket {} at {server}", location.bucket),
                redact: &redact,
            };
            what.opendal(&e)
        })?;
        Ok(Target { op, bucket: location.bucket, key: location.key, server, redact })
    }

    /// What a housekeeping request on the configured bucket is about.
    fn bucket_what(&self, verb: &str) -> What<'_> {
        let s = &self.settings;
        What {
            store: &self.name,
            op: format!("{verb} of bucket {} at {}", s.bucket, server(&s.endpoint)),
            redact: &self.redact,
        }
    }

    /// Makes sure the bucket exists when the store may create it; a no-op otherwise.
    fn ensure_bucket(&self) -> Result<()> {
        if !self.settings.create_bucket_on_put || self.bucket_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let s = &self.settings;
        let exists = self.runtime.block_on(self.admin.bucket_exists(&s.bucket));
        match exists {
            Ok(true) => {}
            Ok(false) => {
                self.runtime
                    .block_on(self.admin.create_bucket(&s.bucket, &s.region))
                    .map_err(|f| self.failure(&self.bucket_what("PUT (create_bucket_on_put)"), f))?;
                tracing::info!(store = %self.name, bucket = %s.bucket, "bucket created (create_bucket_on_put)");
            }
            Err(f) => return Err(self.failure(&self.bucket_what("HEAD"), f)),
        }
        self.bucket_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// A housekeeping request's failure as a store error.
    fn failure(&self, what: &What<'_>, failure: Failure) -> Error {
        match failure {
            Failure::Transport(e) => what.reqwest(e),
            Failure::Status(status, ref code) => {
                let kind = match status.as_u16() {
                    403 => ErrorKind::PERMISSION_DENIED,
                    404 => ErrorKind::NOT_FOUND,
                    s if s >= 500 || s == 429 => ErrorKind::UNAVAILABLE,
                    _ if code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" => {
                        ErrorKind::PERMISSION_DENIED
                    }
                    _ => ErrorKind::BACKEND,
                };
                what.error(kind, &failure)
            }
            Failure::Sign(_) => what.error(ErrorKind::BACKEND, &failure),
        }
    }

    /// The part size for an upload of `size` bytes: the configured one, raised when a
    /// known size would need more than S3's 10,000 parts (as Glance does).
    fn part_size(&self, size: Option<u64>) -> u64 {
        let chunk = self.settings.chunk_size;
        match size {
            Some(size) => chunk.max(size.div_ceil(MAX_PARTS).div_ceil(MB) * MB),
            None => chunk,
        }
    }
}

impl Store for S3Store {
    fn open(ctx: &OpenContext) -> Result<Self> {
        let config: Config = ctx.config()?;
        let mut settings = config.check()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tank-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::backend(format!("cannot start the s3 store's runtime: {e}")))?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(settings.timeout)
            // Data sent but unacknowledged this long means the server is gone, however
            // busy the upload still looks from here.
            .tcp_user_timeout(settings.timeout)
            .tcp_keepalive(Duration::from_secs(15))
            .user_agent(concat!("tank-s3-store/", env!("CARGO_PKG_VERSION")));
        if let Some(file) = settings.cacert.take() {
            let path = ctx.resolve(file);
            let pem = std::fs::read(&path)
                .map_err(|e| Error::invalid_config(format!("cacert: cannot read {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::invalid_config(format!("cacert: {} is not PEM: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(Error::invalid_config(format!("cacert: {} holds no certificate", path.display())));
            }
            // As Glance's s3_store_cacert: the file replaces the system's authorities.
            builder = builder.tls_certs_only(certs);
            settings.cacert = Some(path);
        }
        let _inside = runtime.enter();
        let client =
            builder.build().map_err(|e| Error::invalid_config(format!("cannot build the HTTP client: {e}")))?;
        let s = &settings;
        let redact = Redact::new([s.access_key.as_str(), s.secret_key.as_str()]);
        let op = operator(
            &client,
            s.timeout,
            &s.endpoint,
            s.url_format,
            &s.region,
            (&s.access_key, &s.secret_key),
            &s.bucket,
        )
        .map_err(|e| Error::invalid_config(format!("cannot set up the S3 client: {}", redact.apply(e.message()))))?;
        let admin = Admin::new(
            client.clone(),
            s.endpoint.clone(),
            s.url_format,
            &s.region,
            (&s.access_key, &s.secret_key),
            s.timeout,
        );
        drop(_inside);
        Ok(S3Store {
            name: ctx.name.clone(),
            settings,
            runtime: Arc::new(runtime),
            client,
            op,
            admin,
            redact,
            bucket_ready: AtomicBool::new(false),
        })
    }

    fn add(&self, image_id: &str, size: Option<u64>) -> Result<Box<dyn Writer>> {
        if image_id.is_empty() || !image_id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
            return Err(Error::invalid_input(format!("store '{}': {image_id:?} is not an image id", self.name)));
        }
        self.ensure_bucket()?;
        let target = self.target_of(Location::tank(&self.settings.bucket, image_id))?;
        // Refused here rather than at the end: a multipart upload's completion cannot be
        // made conditional on radosgw (a single PUT is, with If-None-Match below).
        let what = target.what(&self.name, "HEAD");
        match self.runtime.block_on(target.op.stat(&target.key)) {
            Ok(_) => {
                return Err(Error::duplicate(format!(
                    "store '{}': {}/{} already holds data; an image's data is written once",
                    self.name, target.bucket, target.key
                )))
            }
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
            Err(e) => return Err(what.opendal(&e)),
        }
        let single = size.is_some_and(|s| s < self.settings.large_object_size);
        // A single PUT is one "part" as large as the image: OpenDAL buffers it and sends
        // it at close. Anything larger than the buffer goes up as a multipart upload.
        let part = if single { size.unwrap_or(0).max(5 * MB) } else { self.part_size(size) };
        let options = WriteOptions {
            if_not_exists: true,
            concurrent: self.settings.thread_pools,
            chunk: Some(part as usize),
            ..Default::default()
        };
        let writer = self
            .runtime
            .block_on(target.op.writer_options(&target.key, options))
            .map_err(|e| target.what(&self.name, "starting the upload").opendal(&e))?;
        Ok(Box::new(S3Writer {
            writer: Some(writer),
            runtime: self.runtime.clone(),
            store: self.name.clone(),
            location: Location::tank(&target.bucket, &target.key),
            server: target.server.clone(),
            redact: target.redact.clone(),
            written: 0,
            limit: part.saturating_mul(MAX_PARTS),
        }))
    }

    fn get(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Box<dyn Reader>> {
        let target = self.target(location)?;
        let size = self
            .runtime
            .block_on(target.op.stat(&target.key))
            .map_err(|e| target.what(&self.name, "HEAD").opendal(&e))?
            .content_length();
        let start = offset.min(size);
        let end = length.map_or(size, |l| start.saturating_add(l).min(size));
        if start == end {
            return Ok(Box::new(std::io::empty()));
        }
        let what = target.what(&self.name, "GET").to_string();
        let (tx, rx) = mpsc::channel(READ_DEPTH);
        let op = target.op.clone();
        let key = target.key.clone();
        let redact = target.redact.clone();
        let store = self.name.clone();
        let verb = format!("GET of {}/{} at {}", target.bucket, target.key, target.server);
        let pump = self.runtime.spawn(async move {
            let what = What { store: &store, op: verb, redact: &redact };
            let stream = match op.reader(&key).await {
                Ok(reader) => reader.into_stream(start..end).await,
                Err(e) => Err(e),
            };
            let mut stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(what.opendal(&e))).await;
                    return;
                }
            };
            // Network frames are small; the host reads 1 MiB at a time, so they are
            // gathered to that size before crossing to the host's thread.
            let mut pending = BytesMut::with_capacity(READ_CHUNK);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(buffer) => {
                        for bytes in buffer {
                            pending.extend_from_slice(&bytes);
                            if pending.len() >= READ_CHUNK && tx.send(Ok(pending.split().freeze())).await.is_err() {
                                return; // The host stopped reading.
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(what.opendal(&e))).await;
                        return;
                    }
                }
            }
            if !pending.is_empty() {
                let _ = tx.send(Ok(pending.freeze())).await;
            }
        });
        Ok(Box::new(S3Reader { rx, pump, pending: Bytes::new(), left: end - start, what }))
    }

    fn size(&self, location: &str) -> Result<u64> {
        let target = self.target(location)?;
        let meta = self
            .runtime
            .block_on(target.op.stat(&target.key))
            .map_err(|e| target.what(&self.name, "HEAD").opendal(&e))?;
        Ok(meta.content_length())
    }

    fn delete(&self, location: &str) -> Result<()> {
        let target = self.target(location)?;
        // S3 answers a DELETE of a missing key with success; the store must say "not found".
        self.runtime.block_on(target.op.stat(&target.key)).map_err(|e| target.what(&self.name, "HEAD").opendal(&e))?;
        self.runtime.block_on(target.op.delete(&target.key)).map_err(|e| target.what(&self.name, "DELETE").opendal(&e))
    }

    fn discard(&self, image_id: &str) -> Result<()> {
        // What a crash between add and finish leaves is a multipart upload of the image's
        // key; a finished object is left alone.
        let bucket = &self.settings.bucket;
        let uploads = match self.runtime.block_on(self.admin.uploads(bucket, image_id)) {
            Ok(uploads) => uploads,
            // No bucket, no uploads.
            Err(Failure::Status(status, _)) if status.as_u16() == 404 => return Ok(()),
            Err(f) => return Err(self.failure(&self.bucket_what("listing the multipart uploads"), f)),
        };
        for upload in uploads.iter().filter(|u| u.key == image_id) {
            self.runtime.block_on(self.admin.abort(bucket, upload)).map_err(|f| {
                self.failure(&self.bucket_what(&format!("aborting the multipart upload of {}", upload.key)), f)
            })?;
            tracing::info!(store = %self.name, image = %image_id, "aborted a multipart upload an interrupted upload left");
        }
        Ok(())
    }

    fn check(&self) -> Result<()> {
        let s = &self.settings;
        let what = self.bucket_what("HEAD");
        let limit = CHECK_LIMIT.min(s.timeout);
        let answer = self
            .runtime
            .block_on(async { tokio::time::timeout(limit, self.admin.bucket_exists(&s.bucket)).await })
            .map_err(|_| what.timed_out(limit.as_secs()))?;
        match answer {
            Ok(true) => Ok(()),
            Ok(false) if s.create_bucket_on_put => Ok(()),
            Ok(false) => Err(what.error(
                ErrorKind::NOT_FOUND,
                format!("bucket {} does not exist; create it, or set create_bucket_on_put = true", s.bucket),
            )),
            Err(f) => Err(self.failure(&what, f)),
        }
    }
}

/// One upload: OpenDAL's writer on the store's runtime.
struct S3Writer {
    /// `None` once finished or aborted.
    writer: Option<opendal::Writer>,
    runtime: Arc<Runtime>,
    store: String,
    location: Location,
    server: String,
    redact: Redact,
    written: u64,
    /// The most bytes the parts allow (10,000 parts of the part size).
    limit: u64,
}

impl S3Writer {
    fn what(&self, verb: &str) -> What<'_> {
        What {
            store: &self.store,
            op: format!("{verb} of {}/{} at {}", self.location.bucket, self.location.key, self.server),
            redact: &self.redact,
        }
    }

    /// Aborts the multipart upload, if one was started.
    fn abort_upload(&mut self) -> Result<()> {
        let Some(mut writer) = self.writer.take() else { return Ok(()) };
        self.runtime.block_on(writer.abort()).map_err(|e| self.what("aborting the upload").opendal(&e))
    }
}

impl Writer for S3Writer {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        if self.written + data.len() as u64 > self.limit {
            let what = self.what("PUT");
            return Err(what.error(
                ErrorKind::STORAGE_FULL,
                format!(
                    "the image is larger than {} bytes, S3's 10,000 parts of this upload's part size; \
                     declare the size (x-image-meta-size) or raise large_object_chunk_size",
                    self.limit
                ),
            ));
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(Error::backend("the upload was already finished or aborted"));
        };
        // The host lends `data` for this call only; OpenDAL keeps what it buffers.
        let result = self.runtime.block_on(writer.write(Bytes::copy_from_slice(data)));
        result.map_err(|e| self.what("PUT").opendal(&e))?;
        self.written += data.len() as u64;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<String> {
        let Some(mut writer) = self.writer.take() else {
            return Err(Error::backend("the upload was already finished or aborted"));
        };
        match self.runtime.block_on(writer.close()) {
            Ok(_) => Ok(self.location.uri()),
            Err(e) => {
                let error = self.what("completing the upload").opendal(&e);
                // The host does not abort after a failed finish: do it here, so that no
                // multipart upload outlives the failure.
                self.writer = Some(writer);
                if let Err(a) = self.abort_upload() {
                    tracing::warn!(store = %self.store, "{}", a.message);
                }
                Err(error)
            }
        }
    }

    fn abort(mut self: Box<Self>) -> Result<()> {
        self.abort_upload()
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        if let Err(e) = self.abort_upload() {
            tracing::warn!(store = %self.store, "{}", e.message);
        }
    }
}

/// One download: the pump task's chunks, handed out as the host reads.
struct S3Reader {
    rx: mpsc::Receiver<Result<Bytes>>,
    pump: JoinHandle<()>,
    pending: Bytes,
    /// Bytes still due; the stream ending before is an error, never a short image.
    left: u64,
    what: String,
}

impl Reader for S3Reader {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pending.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.pending = chunk,
                Some(Err(e)) => return Err(e),
                None if self.left == 0 => return Ok(0),
                None => {
                    return Err(Error::new(
                        ErrorKind::UNAVAILABLE,
                        format!("{} failed: the object ended {} bytes early", self.what, self.left),
                    ))
                }
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

impl Drop for S3Reader {
    fn drop(&mut self) {
        // A client that goes away mid-download must not keep the GET running.
        self.pump.abort();
    }
}
