//! Fuzz target: a JSON bundle as `run --bundle`, `watch --bundle` and the control plane
//! read it: parsed (paths, lines and columns of errors), then validated. A bundle that
//! validates must survive the round trip through `to_json` unchanged and still validate.
#![no_main]

use monitor_spec::Bundle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let bundle = match Bundle::from_json(text) {
        Ok(bundle) => bundle,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    match bundle.validate() {
        Ok(valid) => {
            assert_eq!(valid.len(), bundle.monitors.len());
            let json = bundle.to_json();
            let again = Bundle::from_json(&json).expect("a valid bundle's JSON reads back");
            assert_eq!(
                again, bundle,
                "the bundle changed in a round trip through JSON"
            );
            assert!(
                again.validate().is_ok(),
                "the bundle read back no longer validates"
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
