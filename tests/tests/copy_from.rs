//! `x-glance-api-copy-from`: the server fetches an image from an http URL through the
//! http store, under `[import_filtering_opts]`, from a real http server on loopback.

use std::{convert::Infallible, net::SocketAddr};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, Request, Response};
use hyper_util::rt::TokioIo;
use tank_tests::{data, md5_hex, Deployment, Server};

/// Starts a source server on a free loopback port, on a thread of its own for the rest of
/// the test: `/image` serves `image`, `/moved` redirects there, `/away` redirects to
/// `away`, anything else is 404.
fn source(image: Bytes, away: String) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (image, away) = (image.clone(), away.clone());
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (image, away) = (image.clone(), away.clone());
                    async move {
                        let redirect = |to: &str| {
                            Response::builder()
                                .status(302)
                                .header("location", to)
                                .body(Full::new(Bytes::new()))
                                .unwrap()
                        };
                        Ok::<_, Infallible>(match req.uri().path() {
                            "/image" => Response::new(Full::new(image)),
                            "/moved" => redirect("/image"),
                            "/away" => redirect(&away),
                            _ => Response::builder().status(404).body(Full::new(Bytes::new())).unwrap(),
                        })
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
                );
            }
        });
    });
    addr
}

fn send(s: &Server, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let r = s.send(method, path, headers, Bytes::new());
    (r.status, r.json())
}

fn copy_from(s: &Server, url: &str) -> (u16, serde_json::Value) {
    send(s, "POST", "/v1/images", &[("x-glance-api-copy-from", url), ("x-image-meta-name", "copied")])
}

/// A deployment with the http store, and `rules` as its `[import_filtering_opts]`.
fn deployment(rules: &str) -> Deployment {
    let d = Deployment::new();
    d.install("http");
    d.config(&format!("[import_filtering_opts]\n{rules}\n[store.http]\n"));
    d
}

fn message(reply: &serde_json::Value) -> String {
    reply["error"]["message"].as_str().unwrap_or_default().to_owned()
}

fn image_count(s: &Server) -> usize {
    let all = s.get("/v1/images/detail?is_public=none&changes-since=2000-01-01T00:00:00").json();
    all["images"].as_array().unwrap().len()
}

#[test]
fn copy_from_fetches_allowed_urls_and_follows_checked_redirects() {
    let image = Bytes::from(data(3 << 20, 4));
    let other = source(Bytes::from_static(b"elsewhere"), String::new());
    let src = source(image.clone(), format!("http://{other}/image"));
    let d = deployment(&format!("allowed_hosts = [\"127.0.0.1\"]\nallowed_ports = [{}]", src.port()));
    let s = d.start();

    let (status, reply) = copy_from(&s, &format!("http://{src}/image"));
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["image"]["status"], "active");
    assert_eq!(reply["image"]["size"], image.len() as u64);
    assert_eq!(reply["image"]["checksum"], md5_hex(&image));
    let id = reply["image"]["id"].as_str().unwrap();
    assert!(s.get(&format!("/v1/images/{id}")).body == image, "the copy is byte-identical");
    // The other header name, and a redirect within the allowed host and port.
    let (status, reply) = send(&s, "POST", "/v1/images", &[("x-tank-api-copy-from", &format!("http://{src}/moved"))]);
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["image"]["checksum"], md5_hex(&image));
    assert_eq!(image_count(&s), 2);

    // Refused before anything is created: a redirect to a port that is not allowed, a
    // missing source, a body together with copy-from.
    let (status, reply) = copy_from(&s, &format!("http://{src}/away"));
    assert_eq!(status, 400, "{reply}");
    assert!(message(&reply).contains(&format!("port {} is not allowed", other.port())), "{reply}");
    let (status, reply) = copy_from(&s, &format!("http://{src}/missing"));
    assert_eq!(status, 400);
    assert!(message(&reply).contains("404"), "{reply}");
    let both = s.send(
        "POST",
        "/v1/images",
        &[("x-glance-api-copy-from", &format!("http://{src}/image")), ("content-type", "application/octet-stream")],
        Bytes::from_static(b"data"),
    );
    assert_eq!(both.status, 400);
    assert_eq!(image_count(&s), 2, "nothing was created by the refused requests");

    // A reserved image gets its data by copy-from on PUT.
    let reserved = s.send("POST", "/v1/images", &[("x-image-meta-name", "later")], Bytes::new()).json();
    let id = reserved["image"]["id"].as_str().unwrap();
    let (status, reply) =
        send(&s, "PUT", &format!("/v1/images/{id}"), &[("x-glance-api-copy-from", &format!("http://{src}/image"))]);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["image"]["status"], "active");
    assert_eq!(reply["image"]["checksum"], md5_hex(&image));
}

#[test]
fn internal_addresses_are_refused_in_every_spelling_unless_allowed() {
    let src = source(Bytes::from_static(b"secret"), String::new());
    // The port is allowed, the host is not: loopback is internal.
    let d = deployment(&format!("allowed_ports = [{}]", src.port()));
    let s = d.start();
    let port = src.port();
    for host in ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "[::ffff:127.0.0.1]", "localhost"] {
        let (status, reply) = copy_from(&s, &format!("http://{host}:{port}/image"));
        assert_eq!(status, 400, "{host}: {reply}");
        assert!(message(&reply).contains("internal address"), "{host}: {reply}");
    }
    let (status, reply) = copy_from(&s, &format!("http://user:password@127.0.0.1:{port}/image"));
    assert_eq!(status, 400);
    assert!(!message(&reply).contains("password"), "credentials are never echoed: {reply}");
    let (status, reply) = copy_from(&s, "ftp://127.0.0.1/image");
    assert_eq!(status, 400);
    assert!(message(&reply).contains("ftp:// URLs are not accepted"), "{reply}");
    // The fs store's locations are Tank's own, never a source.
    let (status, reply) = copy_from(&s, "file:///etc/passwd");
    assert_eq!(status, 400);
    assert!(message(&reply).contains("file:// URLs are not accepted"), "{reply}");
    assert_eq!(image_count(&s), 0);
    assert!(d.data_files().is_empty());
}
