//! Query strings: `application/x-www-form-urlencoded` pairs, percent-decoded (`+` is a
//! space), each name one the route knows and given at most once; typed values read with
//! messages that say which parameter is wrong and how.

use std::collections::HashMap;

use percent_encoding::percent_decode_str;

use super::error::ApiError;

/// The parameters of a request's query string.
#[derive(Debug, Default)]
pub(super) struct QueryParams(HashMap<String, String>);

/// 400 `bad query: ...`.
fn bad(why: String) -> ApiError {
    ApiError::BadRequest(format!("bad query: {why}"))
}

fn decode(text: &str) -> Result<String, ApiError> {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| bad(format!("`{}` is not utf-8", text.escape_default())))
}

impl QueryParams {
    /// Reads `query`, refusing names other than `known` and names given twice.
    pub(super) fn parse(query: Option<&str>, known: &[&str]) -> Result<QueryParams, ApiError> {
        let mut params = HashMap::new();
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (name, value) = (decode(name)?, decode(value)?);
            if !known.contains(&name.as_str()) {
                return Err(bad(format!(
                    "unknown parameter `{}`; the parameters are {}",
                    name.escape_default(),
                    known.join(", ")
                )));
            }
            if params.contains_key(&name) {
                return Err(bad(format!("`{name}` is given twice")));
            }
            params.insert(name, value);
        }
        Ok(QueryParams(params))
    }

    /// The text of a parameter, if given.
    pub(super) fn text(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    /// The text of a parameter that must be given.
    pub(super) fn required(&mut self, name: &str) -> Result<String, ApiError> {
        self.text(name)
            .ok_or_else(|| bad(format!("missing parameter `{name}`")))
    }

    /// A `true` or `false` parameter, false when not given.
    pub(super) fn flag(&mut self, name: &str) -> Result<bool, ApiError> {
        match self.text(name).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(bad(format!(
                "{name} is `{}`; use true or false",
                other.escape_default()
            ))),
        }
    }

    /// A whole number parameter, if given.
    pub(super) fn number(&mut self, name: &str) -> Result<Option<u64>, ApiError> {
        self.text(name)
            .map(|text| {
                text.parse::<u64>().map_err(|_| {
                    bad(format!(
                        "{name} is `{}`, not a whole number",
                        text.escape_default()
                    ))
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<QueryParams, ApiError> {
        QueryParams::parse(Some(query), &["a", "b"])
    }

    #[test]
    fn pairs_decode_and_unknown_or_repeated_names_are_refused() {
        let mut q = parse("a=x%2By+z&b=").unwrap();
        assert_eq!(q.text("a").as_deref(), Some("x+y z"));
        assert_eq!(q.required("b").unwrap(), "");
        assert!(q.required("b").is_err());
        for bad in ["c=1", "a=1&a=2", "a=%ff"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("bad query: "), "{bad}: {e}");
        }
        assert!(QueryParams::parse(None, &[]).is_ok());
    }

    #[test]
    fn typed_values() {
        let mut q = parse("a=true&b=7").unwrap();
        assert!(q.flag("a").unwrap());
        assert_eq!(q.number("b").unwrap(), Some(7));
        assert!(!q.flag("a").unwrap());
        let mut q = parse("a=yes&b=-1").unwrap();
        assert!(q.flag("a").is_err());
        assert!(q.number("b").is_err());
    }
}
