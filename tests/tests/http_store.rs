//! The http store against a real nginx on loopback: images registered at http and https
//! locations (`x-image-meta-location`) are served from there, redirects are followed up to
//! the limit and each is checked, certificates are verified, a server that closes early
//! fails the download, and locations Tank does not read are refused.

use std::{
    io::{Read, Write},
    net::TcpListener,
    process::Command,
};

use bytes::Bytes;
use serde_json::Value;
use tank_tests::{closed_port, data, md5_hex, nginx::Nginx, Deployment, Server};

/// A deployment with the http store, allowed to fetch from `nginx`'s ports (and `extra`
/// ports) on loopback; `store` is more of the `[store.http]` table.
fn deployment(ports: &[u16], store: &str) -> Deployment {
    let d = Deployment::new();
    d.install("http");
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    d.config(&format!(
        "[import_filtering_opts]\nallowed_hosts = [\"127.0.0.1\"]\nallowed_ports = [{}]\n[store.http]\n{store}\n",
        ports.join(", ")
    ));
    d
}

fn register(s: &Server, url: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut headers = vec![("x-image-meta-location", url), ("x-image-meta-name", "registered")];
    headers.extend_from_slice(extra);
    let r = s.send("POST", "/v1/images", &headers, Bytes::new());
    (r.status, r.json())
}

fn message(reply: &Value) -> &str {
    reply["error"]["message"].as_str().unwrap_or_default()
}

fn all_images(s: &Server) -> Vec<Value> {
    s.get("/v1/images/detail?is_public=none").json()["images"].as_array().unwrap().clone()
}

#[test]
fn images_at_http_and_https_locations_are_served_from_there() {
    let nginx = Nginx::start("");
    let big = data(48 << 20, 7);
    std::fs::write(nginx.www().join("big.img"), &big).unwrap();
    let d = deployment(&[nginx.port, nginx.tls_port], &format!("https_ca_certificates_file = {:?}", nginx.ca()));
    let s = d.start();

    let (status, reply) = register(&s, &nginx.url("/big.img"), &[("x-image-meta-disk_format", "raw")]);
    assert_eq!(status, 201, "{reply}");
    let image = &reply["image"];
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], big.len() as u64, "the size comes from the server");
    assert!(image["checksum"].is_null(), "Tank never read the data, so it claims no checksum: {image}");
    let id = image["id"].as_str().unwrap().to_owned();

    let got = s.get(&format!("/v1/images/{id}"));
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-length"), Some(big.len().to_string().as_str()));
    assert_eq!(md5_hex(&got.body), md5_hex(&big), "the download is nginx's file");
    // The location is never shown.
    let head = s.head(&format!("/v1/images/{id}"));
    for (name, value) in &head.headers {
        let value = value.to_str().unwrap_or_default();
        assert!(!value.contains(&nginx.port.to_string()), "{name} shows the location: {value}");
    }
    assert!(!s.get("/v1/images/detail?is_public=none").body.windows(9).any(|w| w == b"127.0.0.1"));

    // https, with the certificate checked against the configured authority.
    std::fs::write(nginx.www().join("small.img"), b"over tls").unwrap();
    let (status, reply) = register(&s, &nginx.tls_url("/small.img"), &[]);
    assert_eq!(status, 201, "{reply}");
    let tls_id = reply["image"]["id"].as_str().unwrap().to_owned();
    assert_eq!(&s.get(&format!("/v1/images/{tls_id}")).body[..], b"over tls");

    // A declared size must match the server's.
    let (status, reply) = register(&s, &nginx.url("/big.img"), &[("x-image-meta-size", "5")]);
    assert_eq!(status, 400, "{reply}");
    assert!(message(&reply).contains("x-image-meta-size says 5"), "{reply}");

    // A reserved image gets its location on PUT.
    let reserved = s.send("POST", "/v1/images", &[("x-image-meta-name", "later")], Bytes::new()).json();
    let later = reserved["image"]["id"].as_str().unwrap();
    let r = s.send(
        "PUT",
        &format!("/v1/images/{later}"),
        &[("x-image-meta-location", &nginx.tls_url("/small.img"))],
        Bytes::new(),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["image"]["status"], "active");
    assert_eq!(r.json()["image"]["size"], 8);

    // Deleting the image leaves the data where it is: it is not Tank's.
    assert_eq!(s.send("DELETE", &format!("/v1/images/{id}"), &[], Bytes::new()).status, 200);
    assert_eq!(s.get(&format!("/v1/images/{id}")).status, 404);
    assert!(nginx.www().join("big.img").exists());
    assert!(d.data_files().is_empty(), "nothing was ever written to the fs store");
}

#[test]
fn redirects_are_followed_up_to_the_limit_and_each_is_checked() {
    // /r1 → … → /r5 → /small.img is five redirects (the default limit); /r0 adds a sixth.
    let mut hops: String = (0..5).map(|i| format!("location = /r{i} {{ return 302 /r{}; }}\n", i + 1)).collect();
    hops.push_str("location = /r5 { return 302 /small.img; }\n");
    let outside = TcpListener::bind("127.0.0.1:0").unwrap();
    let outside_port = outside.local_addr().unwrap().port();
    hops.push_str(&format!("location = /away {{ return 302 http://127.0.0.1:{outside_port}/small.img; }}\n"));
    let nginx = Nginx::start(&hops);
    std::fs::write(nginx.www().join("small.img"), b"five hops away").unwrap();
    let d = deployment(&[nginx.port], "");
    let s = d.start();

    let (status, reply) = register(&s, &nginx.url("/r1"), &[]);
    assert_eq!(status, 201, "{reply}");
    let id = reply["image"]["id"].as_str().unwrap();
    assert_eq!(&s.get(&format!("/v1/images/{id}")).body[..], b"five hops away");

    let (status, reply) = register(&s, &nginx.url("/r0"), &[]);
    assert_eq!(status, 400, "{reply}");
    assert!(message(&reply).contains("more than 5 redirects"), "{reply}");
    let (status, reply) = register(&s, &nginx.url("/away"), &[]);
    assert_eq!(status, 400, "{reply}");
    assert!(message(&reply).contains(&format!("port {outside_port} is not allowed")), "{reply}");
    assert_eq!(all_images(&s).len(), 1, "refused locations create nothing");
}

#[test]
fn an_https_server_is_refused_unless_its_certificate_is_trusted() {
    let nginx = Nginx::start("");
    std::fs::write(nginx.www().join("small.img"), b"over tls").unwrap();
    // No https_ca_certificates_file: the system's authorities do not know the test's.
    let d = deployment(&[nginx.tls_port], "");
    let s = d.start();
    let (status, reply) = register(&s, &nginx.tls_url("/small.img"), &[]);
    assert_eq!(status, 503, "{reply}");
    assert!(message(&reply).to_lowercase().contains("certificate"), "{reply}");
    assert!(all_images(&s).is_empty());
}

#[test]
fn locations_tank_does_not_read_are_refused_and_create_nothing() {
    let nginx = Nginx::start("");
    let closed_port = closed_port();
    let closed = closed_port.port;
    let d = deployment(&[nginx.port, closed], "");
    let s = d.start();
    for (url, why) in [
        ("file:///etc/passwd".to_owned(), "file:// URLs are not accepted"),
        ("filesystem:///var/lib/tank/x".to_owned(), "filesystem:// URLs are not accepted"),
        ("gopher://127.0.0.1/x".to_owned(), "gopher:// URLs are not accepted"),
        (nginx.url("/missing.img"), "404"),
        ("http://127.0.0.1:1/x".to_owned(), "port 1 is not allowed"),
        ("http://10.0.0.1/x".to_owned(), "not allowed"),
    ] {
        let (status, reply) = register(&s, &url, &[]);
        assert_eq!(status, 400, "{url}: {reply}");
        assert!(message(&reply).contains(why), "{url}: {reply}");
    }
    // An allowed server that is down: 503 at once, naming the server.
    let (status, reply) = register(&s, &format!("http://127.0.0.1:{closed}/x"), &[]);
    assert_eq!(status, 503, "{reply}");
    assert!(message(&reply).contains(&format!("(store http): HEAD to 127.0.0.1:{closed}")), "{reply}");
    // The http store only reads.
    let r = s.upload(b"data", &[("x-image-meta-store", "http")]);
    assert_eq!(r.status, 400);
    assert!(message(&r.json()).contains("read-only"), "{:?}", r.body);
    // A location and a body at once is ambiguous.
    let both = s.upload(b"data", &[("x-image-meta-location", &nginx.url("/x"))]);
    assert_eq!(both.status, 400);
    assert!(all_images(&s).iter().all(|i| i["status"] != "active"), "nothing became active");
}

/// Serves one image of `claimed` bytes (its HEAD says so) whose GETs send only `sent`
/// bytes and then close the connection.
fn short_server(claimed: usize, sent: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let n = stream.read(&mut request).unwrap_or(0);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {claimed}\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(head.as_bytes());
            if request[..n].starts_with(b"GET") {
                let _ = stream.write_all(&data(sent, 3));
            }
            // Dropping the stream closes the connection short of the claimed length.
        }
    });
    port
}

#[test]
fn a_server_that_closes_early_fails_the_transfer_never_completes_it_short() {
    let port = short_server(1 << 20, 100_000);
    let d = deployment(&[port], "");
    let s = d.start();
    let url = format!("http://127.0.0.1:{port}/image");
    let (status, reply) = register(&s, &url, &[]);
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["image"]["size"], 1 << 20);
    let id = reply["image"]["id"].as_str().unwrap();

    // curl, as a user would download: it must fail, not save a short file as complete.
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{size_download}", &s.url(&format!("/v1/images/{id}"))])
        .output()
        .expect("curl runs");
    let got: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
    assert!(!out.status.success(), "curl reported a complete download of {got} bytes");
    assert!(got < 1 << 20, "curl got {got} bytes");

    // Copying from it fails too, and keeps nothing.
    let r =
        s.send("POST", "/v1/images", &[("x-glance-api-copy-from", &url), ("x-image-meta-name", "copy")], Bytes::new());
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(message(&r.json()).contains("interrupted"), "{:?}", r.body);
    // Killed images are listed only with changes-since.
    let everything = s.get("/v1/images/detail?is_public=none&changes-since=2000-01-01T00:00:00").json();
    let copies: Vec<&Value> = everything["images"].as_array().unwrap().iter().filter(|i| i["name"] == "copy").collect();
    assert_eq!(copies.len(), 1, "the failed copy is recorded once: {copies:?}");
    assert_eq!(copies[0]["status"], "killed", "{copies:?}");
    assert!(d.data_files().is_empty(), "no partial data is left: {:?}", d.data_files());
}
