//! What a client may be told of a plugin's error: the plugin's words, without the places
//! they name. A store's message is written for the operator (`cannot write
//! /srv/tank/images/<id>.partial: No space left on device`); the client gets the reason and
//! none of the paths and URLs (store directories, image locations, internal endpoints)
//! that would map the server's insides. A bare `host:port` stays: it names which of the
//! store's servers failed, which the operator the client reports to needs, and no image.

/// `message` with every absolute path and URL replaced by a placeholder (`<path>`,
/// `<url>`), and everything else kept.
pub fn for_clients(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        out.push_str(&word(&rest[..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// One whitespace-free word, redacted. Quotes, brackets and trailing punctuation around it
/// are kept, so that `(/x/y)` becomes `(<path>)` and `'/x',` becomes `'<path>',`.
fn word(w: &str) -> String {
    let lead = w.len() - w.trim_start_matches(['(', '[', '{', '"', '\'', '<', '`']).len();
    let core = &w[lead..];
    let trimmed = core.trim_end_matches(['"', '\'', ')', ']', '}', ',', ';', ':', '.', '>', '`']);
    let (head, tail) = (&w[..lead], &core[trimmed.len()..]);
    let placeholder = if trimmed.contains("://") {
        "<url>"
    } else if trimmed.starts_with('/') && trimmed.len() > 1 {
        "<path>"
    } else {
        return w.to_owned();
    };
    format!("{head}{placeholder}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_urls_and_addresses_go_and_the_reason_stays() {
        let cases = [
            (
                "writing /srv/tank/var/images/6a2b.partial: No space left on device (os error 28)",
                "writing <path>: No space left on device (os error 28)",
            ),
            ("cannot open '/x/y', it is gone", "cannot open '<path>', it is gone"),
            (
                "auth v1.0 at 127.0.0.1:8080 failed: connection refused",
                "auth v1.0 at 127.0.0.1:8080 failed: connection refused",
            ),
            ("GET https://s3.internal:9000/bucket/key answered 500", "GET <url> answered 500"),
            (
                "store 'sheepdog': the cluster answered HALT (0x19)",
                "store 'sheepdog': the cluster answered HALT (0x19)",
            ),
            ("read http://[::1]:7000/x timed out", "read <url> timed out"),
            ("ratio 3:2 and version 1.2", "ratio 3:2 and version 1.2"),
            ("a / b", "a / b"),
        ];
        for (message, want) in cases {
            assert_eq!(for_clients(message), want, "{message}");
        }
    }

    #[test]
    fn whitespace_is_kept() {
        assert_eq!(for_clients("  two  spaces\tand /a/b\n"), "  two  spaces\tand <path>\n");
    }
}
