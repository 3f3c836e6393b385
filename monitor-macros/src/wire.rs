//! Spec values built through the spec's own JSON form: a choice, a recipe or a retry
//! strategy is deserialized by `monitor_spec`'s serde derives, so that its names, fields
//! and defaults are the spec's and never a copy; serde's complaints come back typed.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a JSON value is not a spec value, as serde says it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// A field the type does not have, and the fields it does have.
    UnknownField {
        /// The field given.
        field: String,
        /// The fields allowed.
        expected: Vec<String>,
    },
    /// A variant the type does not have, and the variants it does have.
    UnknownVariant {
        /// The variant given.
        variant: String,
        /// The variants allowed.
        expected: Vec<String>,
    },
    /// A required field is absent.
    MissingField(String),
    /// Anything else, as serde words it.
    Other(String),
}

impl Problem {
    /// Reads serde's message: `unknown field `x`, expected `a` or `b``, `unknown variant
    /// `x`, expected one of `a`, `b`, `c``, `missing field `x``.
    fn from_message(message: &str) -> Problem {
        let mut ticked = ticked(message).into_iter();
        let mut first = || ticked.next().unwrap_or_default();
        if message.starts_with("unknown field ") {
            let field = first();
            Problem::UnknownField {
                field,
                expected: ticked.collect(),
            }
        } else if message.starts_with("unknown variant ") {
            let variant = first();
            Problem::UnknownVariant {
                variant,
                expected: ticked.collect(),
            }
        } else if message.starts_with("missing field ") {
            Problem::MissingField(first())
        } else {
            Problem::Other(message.to_owned())
        }
    }
}

/// The words between backticks, in order.
fn ticked(message: &str) -> Vec<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The spec value whose JSON form is `value`.
pub(crate) fn build<T: DeserializeOwned>(value: Value) -> Result<T, Problem> {
    serde_json::from_value(value).map_err(|e| Problem::from_message(&e.to_string()))
}

/// The unit variant of `T` named `name` in JSON, or the names `T` has.
pub(crate) fn choice<T: DeserializeOwned>(name: &str) -> Result<T, Vec<String>> {
    build(Value::String(name.to_owned())).map_err(|problem| match problem {
        Problem::UnknownVariant { expected, .. } => expected,
        _ => Vec::new(),
    })
}

/// The names of the unit variants of `T`, as JSON spells them.
pub(crate) fn choices<T: DeserializeOwned>() -> Vec<String> {
    choice::<T>("\u{0}").err().unwrap_or_default()
}

/// The variants of an internally tagged `T` (tag field `tag`), as JSON spells them.
pub(crate) fn tagged_variants<T: DeserializeOwned>(tag: &str) -> Vec<String> {
    match build::<T>(serde_json::json!({ tag: "\u{0}" })) {
        Err(Problem::UnknownVariant { expected, .. }) => expected,
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_spec::{IpFamily, Recipe, RetryStrategy};
    use serde_json::json;

    #[test]
    fn problems_are_read_from_serde() {
        assert_eq!(choice::<IpFamily>("ipv4"), Ok(IpFamily::Ipv4));
        assert_eq!(choices::<IpFamily>(), ["any", "ipv4", "ipv6"]);
        assert_eq!(
            tagged_variants::<RetryStrategy>("strategy"),
            ["none", "single_retry", "fixed", "linear", "exponential"]
        );
        assert_eq!(
            build::<Recipe>(json!({"protocol": "redis", "pasword_env": "X"})),
            Err(Problem::UnknownField {
                field: "pasword_env".into(),
                expected: vec!["password_env".into(), "username".into(), "role".into()],
            })
        );
        assert_eq!(
            build::<RetryStrategy>(json!({"strategy": "fixed", "base_backoff_seconds": 1})),
            Err(Problem::MissingField("max_retries".into()))
        );
        assert!(matches!(
            build::<Recipe>(json!({"protocol": "redis", "username": 5})),
            Err(Problem::Other(_))
        ));
    }
}
