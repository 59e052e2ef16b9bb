//! Transfers through a running `tank api` that never hold an image whole, and what a
//! client or the operator sees of them: for the suites that move large images (1 GiB) and
//! check memory stays bounded.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use md5::{Digest, Md5};
use tank_sdk::conformance::pattern;

use crate::{ChannelBody, Reply, Server};

/// Everything `r` reads, to its end, in 1 MiB calls.
pub fn read_all(mut r: Box<dyn tank_sdk::Reader>) -> Vec<u8> {
    let (mut out, mut buf) = (Vec::new(), vec![0u8; 1 << 20]);
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Everything a client saw of `reply`: status line, headers and body.
pub fn seen(reply: &Reply) -> String {
    let headers: Vec<String> =
        reply.headers.iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or_default())).collect();
    format!("{} {}\n{}", reply.status, headers.join("\n"), String::from_utf8_lossy(&reply.body))
}

/// Uploads `size` bytes made chunk by chunk (never held whole) as a chunked body with
/// `headers`; returns the reply and the data's MD5.
pub fn stream_upload(s: &Server, size: u64, headers: &[(&str, &str)]) -> (Reply, String) {
    let mut req = http::Request::post(s.url("/v1/images")).header("content-type", "application/octet-stream");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let (tx, body) = ChannelBody::new(4);
    let req = req.body(body).unwrap();
    s.block_on(async move {
        let producer = tokio::spawn(async move {
            let mut md5 = Md5::new();
            let (mut sent, mut n) = (0u64, 0u64);
            while sent < size {
                let len = (size - sent).min(1 << 20) as usize;
                let chunk = Bytes::from(pattern(len, 1000 + n));
                md5.update(&chunk);
                if tx.send(chunk).await.is_err() {
                    break; // The server stopped reading: its answer says why.
                }
                sent += len as u64;
                n += 1;
            }
            hex::encode(md5.finalize())
        });
        let client = Client::builder(TokioExecutor::new()).build_http();
        let resp = client.request(req).await.expect("request reaches the server");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body arrives").to_bytes();
        let md5 = producer.await.unwrap();
        (Reply { status: parts.status.as_u16(), headers: parts.headers, body }, md5)
    })
}

/// Downloads `path` frame by frame (never held whole); returns status, length and MD5.
pub fn stream_download(s: &Server, path: &str) -> (u16, u64, String) {
    let url = s.url(path);
    s.block_on(async move {
        let client = Client::builder(TokioExecutor::new()).build_http::<http_body_util::Empty<Bytes>>();
        let resp = client.get(url.parse().unwrap()).await.expect("request reaches the server");
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let (mut md5, mut len) = (Md5::new(), 0u64);
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("the download completes").into_data() {
                md5.update(&data);
                len += data.len() as u64;
            }
        }
        (status, len, hex::encode(md5.finalize()))
    })
}

/// The most memory process `pid` has held (VmHWM), in bytes.
pub fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kb * 1024
}
