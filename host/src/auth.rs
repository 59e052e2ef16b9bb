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
    sync::{Arc, RwLock},
    time::Duration,
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

/// How often the token file is read again to see whether it changed.
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
                // An IPv4 proxy that reaches an IPv6 socket comes as ::ffff:a.b.c.d; ::1 is
                // an address of its own, to be listed as such.
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

/// The token file. A thread of its own reads it every [`RECHECK`] and swaps the tokens in
/// when its bytes changed, so that no request waits on the file system and a change is
/// seen however coarse the file system's timestamps are.
#[derive(Debug)]
struct TokenFile {
    tokens: Arc<RwLock<HashMap<[u8; 32], Entry>>>,
}

impl TokenFile {
    fn open(path: PathBuf) -> anyhow::Result<TokenFile> {
        let bytes = std::fs::read(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read token file {}: {e}; create it with `tank token new --file ...`",
                path.display()
            )
        })?;
        let tokens = parse(&bytes, &path)?;
        tracing::info!(file = %path.display(), tokens = tokens.len(), "API tokens loaded");
        let tokens = Arc::new(RwLock::new(tokens));
        let watched = Arc::downgrade(&tokens);
        let mut seen = Sha256::digest(&bytes);
        std::thread::Builder::new().name("token-file".into()).spawn(move || loop {
            std::thread::sleep(RECHECK);
            // The server (or the test) let go of its tokens: nothing left to watch.
            let Some(tokens) = watched.upgrade() else { return };
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    // Gone or unreadable: nobody gets in until it is back.
                    let mut held = tokens.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if !held.is_empty() {
                        tracing::error!(file = %path.display(), "cannot read the token file ({e}); every token is refused");
                        held.clear();
                    }
                    seen = Default::default();
                    continue;
                }
            };
            let digest = Sha256::digest(&bytes);
            if digest == seen {
                continue;
            }
            // Said once for each version of the file, good or broken.
            seen = digest;
            match parse(&bytes, &path) {
                Ok(read) => {
                    tracing::info!(file = %path.display(), tokens = read.len(), "API tokens read again");
                    *tokens.write().unwrap_or_else(std::sync::PoisonError::into_inner) = read;
                }
                // Half-edited, say: the tokens read last stay until it parses again.
                Err(e) => tracing::error!("{e:#}; the tokens read before stay in use"),
            }
        })?;
        Ok(TokenFile { tokens })
    }

    /// The identity of `token`.
    fn lookup(&self, token: &str) -> Option<Entry> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.tokens.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&hash).cloned()
    }
}

/// The tokens in the bytes of token file `path`.
fn parse(bytes: &[u8], path: &Path) -> anyhow::Result<HashMap<[u8; 32], Entry>> {
    let text = std::str::from_utf8(bytes).map_err(|_| anyhow::anyhow!("token file {} is not UTF-8", path.display()))?;
    let file: FileText = toml::from_str(text)
        .map_err(|e| anyhow::anyhow!("token file {} is not valid: {}", path.display(), e.message()))?;
    let mut by_hash = HashMap::new();
    for (n, entry) in file.token.into_iter().enumerate() {
        let bad = |why: &str| anyhow::anyhow!("token file {}: token {} {why}", path.display(), n + 1);
        let hash: [u8; 32] = hex::decode(&entry.sha256)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("has no valid sha256 (64 hex digits)"))?;
        if !plain_name(&entry.user) || !plain_name(&entry.project) {
            return Err(bad("needs a user and a project, without spaces around them"));
        }
        if by_hash.insert(hash, entry).is_some() {
            return Err(bad("repeats the hash of an earlier one"));
        }
    }
    Ok(by_hash)
}

/// A user or project name: not empty, no white space around it (" acme" would never
/// match a member named "acme").
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name.trim() == name
}

/// Adds a new token for `user` in `project` with `roles` to the token file at `path`
/// (made, readable by its owner only, if missing) and answers the token: the file keeps
/// only its hash, so this is the one time it is seen. The file is checked whole and
/// replaced in one rename, keeping its mode and owner (a server that reads it as another
/// user goes on reading it); a symbolic link is followed to the file it names, and a lock
/// beside the file keeps two runs from losing each other's entries.
pub fn add_token(path: &Path, user: &str, project: &str, roles: &[String]) -> anyhow::Result<String> {
    use std::{
        io::Write,
        os::{fd::AsRawFd, unix::fs::MetadataExt},
    };
    let (user, project) = (user.trim(), project.trim());
    if user.is_empty() || project.is_empty() {
        anyhow::bail!("a token needs a user and a project");
    }
    let path = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => anyhow::bail!("cannot find token file {}: {e}", path.display()),
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lock_path = dir.join(format!(".{name}.lock"));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| anyhow::anyhow!("cannot lock token file {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns; the lock goes with the descriptor.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        anyhow::bail!("cannot lock token file {}: {}", path.display(), std::io::Error::last_os_error());
    }
    let (text, existing) = match std::fs::read_to_string(&path) {
        Ok(t) => (t, std::fs::metadata(&path).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), None),
        Err(e) => anyhow::bail!("cannot read token file {}: {e}", path.display()),
    };
    let (token, entry) = new_token(user, project, roles);
    let separator = match text.len() {
        0 => "",
        _ if text.ends_with("\n\n") => "",
        _ if text.ends_with('\n') => "\n",
        _ => "\n\n",
    };
    let text = format!("{text}{separator}{entry}");
    let mut temp = tempfile::Builder::new().prefix(".tokens").tempfile_in(dir)?;
    temp.write_all(text.as_bytes())?;
    if let Some(meta) = &existing {
        std::fs::set_permissions(temp.path(), meta.permissions())?;
        // Only root may give a file away; anyone else keeps writing files it owns.
        // SAFETY: geteuid and getegid take nothing and cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if meta.uid() != uid || meta.gid() != gid {
            std::os::unix::fs::chown(temp.path(), Some(meta.uid()), Some(meta.gid())).map_err(|e| {
                anyhow::anyhow!(
                    "cannot keep the owner of token file {} ({e}); run as its owner or root",
                    path.display()
                )
            })?;
        }
    }
    temp.as_file().sync_all()?;
    // Checked as the server will read it, before it takes the file's place.
    parse(text.as_bytes(), &path).map_err(|e| anyhow::anyhow!("{e:#}; {} was left as it was", path.display()))?;
    temp.persist(&path).map_err(|e| anyhow::anyhow!("cannot write token file {}: {}", path.display(), e.error))?;
    drop(lock);
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
    use crate::{config::AuthSettings, identity::tests::headers};

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

        // Rotated: a new token for alice, an entry of the very same size (a file system
        // with coarse times and an unchanged size still shows the change): the old token
        // is out and the new one in, within a second.
        let (rotated, again) = new_token("alice", "acme", &["member".into(), "reader".into()]);
        assert_eq!(again.len(), entry.len());
        std::fs::write(&path, &again).unwrap();
        let new_in = || auth.caller(&headers(&[("x-auth-token", &rotated)]), LOOPBACK);
        within(RECHECK * 3, || new_in().is_ok());
        assert!(auth.caller(&headers(&[("x-auth-token", &alice)]), LOOPBACK).is_err());
        // Broken: the last good tokens stay; removed: nobody.
        std::fs::write(&path, "[[token]]\nsha256 = \"short\"\nuser = \"x\"\nproject = \"y\"\n").unwrap();
        std::thread::sleep(RECHECK * 2);
        assert!(new_in().is_ok(), "a file that does not parse keeps the tokens read before");
        std::fs::remove_file(&path).unwrap();
        within(RECHECK * 3, || new_in().is_err());
    }

    /// Waits up to `limit` for `cond`.
    fn within(limit: Duration, cond: impl Fn() -> bool) {
        let start = std::time::Instant::now();
        while !cond() {
            assert!(start.elapsed() < limit, "not within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn add_token_makes_a_private_file_and_keeps_the_entries_there() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let first = add_token(&path, "alice", "acme", &["member".into()]).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "a new file is private");
        // An existing file keeps its mode (a server reading it as its group goes on).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        // Through a symbolic link, the file it names is the one that changes.
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let second = add_token(&link, " bob ", "acme", &[]).unwrap();
        assert_ne!(first, second);
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
        let text = std::fs::read(&path).unwrap();
        let tokens = parse(&text, &path).unwrap();
        assert_eq!(tokens.len(), 2);
        assert!(tokens.values().any(|e| e.user == "bob"), "names are trimmed");
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
