//! The `key = value, ...` lists both macros take, the error collector that reports every
//! problem at once, and the "did you mean" hint for misspelled names.

use std::fmt::Display;

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Token};

/// One `key = value` of an argument list.
pub(crate) struct Entry {
    /// The key as written.
    pub key: Ident,
    /// The value: a literal, a list or a call, judged by the key's reader.
    pub value: Expr,
}

impl Parse for Entry {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        // Any identifier, keywords included, so that `type = ...` is an unknown key
        // rather than a syntax error.
        let key = Ident::parse_any(input)?;
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("expected `=` after `{key}`; write `{key} = value`"),
            ));
        }
        input.parse::<Token![=]>()?;
        let value = input.parse()?;
        Ok(Entry { key, value })
    }
}

/// Parses `key = value` entries separated by commas, a trailing comma allowed.
pub(crate) fn entries(input: ParseStream) -> syn::Result<Vec<Entry>> {
    Ok(Punctuated::<Entry, Token![,]>::parse_terminated(input)?
        .into_iter()
        .collect())
}

/// Every error found so far, combined into one so that all are reported at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds an error.
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Adds an error with this message at this span.
    pub fn at(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// The value of `result`, or `None` after recording its error.
    pub fn ok<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.push(e);
                None
            }
        }
    }

    /// `Ok` when nothing went wrong, else every error.
    pub fn finish(self) -> syn::Result<()> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The candidate nearest to `word` by edit distance, if it is at most 2 edits away.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `did you mean `x`? ` (with a trailing space) when a candidate is near `word`, else
/// nothing: the hint goes between a message's head and its list of valid values.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    closest(word, candidates)
        .map(|c| format!("did you mean `{c}`? "))
        .unwrap_or_default()
}

/// `unknown key `name`; ` with a hint when a valid key is near, then the valid keys.
pub(crate) fn unknown_key(name: &str, valid: &[&str]) -> String {
    format!(
        "unknown key `{name}`; {}valid keys: {}",
        did_you_mean(name, valid.iter().copied()),
        valid.join(", ")
    )
}

/// Levenshtein distance between two strings, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute =
                previous.get(j).copied().unwrap_or(usize::MAX) + usize::from(ca != *cb);
            let delete = previous
                .get(j + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let insert = current
                .get(j)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        for (a, b, d) in [
            ("host", "host", 0),
            ("hots", "host", 2),
            ("hostt", "host", 1),
            ("", "abc", 3),
            ("frequncy", "frequency", 1),
            ("kitten", "sitting", 3),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
    }

    #[test]
    fn nearest_candidate() {
        let keys = ["host", "port", "frequency", "tags"];
        assert_eq!(closest("prot", keys), Some("port"));
        assert_eq!(closest("frequncy", keys), Some("frequency"));
        assert_eq!(closest("schedule", keys), None);
        assert_eq!(did_you_mean("tag", keys), "did you mean `tags`? ");
        assert_eq!(did_you_mean("zzzzzz", keys), "");
    }

    #[test]
    fn entries_parse() {
        let parsed = syn::parse::Parser::parse_str(entries, r#"host = "a", port = 1, type = 2,"#)
            .map(|e| e.iter().map(|e| e.key.to_string()).collect::<Vec<_>>());
        assert_eq!(
            parsed.ok(),
            Some(vec!["host".into(), "port".into(), "type".into()])
        );
        let missing_eq = syn::parse::Parser::parse_str(entries, "host \"a\"");
        assert_eq!(
            missing_eq.err().map(|e| e.to_string()),
            Some("expected `=` after `host`; write `host = value`".to_owned())
        );
    }
}
