//! Integration tests of monitor-spec, one module per topic: the JSON forms and schemas,
//! JSON from untrusted sources, validation, the bounds of lists, and names.

mod bounds;
mod json;
mod login;
mod maintenance;
mod names;
mod untrusted_json;
mod validation;
