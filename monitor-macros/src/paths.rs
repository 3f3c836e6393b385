//! Where each field of the built spec was written: every setter records the spec path it
//! sets (such as `target.port` or `steps[1]`) with the span of its token, so that each
//! problem `monitor_spec`'s validation finds is reported at the key or value that caused
//! it.

use proc_macro2::Span;

use monitor_spec::{TcpMonitor, ValidationError};

use crate::parse::Errors;

/// A spec path with the token that set it and the key it was set by.
struct Written {
    path: String,
    span: Span,
    /// The key, or what else set the path (several words, such as "the doc comment").
    key: &'static str,
}

impl Written {
    /// The key in backticks, or what else set the path.
    fn who(&self) -> String {
        if self.key.contains(' ') {
            self.key.to_owned()
        } else {
            format!("`{}`", self.key)
        }
    }
}

/// The spec paths the macro's keys set, and those whose value was rejected.
#[derive(Default)]
pub(crate) struct Paths {
    written: Vec<Written>,
    /// Paths whose key or argument was rejected: the spec holds a placeholder there, so
    /// problems about them are not reported twice.
    rejected: Vec<String>,
}

/// Whether `inner` is `outer` or lies below it (`steps` holds `steps[1].send`).
fn within(inner: &str, outer: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// Whether `message` names `path` as a whole word (`tls.mode`, not `tls.modes`).
fn mentions(message: &str, path: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    message.match_indices(path).any(|(at, _)| {
        let before = message[..at].chars().next_back();
        let after = message[at + path.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(|c| word(c) && c != '.')
    })
}

impl Paths {
    /// Records that `key` (or what else, in words) set `path` with the token at `span`.
    pub fn set(&mut self, path: impl Into<String>, span: Span, key: &'static str) {
        self.written.push(Written {
            path: path.into(),
            span,
            key,
        });
    }

    /// Records that the value meant for `path` was rejected.
    pub fn reject(&mut self, path: impl Into<String>) {
        self.rejected.push(path.into());
    }

    /// The token and key that set `path`, or the nearest path around or below it; of
    /// equally near ones, the one set last. A path set itself is nearer than the parts
    /// below it: a problem of a whole list (`tags` is too long) goes to the list, not to
    /// its last entry.
    fn locate(&self, path: &str) -> Option<&Written> {
        self.written
            .iter()
            .filter_map(|w| {
                let near = if w.path == path {
                    path.len() + 1
                } else if within(path, &w.path) {
                    w.path.len()
                } else if within(&w.path, path) {
                    path.len()
                } else {
                    return None;
                };
                Some((near, w))
            })
            .max_by_key(|(near, _)| *near)
            .map(|(_, w)| w)
    }

    /// Whether the problem is about a rejected value, already reported: at a rejected
    /// path, or naming one (`tls.mode` in "has no effect without TLS; set tls.mode").
    fn about_rejected(&self, e: &ValidationError) -> bool {
        self.rejected
            .iter()
            .any(|r| within(&e.path, r) || (r.contains(['.', '_']) && mentions(&e.message, r)))
    }

    /// Runs `monitor_spec`'s validation on `monitor` and reports each problem at the
    /// token that set its path, or at `fallback` when no key did.
    pub fn report(&self, monitor: &TcpMonitor, fallback: Span, errors: &mut Errors) {
        let Err(problems) = monitor.validate() else {
            return;
        };
        for e in problems.0.iter().filter(|e| !self.about_rejected(e)) {
            match self.locate(&e.path) {
                Some(w) => errors.at(w.span, format!("{} ({}): {}", w.who(), e.path, e.message)),
                None => errors.at(fallback, e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_nest_and_messages_name_them() {
        assert!(within("steps[1].send", "steps"));
        assert!(within("tls.mode", "tls.mode"));
        assert!(!within("tls.modes", "tls.mode"));
        assert!(!within("tls", "tls.mode"));
        assert!(mentions("set tls.mode to `direct`", "tls.mode"));
        assert!(mentions(
            "above max_response_time_ms (5000)",
            "max_response_time_ms"
        ));
        assert!(!mentions("see tls.server_name", "server_name"));
        assert!(!mentions("see tls.modes", "tls.mode"));
    }

    #[test]
    fn problems_go_to_the_nearest_path_set_last() {
        let mut paths = Paths::default();
        let (a, b) = (Span::call_site(), Span::mixed_site());
        paths.set("tls.mode", a, "tls");
        paths.set("tls.starttls", a, "tls");
        paths.set("tls.starttls", b, "starttls");
        paths.set("tls.client_cert.cert", a, "client_cert_file");
        let key = |path: &str| paths.locate(path).map(|w| w.key);
        assert_eq!(key("tls.starttls"), Some("starttls"));
        assert_eq!(key("tls.mode"), Some("tls"));
        assert_eq!(key("tls.client_cert"), Some("client_cert_file"));
        assert_eq!(key("target.port"), None);
        // A whole list is found before its entries, whichever was recorded last.
        paths.set("tags", a, "tags");
        paths.set("tags[0]", b, "tags");
        let span = |path: &str| paths.locate(path).map(|w| w.path.clone());
        assert_eq!(span("tags").as_deref(), Some("tags"));
        assert_eq!(span("tags[0]").as_deref(), Some("tags[0]"));
    }
}
