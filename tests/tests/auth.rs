//! Authentication end to end (docs/authentication.md): each `auth_strategy` of a real
//! `tank api`, over both APIs, with the tokens made by the real `tank token new`.

use std::io::{Read, Write};

use bytes::Bytes;
use serde_json::json;
use tank_tests::{tank_cmd, Deployment, Server, BEHIND_PROXY, WITH_TOKENS};

const JSON: (&str, &str) = ("content-type", "application/json");

/// What a proxy passes on for project acme's member (or a client that claims to be one).
const ACME_MEMBER: [(&str, &str); 4] =
    [("x-auth-token", "t"), ("x-identity-status", "Confirmed"), ("x-tenant", "acme"), ("x-role", "member")];

/// `GET path` with `headers`, sent from source address `from` (any 127/8 address is this
/// host), answering the status.
fn status_from(server: &Server, from: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&format!("{from}:0").parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    socket.connect(&server.addr.parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    let mut conn: std::net::TcpStream = socket.into();
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", server.addr);
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    conn.write_all(format!("{head}\r\n").as_bytes()).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {answer:?}"))
}

fn create(s: &Server, headers: &[(&str, &str)], name: &str) -> serde_json::Value {
    let mut h = vec![JSON];
    h.extend_from_slice(headers);
    let body = json!({"name": name, "disk_format": "raw", "container_format": "bare"}).to_string();
    let r = s.send("POST", "/v2/images", &h, body);
    assert_eq!(r.status, 201, "{}", r.error_message());
    r.json()
}

#[test]
fn noauth_makes_everyone_the_administrator_and_believes_no_identity_headers() {
    let d = Deployment::new();
    d.config("auth_strategy = \"noauth\"");
    let s = d.start();
    let claimed = ACME_MEMBER;
    let image = create(&s, &claimed, "claimed");
    assert_eq!(image["owner"], serde_json::Value::Null, "the headers claimed project acme: not believed");
    let r = s.send("PUT", &format!("/v1/images/{}/members/x", image["id"].as_str().unwrap()), &claimed, Bytes::new());
    assert_eq!(r.status, 401, "the administrator has no project to share as: {}", r.error_message());
    let log = s.log();
    assert!(log.contains("callers are authenticated") && log.contains("noauth"), "the strategy is logged at start");
}

#[test]
fn tokens_let_their_owners_in_over_both_apis_and_nobody_else() {
    let d = Deployment::new();
    d.config(WITH_TOKENS);
    let tokens = d.tokens(&[("alice", "acme", "member"), ("ops", "ops", "admin")]);
    let (alice, ops) = (tokens["alice"].as_str().unwrap(), tokens["ops"].as_str().unwrap());
    let s = d.start();
    let as_alice = [("x-auth-token", alice)];

    // Missing, unknown, and forged identity headers: the same 401, on every route.
    let mut answers = Vec::new();
    for headers in [
        vec![],
        vec![("x-auth-token", "tank_0000")],
        vec![("x-identity-status", "Confirmed"), ("x-tenant", "acme"), ("x-role", "admin")],
    ] {
        for path in ["/v2/images", "/v1/images/detail", "/v2/schemas/image"] {
            let r = s.send("GET", path, &headers, Bytes::new());
            assert_eq!(r.status, 401, "{path} {headers:?}");
            assert!(r.header("www-authenticate").is_some(), "401 says how to authenticate");
            answers.push(r.error_message());
        }
    }
    answers.dedup();
    assert_eq!(answers, ["authentication required: send a valid API token in X-Auth-Token"]);
    assert_eq!(s.get("/versions").status, 200, "version discovery needs no token");

    // alice owns what she makes, through v2 and v1; ops, an admin, sees it.
    let image = create(&s, &as_alice, "alice's");
    assert_eq!(image["owner"], "acme");
    let id = image["id"].as_str().unwrap();
    let v1 = s.send("HEAD", &format!("/v1/images/{id}"), &as_alice, Bytes::new());
    assert_eq!((v1.status, v1.header("x-image-meta-owner")), (200, Some("acme")));
    let listed = s.send("GET", "/v2/images", &[("x-auth-token", ops)], Bytes::new()).json();
    assert_eq!(listed["images"][0]["id"], id);

    // A token added while the server runs works within a second; a removed one stops.
    let bob = d.tokens(&[("bob", "other", "member")])["bob"].as_str().unwrap().to_owned();
    tank_tests::wait_until(std::time::Duration::from_secs(5), "bob's token to work", || {
        s.send("GET", "/v2/images", &[("x-auth-token", &bob)], Bytes::new()).status == 200
    });
    let r = s.send("GET", &format!("/v2/images/{id}"), &[("x-auth-token", &bob)], Bytes::new());
    assert_eq!(r.status, 404, "another project's image is not bob's to see");
    let file = d.root.path().join("tokens.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let kept: Vec<&str> = text.split("[[token]]").filter(|e| !e.contains("user = \"bob\"")).collect();
    std::fs::write(&file, kept.join("[[token]]")).unwrap();
    tank_tests::wait_until(std::time::Duration::from_secs(5), "bob's token to be refused", || {
        s.send("GET", "/v2/images", &[("x-auth-token", &bob)], Bytes::new()).status == 401
    });
    assert_eq!(s.send("GET", "/v2/images", &as_alice, Bytes::new()).status, 200, "alice's entry stayed");
    assert!(!s.log().contains(alice) && !s.log().contains(&bob), "tokens never reach the log");
}

#[test]
fn a_server_on_tokens_does_not_start_without_a_usable_token_file() {
    let d = Deployment::new();
    let config = d.config(WITH_TOKENS);
    let out = std::process::Command::new(tank_tests::tank_bin())
        .args(["api", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("tokens.toml") && err.contains("tank token new"), "{err}");
    // The scrubber serves no caller: the same configuration runs it without the file.
    let scrub = std::process::Command::new(tank_tests::tank_bin())
        .args(["scrubber", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(scrub.status.success(), "{}", String::from_utf8_lossy(&scrub.stderr));
    // `tank token new` refuses what it cannot write, with one line and exit 2.
    let run = tank_cmd(&["token", "new", "--file", "/nonexistent/dir/tokens.toml", "--user", "a", "--project", "b"]);
    let run = run.run().expect(2);
    assert!(run.stderr.starts_with("tank: cannot add a token") && run.stdout.is_empty(), "{}", run.stderr);
}

#[test]
fn identity_headers_are_believed_from_the_proxies_only() {
    let d = Deployment::new();
    // The proxy is 127.0.0.2; the test's own requests come from 127.0.0.1.
    d.config("auth_strategy = \"trusted-proxy\"\nidentity_proxies = [\"127.0.0.2\"]");
    let s = d.start();
    let confirmed = ACME_MEMBER;
    assert_eq!(status_from(&s, "127.0.0.2", "/v2/images", &confirmed), 200, "from the proxy");
    assert_eq!(status_from(&s, "127.0.0.1", "/v2/images", &confirmed), 401, "from anywhere else");
    assert_eq!(status_from(&s, "127.0.0.1", "/v1/images", &confirmed), 401);
    assert_eq!(status_from(&s, "127.0.0.2", "/v2/images", &[]), 401, "the proxy passed no identity");
    let invalid = [("x-auth-token", "t"), ("x-identity-status", "Invalid")];
    assert_eq!(status_from(&s, "127.0.0.2", "/v2/images", &invalid), 401, "the proxy refused the token");
    assert!(BEHIND_PROXY.contains("127.0.0.1"), "the other suites' proxy is this host's loopback");
}
