//! Fuzz target: the control-plane API's JSON bodies as both ends read them, picked by the
//! first byte: a deploy request (parsed, then its bundle validated as the control plane
//! does), a results request (parsed, then every result checked against the result
//! bounds), or an assignment (parsed by the agent, then each monitor validated).
//! Properties: a result cut by `bound_result` passes `check_result`; what parses
//! survives a round trip through JSON unchanged.
#![no_main]

use monitor_spec::api::{Assignment, DeployRequest, ResultsRequest};
use monitor_spec::json::read;
use monitor_spec::limits::{bound_result, check_result};

/// `value` written as JSON reads back equal.
fn round_trip<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_string(value).expect("a parsed body serializes");
    let again: T = read(&json).expect("a serialized body reads back");
    assert_eq!(
        &again, value,
        "the body changed in a round trip through JSON"
    );
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 3 {
        0 => match read::<DeployRequest>(text) {
            Ok(request) => {
                round_trip(&request);
                if let Err(e) = request.bundle.validate() {
                    let _ = e.to_string();
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        },
        1 => match read::<ResultsRequest>(text) {
            Ok(mut request) => {
                round_trip(&request);
                for r in &mut request.results {
                    if let Err((path, why)) = check_result(&r.result) {
                        let _ = format!("{path}: {why}");
                    }
                    bound_result(&mut r.result);
                    if let Err((path, why)) = check_result(&r.result) {
                        panic!("a bounded result is refused: {path}: {why}");
                    }
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        },
        _ => match read::<Assignment>(text) {
            Ok(assignment) => {
                round_trip(&assignment);
                for m in &assignment.monitors {
                    if let Err(e) = m.monitor.validate() {
                        let _ = e.to_string();
                    }
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        },
    }
});
