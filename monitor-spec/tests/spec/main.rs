//! Integration tests of monitor-spec, one module per topic: the JSON forms and schemas,
//! and validation.

mod json;
mod validation;
