//! The documented bounds of the model: how long a monitor's lists may be, and how much a
//! result may carry. Validation, the engine, the agent and the control plane all use
//! these numbers, so a result one of them produced is one the others accept.

use crate::result::{CheckResult, ProbeError};

/// The most tags one monitor may have.
pub const MAX_TAGS: usize = 64;
/// The most locations (and, separately, private locations) one monitor may name.
pub const MAX_LOCATIONS: usize = 64;
/// The most alert channels one monitor may name.
pub const MAX_ALERT_CHANNELS: usize = 32;
/// The most ALPN protocols one monitor may offer.
pub const MAX_ALPN: usize = 16;

/// The longest error message of a result, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// The most hints an error may carry.
pub const MAX_HINTS: usize = 16;
/// The longest hint, in bytes.
pub const MAX_HINT_BYTES: usize = 1024;
/// The longest response excerpt or assertion value of a result, in bytes (escaped).
pub const MAX_EXCERPT_BYTES: usize = 4096;
/// The most attempts a result may list.
pub const MAX_ATTEMPTS: usize = 32;
/// The most facts a result may carry, and the longest fact value in bytes.
pub const MAX_FACTS: usize = 64;
/// The longest fact value, in bytes.
pub const MAX_FACT_BYTES: usize = 1024;
/// The most certificates a result's chain may list.
pub const MAX_CHAIN: usize = 16;
/// The most weak cipher suites, and separately findings, a compliance scan may list.
pub const MAX_POLICY_ITEMS: usize = 64;

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub fn truncate(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mark = "…";
    let mut end = max.saturating_sub(mark.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(mark);
}

/// Cuts every field of `result` to the bounds above: what the engine does before it
/// returns a result.
pub fn bound_result(result: &mut CheckResult) {
    fn bound_error(e: &mut ProbeError) {
        truncate(&mut e.message, MAX_MESSAGE_BYTES);
        e.hints.truncate(MAX_HINTS);
        for h in &mut e.hints {
            truncate(h, MAX_HINT_BYTES);
        }
    }
    if let Some(e) = &mut result.error {
        bound_error(e);
    }
    result.attempts.truncate(MAX_ATTEMPTS);
    for a in &mut result.attempts {
        if let Some(e) = &mut a.error {
            bound_error(e);
        }
    }
    truncate(&mut result.response_excerpt, MAX_EXCERPT_BYTES);
    for a in &mut result.assertions {
        truncate(&mut a.actual, MAX_EXCERPT_BYTES);
        truncate(&mut a.target, MAX_EXCERPT_BYTES);
    }
    while result.facts.len() > MAX_FACTS {
        result.facts.pop_last();
    }
    for v in result.facts.values_mut() {
        truncate(v, MAX_FACT_BYTES);
    }
    if let Some(tls) = &mut result.tls {
        tls.chain.truncate(MAX_CHAIN);
        if let Some(o) = &mut tls.ocsp {
            for text in [&mut o.responder, &mut o.reason, &mut o.problem]
                .into_iter()
                .flatten()
            {
                truncate(text, MAX_FACT_BYTES);
            }
        }
        if let Some(p) = &mut tls.policy {
            p.weak_ciphers.truncate(MAX_POLICY_ITEMS);
            p.findings.truncate(MAX_POLICY_ITEMS);
            for f in &mut p.findings {
                truncate(&mut f.code, MAX_FACT_BYTES);
                truncate(&mut f.message, MAX_FACT_BYTES);
            }
        }
    }
}

/// The first field of `result` over the bounds above, as (JSON path, what is wrong): what
/// the control plane refuses with 422.
pub fn check_result(result: &CheckResult) -> Result<(), (String, String)> {
    let over = |path: String, len: usize, max: usize, unit: &str| -> Result<(), (String, String)> {
        if len > max {
            Err((path, format!("has {len} {unit}; at most {max} are allowed")))
        } else {
            Ok(())
        }
    };
    let error = |path: &str, e: &ProbeError| -> Result<(), (String, String)> {
        over(
            format!("{path}.message"),
            e.message.len(),
            MAX_MESSAGE_BYTES,
            "bytes",
        )?;
        over(format!("{path}.hints"), e.hints.len(), MAX_HINTS, "hints")?;
        for (i, h) in e.hints.iter().enumerate() {
            over(
                format!("{path}.hints[{i}]"),
                h.len(),
                MAX_HINT_BYTES,
                "bytes",
            )?;
        }
        Ok(())
    };
    if let Some(e) = &result.error {
        error("error", e)?;
    }
    over(
        "attempts".into(),
        result.attempts.len(),
        MAX_ATTEMPTS,
        "attempts",
    )?;
    for (i, a) in result.attempts.iter().enumerate() {
        if let Some(e) = &a.error {
            error(&format!("attempts[{i}].error"), e)?;
        }
    }
    over(
        "response_excerpt".into(),
        result.response_excerpt.len(),
        MAX_EXCERPT_BYTES,
        "bytes",
    )?;
    for (i, a) in result.assertions.iter().enumerate() {
        over(
            format!("assertions[{i}].actual"),
            a.actual.len(),
            MAX_EXCERPT_BYTES,
            "bytes",
        )?;
        over(
            format!("assertions[{i}].target"),
            a.target.len(),
            MAX_EXCERPT_BYTES,
            "bytes",
        )?;
    }
    over("facts".into(), result.facts.len(), MAX_FACTS, "facts")?;
    for (k, v) in &result.facts {
        over(format!("facts.{k}"), v.len(), MAX_FACT_BYTES, "bytes")?;
    }
    if let Some(tls) = &result.tls {
        over(
            "tls.chain".into(),
            tls.chain.len(),
            MAX_CHAIN,
            "certificates",
        )?;
        if let Some(o) = &tls.ocsp {
            for (name, text) in [
                ("responder", &o.responder),
                ("reason", &o.reason),
                ("problem", &o.problem),
            ] {
                if let Some(text) = text {
                    over(
                        format!("tls.ocsp.{name}"),
                        text.len(),
                        MAX_FACT_BYTES,
                        "bytes",
                    )?;
                }
            }
        }
        if let Some(p) = &tls.policy {
            over(
                "tls.policy.weak_ciphers".into(),
                p.weak_ciphers.len(),
                MAX_POLICY_ITEMS,
                "suites",
            )?;
            over(
                "tls.policy.findings".into(),
                p.findings.len(),
                MAX_POLICY_ITEMS,
                "findings",
            )?;
            for (i, f) in p.findings.iter().enumerate() {
                over(
                    format!("tls.policy.findings[{i}].message"),
                    f.message.len() + f.code.len(),
                    MAX_FACT_BYTES,
                    "bytes",
                )?;
            }
        }
    }
    Ok(())
}
