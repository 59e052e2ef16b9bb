//! Who is calling the API server: one authentication strategy per server (`auth_strategy`),
//! each turning a request into the same [`Caller`] for the images service
//! (docs/authentication.md).
//!
//! - `noauth`: every caller is the administrator; identity headers are ignored.
//! - `trusted-proxy`: an authenticating proxy in front (Keystone's `authtoken` middleware,
//!   say) passes the identity on in headers; they are believed only from the addresses
//!   in `identity_proxies`.
//! - `tokens`: static API tokens in a file, stored as SHA-256 hashes, each naming a user,
//!   a project and roles; the file is read again when it changes.
//!
//! A refusal never says whether a token exists: a missing token and an unknown one get
//! the same 401.

use std::{
    collections::HashMap,
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant, SystemTime},
};

use http::HeaderMap;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tank_core::Caller;

use crate::{config::AuthStrategy, identity};

/// The answer to a request that is not authenticated; the message says what to send,
/// never whether a token exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthenticated(pub String);

impl std::fmt::Display for Unauthenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How often, at most, the token file's metadata is looked at for a change.
const RECHECK: Duration = Duration::from_secs(1);

/// A server's authentication.
#[derive(Debug)]
pub struct Auth {
    strategy: Strategy,
    owner_is_tenant: bool,
}

#[derive(Debug)]
enum Strategy {
    NoAuth,
    TrustedProxy(Vec<IpAddr>),
    Tokens(TokenFile),
}

impl Auth {
    /// The authentication `settings` describe. A token file that cannot be read or
    /// parsed is an error here: a server does not start with no way to let anyone in.
    pub fn new(settings: &crate::config::AuthSettings, owner_is_tenant: bool) -> anyhow::Result<Auth> {
        let strategy = match settings.strategy {
            AuthStrategy::NoAuth => Strategy::NoAuth,
            AuthStrategy::TrustedProxy => Strategy::TrustedProxy(settings.identity_proxies.clone()),
            AuthStrategy::Tokens => {
                let path = settings.token_file.clone().expect("the configuration requires token_file with tokens");
                Strategy::Tokens(TokenFile::open(path)?)
            }
        };
        Ok(Auth { strategy, owner_is_tenant })
    }

    /// No authentication: every caller is the administrator.
    pub fn noauth(owner_is_tenant: bool) -> Auth {
        Auth { strategy: Strategy::NoAuth, owner_is_tenant }
    }

    /// The strategy's name, as `auth_strategy` spells it.
    pub fn name(&self) -> &'static str {
        match self.strategy {
            Strategy::NoAuth => "noauth",
            Strategy::TrustedProxy(_) => "trusted-proxy",
            Strategy::Tokens(_) => "tokens",
        }
    }

    /// Who sent a request with `headers` from `peer`.
    pub fn caller(&self, headers: &HeaderMap, peer: IpAddr) -> Result<Caller, Unauthenticated> {
        match &self.strategy {
            Strategy::NoAuth => Ok(Caller { owner_is_tenant: self.owner_is_tenant, ..Caller::admin() }),
            Strategy::TrustedProxy(proxies) => {
                // A proxy on the same host may reach us over IPv4 or IPv6 loopback alike.
                let peer = canonical(peer);
                if !proxies.iter().any(|p| canonical(*p) == peer) {
                    return Err(Unauthenticated(
                        "requests must come through the authenticating proxy (auth_strategy trusted-proxy)".into(),
                    ));
                }
                match identity::forwarded(headers, self.owner_is_tenant) {
                    Ok(Some(caller)) => Ok(caller),
                    Ok(None) => Err(Unauthenticated(
                        "the proxy passed no identity (X-Identity-Status: Confirmed); authenticate with it".into(),
                    )),
                    Err(e) => Err(Unauthenticated(e.to_string())),
                }
            }
            Strategy::Tokens(file) => {
                let token = headers.get("x-auth-token").and_then(|v| v.to_str().ok()).map(str::trim);
                let found = token.filter(|t| !t.is_empty()).and_then(|t| file.lookup(t));
                let entry = found.ok_or_else(|| {
                    Unauthenticated("authentication required: send a valid API token in X-Auth-Token".into())
                })?;
                Ok(Caller::new(Some(entry.user), Some(entry.project), entry.roles, self.owner_is_tenant))
            }
        }
    }
}

/// `addr` with IPv4-mapped IPv6 addresses as IPv4.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// One token's identity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// The SHA-256 of the token, lower-case hex.
    sha256: String,
    user: String,
    project: String,
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    #[serde(default)]
    token: Vec<Entry>,
}

/// The token file, read again when its modification time or size changes.
#[derive(Debug)]
struct TokenFile {
    path: PathBuf,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    by_hash: HashMap<[u8; 32], Entry>,
    /// The file's (modification time, size) when it was read; `None` when it was missing.
    seen: Option<(SystemTime, u64)>,
    checked: Instant,
}

impl TokenFile {
    fn open(path: PathBuf) -> anyhow::Result<TokenFile> {
        let (by_hash, seen) = read(&path)?;
        tracing::info!(file = %path.display(), tokens = by_hash.len(), "API tokens loaded");
        Ok(TokenFile { path, state: Mutex::new(Loaded { by_hash, seen, checked: Instant::now() }) })
    }

    /// The identity of `token`, with the file read again first if it changed.
    fn lookup(&self, token: &str) -> Option<Entry> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            self.reload_if_changed(&mut state);
        }
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        state.by_hash.get(&hash).cloned()
    }

    fn reload_if_changed(&self, state: &mut Loaded) {
        let now = stamp(&self.path);
        if now == state.seen {
            return;
        }
        match now {
            // Removed: nobody gets in until it is back.
            None => {
                tracing::error!(file = %self.path.display(), "the token file is gone; every token is refused");
                state.by_hash.clear();
                state.seen = None;
            }
            Some(_) => match read(&self.path) {
                Ok((by_hash, seen)) => {
                    tracing::info!(file = %self.path.display(), tokens = by_hash.len(), "API tokens read again");
                    state.by_hash = by_hash;
                    state.seen = seen;
                }
                // Half-edited, say: the tokens read last stay until it parses again.
                Err(e) => tracing::error!("{e:#}; the tokens read before stay in use"),
            },
        }
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

type Tokens = (HashMap<[u8; 32], Entry>, Option<(SystemTime, u64)>);

fn read(path: &Path) -> anyhow::Result<Tokens> {
    let seen = stamp(path);
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!("cannot read token file {}: {e}; create it with `tank token new --file ...`", path.display())
    })?;
    let file: FileText = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("token file {} is not valid: {}", path.display(), e.message()))?;
    let mut by_hash = HashMap::new();
    for (n, entry) in file.token.into_iter().enumerate() {
        let bad = |why: &str| anyhow::anyhow!("token file {}: token {} {why}", path.display(), n + 1);
        let hash: [u8; 32] = hex::decode(&entry.sha256)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("has no valid sha256 (64 hex digits)"))?;
        if entry.user.trim().is_empty() || entry.project.trim().is_empty() {
            return Err(bad("needs a user and a project"));
        }
        if by_hash.insert(hash, entry).is_some() {
            return Err(bad("repeats the hash of an earlier one"));
        }
    }
    Ok((by_hash, seen))
}

/// Adds a new token for `user` in `project` with `roles` to the token file at `path`
/// (made, readable by its owner only, if missing) and answers the token: the file keeps
/// only its hash, so this is the one time it is seen. The file is checked whole and
/// replaced in one rename, so a server reading it never sees half an entry.
pub fn add_token(path: &Path, user: &str, project: &str, roles: &[String]) -> anyhow::Result<String> {
    use std::io::Write;
    if user.trim().is_empty() || project.trim().is_empty() {
        anyhow::bail!("a token needs a user and a project");
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => anyhow::bail!("cannot read token file {}: {e}", path.display()),
    };
    let (token, entry) = new_token(user, project, roles);
    let separator = if text.is_empty() || text.ends_with("\n\n") {
        ""
    } else if text.ends_with('\n') {
        "\n"
    } else {
        "\n\n"
    };
    let text = format!("{text}{separator}{entry}");
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new().prefix(".tokens").tempfile_in(dir)?;
    temp.write_all(text.as_bytes())?;
    temp.as_file().sync_all()?;
    // Checked as the server will read it, before it takes the file's place.
    read(temp.path()).map_err(|e| anyhow::anyhow!("{e:#}; {} was left as it was", path.display()))?;
    temp.persist(path).map_err(|e| anyhow::anyhow!("cannot write token file {}: {}", path.display(), e.error))?;
    Ok(token)
}

/// A new random API token (256 bits, as `tank_` and 64 hex digits) and the file entry
/// that lets it in as `user` in `project` with `roles`: only the entry is stored.
pub fn new_token(user: &str, project: &str, roles: &[String]) -> (String, String) {
    let mut random = [0u8; 32];
    random[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    random[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let token = format!("tank_{}", hex::encode(Sha256::digest(random)));
    let quoted = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let roles: Vec<String> = roles.iter().map(|r| quoted(r)).collect();
    let entry = format!(
        "[[token]]\nsha256 = {}\nuser = {}\nproject = {}\nroles = [{}]\n",
        quoted(&hex::encode(Sha256::digest(token.as_bytes()))),
        quoted(user),
        quoted(project),
        roles.join(", ")
    );
    (token, entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthSettings;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const CONFIRMED: [(&str, &str); 4] =
        [("x-auth-token", "t"), ("x-identity-status", "Confirmed"), ("x-tenant", "acme"), ("x-role", "member")];

    #[test]
    fn noauth_is_the_admin_whatever_the_headers_say() {
        let auth = Auth::noauth(true);
        let c = auth.caller(&headers(&CONFIRMED), "192.0.2.1".parse().unwrap()).unwrap();
        assert!(c.is_admin && c.owner().is_none(), "identity headers are not believed: {c:?}");
    }

    #[test]
    fn identity_headers_count_only_from_the_proxies() {
        let settings =
            AuthSettings { strategy: AuthStrategy::TrustedProxy, identity_proxies: vec![LOOPBACK], token_file: None };
        let auth = Auth::new(&settings, true).unwrap();
        let c = auth.caller(&headers(&CONFIRMED), LOOPBACK).unwrap();
        assert_eq!((c.owner(), c.is_admin), (Some("acme"), false));
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(auth.caller(&headers(&CONFIRMED), mapped).is_ok(), "IPv4 through an IPv6 socket");
        let e = auth.caller(&headers(&CONFIRMED), "192.0.2.1".parse().unwrap()).unwrap_err();
        assert!(e.0.contains("authenticating proxy"), "{e}");
        assert!(auth.caller(&HeaderMap::new(), LOOPBACK).is_err(), "from the proxy, but no identity");
        let invalid = [("x-auth-token", "t"), ("x-identity-status", "Invalid")];
        assert!(auth.caller(&headers(&invalid), LOOPBACK).is_err());
    }

    #[test]
    fn tokens_are_looked_up_by_hash_and_the_file_is_read_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let (alice, entry) = new_token("alice", "acme", &["member".into(), "reader".into()]);
        assert!(alice.starts_with("tank_") && alice.len() == 69, "{alice}");
        assert!(!entry.contains(&alice), "only the hash is stored");
        std::fs::write(&path, &entry).unwrap();
        let settings = AuthSettings {
            strategy: AuthStrategy::Tokens,
            identity_proxies: Vec::new(),
            token_file: Some(path.clone()),
        };
        let auth = Auth::new(&settings, true).unwrap();
        let c = auth.caller(&headers(&[("x-auth-token", &alice)]), LOOPBACK).unwrap();
        assert_eq!(
            (c.user.as_deref(), c.owner(), c.roles.clone()),
            (Some("alice"), Some("acme"), vec!["member".to_string(), "reader".to_string()])
        );
        let unknown = auth.caller(&headers(&[("x-auth-token", "tank_nope")]), LOOPBACK).unwrap_err();
        let missing = auth.caller(&HeaderMap::new(), LOOPBACK).unwrap_err();
        assert_eq!(unknown, missing, "a refusal does not tell an unknown token from none");
        let forged = headers(&[("x-identity-status", "Confirmed"), ("x-tenant", "acme"), ("x-role", "admin")]);
        assert!(auth.caller(&forged, LOOPBACK).is_err(), "identity headers are no token");

        // Replaced: alice is out, bob is in, once the file is looked at again.
        let (bob, entry) = new_token("bob", "other", &["admin".into()]);
        std::fs::write(&path, format!("# rotated\n{entry}")).unwrap();
        std::thread::sleep(RECHECK + Duration::from_millis(50));
        assert!(auth.caller(&headers(&[("x-auth-token", &alice)]), LOOPBACK).is_err());
        assert!(auth.caller(&headers(&[("x-auth-token", &bob)]), LOOPBACK).unwrap().is_admin);
        // Broken: the last good tokens stay; removed: nobody.
        std::fs::write(&path, "[[token]]\nsha256 = \"short\"\nuser = \"x\"\nproject = \"y\"\n").unwrap();
        std::thread::sleep(RECHECK + Duration::from_millis(50));
        assert!(auth.caller(&headers(&[("x-auth-token", &bob)]), LOOPBACK).is_ok());
        std::fs::remove_file(&path).unwrap();
        std::thread::sleep(RECHECK + Duration::from_millis(50));
        assert!(auth.caller(&headers(&[("x-auth-token", &bob)]), LOOPBACK).is_err());
    }

    #[test]
    fn add_token_makes_a_private_file_and_keeps_the_entries_there() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let first = add_token(&path, "alice", "acme", &["member".into()]).unwrap();
        let second = add_token(&path, "bob", "acme", &[]).unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (tokens, _) = read(&path).unwrap();
        assert_eq!(tokens.len(), 2);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&first) && !text.contains(&second), "no token in clear");
        std::fs::write(&path, "not toml [").unwrap();
        let e = add_token(&path, "carol", "acme", &[]).unwrap_err().to_string();
        assert!(e.contains("left as it was"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not toml [");
        assert!(add_token(&path, " ", "acme", &[]).is_err());
    }

    #[test]
    fn a_bad_token_file_stops_the_start_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let settings = AuthSettings {
            strategy: AuthStrategy::Tokens,
            identity_proxies: Vec::new(),
            token_file: Some(path.clone()),
        };
        let e = Auth::new(&settings, true).unwrap_err().to_string();
        assert!(e.contains("tokens.toml") && e.contains("tank token new"), "{e}");
        std::fs::write(&path, "[[token]]\nsha256 = \"ab\"\nuser = \"x\"\nproject = \"y\"\n").unwrap();
        assert!(Auth::new(&settings, true).unwrap_err().to_string().contains("token 1"));
    }
}
