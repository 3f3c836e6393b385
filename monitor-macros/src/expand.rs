//! The generated code: for `#[tcp_monitor]`, the function unchanged, a hidden function
//! that declares the monitor, and its registration; for `monitor_defaults!`, the defaults
//! and their registration. Every path is absolute, so no import is needed.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;
use syn::ext::IdentExt;

use crate::calls::{Recipe, Retry, Step};
use crate::config::Config;
use crate::item::{Function, name_from_doc};
use crate::value::Choice;

/// `::std::string::String::from("...")`.
fn string(s: &str) -> TokenStream {
    quote!(::std::string::String::from(#s))
}

/// `::std::vec![String::from("a"), ...]`.
fn strings(values: &[String]) -> TokenStream {
    let items = values.iter().map(|s| string(s));
    quote!(::std::vec![#(#items),*])
}

/// `::core::option::Option::Some(...)`.
fn some(value: TokenStream) -> TokenStream {
    quote!(::core::option::Option::Some(#value))
}

/// `Some(String::from("..."))` or `None`.
fn optional_string(value: Option<&str>) -> TokenStream {
    match value {
        Some(s) => some(string(s)),
        None => quote!(::core::option::Option::None),
    }
}

/// `::monitor_core::{ty}::{variant}`.
fn variant(ty: &str, choice: &Choice) -> TokenStream {
    let ty = Ident::new(ty, Span::call_site());
    let variant = Ident::new(choice.variant, Span::call_site());
    quote!(::monitor_core::#ty::#variant)
}

/// `::monitor_core::Frequency::S30` for `30s`: the unit in capitals, then the number.
fn frequency(text: &str) -> syn::Result<TokenStream> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    syn::parse_str::<Ident>(&format!("{}{number}", unit.to_ascii_uppercase()))
        .map(|v| quote!(::monitor_core::Frequency::#v))
        .map_err(|_| {
            syn::Error::new(
                Span::call_site(),
                format!("frequency `{text}` has no `Frequency` variant"),
            )
        })
}

/// A dialog step.
fn step(step: &Step) -> TokenStream {
    let core = quote!(::monitor_core);
    match step {
        Step::Send(t) => {
            let t = string(t);
            quote!(#core::Step::Send(#core::Payload::Text(#t)))
        }
        Step::SendHex(h) => {
            let h = string(h);
            quote!(#core::Step::Send(#core::Payload::Hex(#h)))
        }
        Step::Expect(t) => {
            let t = string(t);
            quote!(#core::Step::Expect(#core::Expect::Contains(#t)))
        }
        Step::ExpectRegex(r) => {
            let r = string(r);
            quote!(#core::Step::Expect(#core::Expect::Regex(#r)))
        }
        Step::ExpectExact(t) => {
            let t = string(t);
            quote!(#core::Step::Expect(#core::Expect::Exact(#core::Payload::Text(#t))))
        }
        Step::ExpectHex(h) => {
            let h = string(h);
            quote!(#core::Step::Expect(#core::Expect::Exact(#core::Payload::Hex(#h))))
        }
        Step::ReadUntil(d) => {
            let d = string(d);
            quote!(#core::Step::Read(#core::ReadUntil::Delimiter(#d)))
        }
        Step::ReadBytes(n, _) => quote!(#core::Step::Read(#core::ReadUntil::Bytes(#n))),
        Step::ReadClose => quote!(#core::Step::Read(#core::ReadUntil::Close)),
        Step::ReadAny => quote!(#core::Step::Read(#core::ReadUntil::Any)),
    }
}

/// A retry strategy.
fn retry(retry: &Retry) -> TokenStream {
    match retry {
        Retry::None => quote!(::monitor_core::RetryStrategy::None),
        Retry::Single {
            backoff,
            same_region,
        } => quote!(::monitor_core::RetryStrategy::SingleRetry {
            base_backoff_seconds: #backoff,
            same_region: #same_region,
        }),
        Retry::Backoff {
            variant,
            backoff,
            max_retries,
            max_duration,
            same_region,
        } => {
            let variant = Ident::new(variant, Span::call_site());
            quote!(::monitor_core::RetryStrategy::#variant(::monitor_core::Backoff {
                base_backoff_seconds: #backoff,
                max_retries: #max_retries,
                max_duration_seconds: #max_duration,
                same_region: #same_region,
            }))
        }
    }
}

/// A protocol recipe: `::monitor_core::Recipe::Redis { password_env: ..., username: ... }`.
fn recipe(recipe: &Recipe) -> TokenStream {
    let core = quote!(::monitor_core);
    match recipe {
        Recipe::Postgres { user, database } => {
            let user = string(user);
            let database = optional_string(database.as_deref());
            quote!(#core::Recipe::Postgres { user: #user, database: #database })
        }
        Recipe::Smtp { helo } => {
            let helo = string(helo);
            quote!(#core::Recipe::Smtp { helo: #helo })
        }
        Recipe::Redis {
            password_env,
            username,
        } => {
            let password_env = optional_string(password_env.as_deref());
            let username = optional_string(username.as_deref());
            quote!(#core::Recipe::Redis { password_env: #password_env, username: #username })
        }
        Recipe::Mysql => quote!(#core::Recipe::Mysql),
        Recipe::Mongodb => quote!(#core::Recipe::Mongodb),
        Recipe::Imap => quote!(#core::Recipe::Imap),
        Recipe::Pop3 => quote!(#core::Recipe::Pop3),
        Recipe::Memcached => quote!(#core::Recipe::Memcached),
        Recipe::Ssh => quote!(#core::Recipe::Ssh),
        Recipe::Ftp => quote!(#core::Recipe::Ftp),
    }
}

/// Assignments for the keys `#[tcp_monitor]` and `monitor_defaults!` share, to the
/// monitor `m` (`defaults` false) or to `Defaults` (`defaults` true, each value an
/// `Option`).
fn shared(config: &Config, target: &Ident, defaults: bool) -> syn::Result<Vec<TokenStream>> {
    let wrap = |value: TokenStream| if defaults { some(value) } else { value };
    let mut sets = Vec::new();
    if let Some(f) = &config.frequency {
        let value = wrap(frequency(f.value)?);
        sets.push(quote!(#target.frequency = #value;));
    }
    for (field, list) in [
        ("locations", &config.locations),
        ("private_locations", &config.private_locations),
        ("tags", &config.tags),
        ("alert_channels", &config.alert_channels),
    ] {
        if let Some(list) = list {
            let field = Ident::new(field, Span::call_site());
            let value = wrap(strings(&list.value));
            sets.push(quote!(#target.#field = #value;));
        }
    }
    if let Some(r) = &config.retry {
        let value = wrap(retry(&r.value));
        sets.push(quote!(#target.retry = #value;));
    }
    let tls = if defaults { quote!() } else { quote!(.tls) };
    for (field, days) in [
        ("expiry_warn_days", &config.expiry_warn_days),
        ("expiry_fail_days", &config.expiry_fail_days),
    ] {
        if let Some(days) = days {
            let field = Ident::new(field, Span::call_site());
            let value = wrap({
                let n = days.value;
                quote!(#n)
            });
            sets.push(quote!(#target #tls.#field = #value;));
        }
    }
    Ok(sets)
}

/// The code of `#[tcp_monitor]`: `item` unchanged, the declaring function and the
/// registration.
pub(crate) fn monitor(
    item: &TokenStream,
    function: &Function,
    config: &Config,
) -> syn::Result<TokenStream> {
    let (Some(host), Some(port)) = (&config.host, &config.port) else {
        return Err(syn::Error::new(
            Span::call_site(),
            "missing `host` or `port`",
        ));
    };
    let ident = &function.ident;
    let fn_name = ident.unraw().to_string();
    let declare = format_ident!("__tcp_monitor_declare_{}", ident.unraw());
    let id = match &config.id {
        Some(id) => {
            let id = &id.value;
            quote!(#id)
        }
        None => quote!(::monitor_core::registry::derived_id(::core::module_path!(), #fn_name)),
    };
    let host = &host.value.0;
    let port = port.value;
    let m = Ident::new("m", Span::call_site());
    let mut sets = Vec::new();

    let doc = function.doc.as_deref();
    if let Some(name) = config
        .name
        .as_ref()
        .map(|n| n.value.clone())
        .or_else(|| doc.and_then(name_from_doc))
    {
        let name = string(&name);
        sets.push(quote!(#m.name = #name;));
    }
    if let Some(text) = config
        .description
        .as_ref()
        .map(|d| d.value.as_str())
        .or(doc)
    {
        let text = some(string(text));
        sets.push(quote!(#m.description = #text;));
    }
    if let Some(group) = &config.group {
        let group = some(string(&group.value));
        sets.push(quote!(#m.group = #group;));
    }
    if let Some(family) = &config.ip_family {
        let family = variant("IpFamily", family.value);
        sets.push(quote!(#m.target.ip_family = #family;));
    }
    if let Some(version) = &config.proxy_protocol {
        let version = some(variant("ProxyProtocol", version.value));
        sets.push(quote!(#m.proxy_protocol = #version;));
    }
    if let Some(r) = &config.recipe {
        let r = some(recipe(&r.value));
        sets.push(quote!(#m.recipe = #r;));
    }

    let steps: Vec<TokenStream> = match &config.dialog {
        Some(dialog) => dialog.value.iter().map(step).collect(),
        None => [
            config.send.as_ref().map(|t| Step::Send(t.value.clone())),
            config
                .expect
                .as_ref()
                .map(|t| Step::Expect(t.value.clone())),
            config
                .expect_regex
                .as_ref()
                .map(|t| Step::ExpectRegex(t.value.clone())),
        ]
        .iter()
        .flatten()
        .map(step)
        .collect(),
    };
    if !steps.is_empty() {
        sets.push(quote!(#m.steps = ::std::vec![#(#steps),*];));
    }

    let effective = config.effective();
    if ["connect_timeout", "read_timeout", "timeout"]
        .iter()
        .any(|k| config.has(k))
    {
        let (connect, read, total) = (effective.connect, effective.read, effective.timeout);
        sets.push(quote! {
            #m.timeouts.connect_ms = #connect;
            #m.timeouts.read_ms = #read;
            #m.timeouts.total_ms = #total;
        });
    }
    if let Some(bytes) = &config.max_response_bytes {
        let bytes = bytes.value;
        sets.push(quote!(#m.max_response_bytes = #bytes;));
    }
    if ["degraded", "max", "timeout"].iter().any(|k| config.has(k)) {
        let (degraded, max) = (effective.degraded, effective.max);
        sets.push(quote! {
            #m.degraded_response_time_ms = #degraded;
            #m.max_response_time_ms = #max;
        });
    }
    for (field, flag) in [
        ("should_fail", &config.should_fail),
        ("activated", &config.activated),
        ("muted", &config.muted),
        ("run_parallel", &config.run_parallel),
        ("test_only", &config.test_only),
    ] {
        if let Some(flag) = flag {
            let field = Ident::new(field, Span::call_site());
            let flag = flag.value;
            sets.push(quote!(#m.#field = #flag;));
        }
    }
    sets.extend(shared(config, &m, false)?);

    // With `tls = "starttls"` the recipe's protocol, set explicitly.
    if let Some(protocol) = config.starttls_protocol() {
        let protocol = some(variant("StartTls", protocol));
        sets.push(quote! {
            #m.tls.mode = ::monitor_core::TlsMode::Starttls;
            #m.tls.starttls = #protocol;
        });
    } else if let Some(mode) = &config.tls {
        let mode = variant("TlsMode", mode.value);
        sets.push(quote!(#m.tls.mode = #mode;));
    }
    if let Some(name) = &config.server_name {
        let name = some(string(&name.value));
        sets.push(quote!(#m.tls.server_name = #name;));
    }
    let pem = |source: &str, text: &str| {
        let source = Ident::new(source, Span::call_site());
        let text = string(text);
        quote!(::monitor_core::PemSource::#source(#text))
    };
    if let Some(ca) = config
        .ca_file
        .as_ref()
        .map(|f| pem("Path", &f.value))
        .or_else(|| config.ca_pem.as_ref().map(|p| pem("Pem", &p.value)))
    {
        let ca = some(ca);
        sets.push(quote!(#m.tls.ca = #ca;));
    }
    if let (Some(cert), Some(key)) = (&config.client_cert_file, &config.client_key_file) {
        let (cert, key) = (pem("Path", &cert.value), pem("Path", &key.value));
        let client = some(quote!(::monitor_core::ClientCert { cert: #cert, key: #key }));
        sets.push(quote!(#m.tls.client_cert = #client;));
    }
    if let Some(version) = &config.min_tls {
        let version = variant("TlsVersion", version.value);
        sets.push(quote!(#m.tls.min_version = #version;));
    }
    if let Some(alpn) = &config.alpn {
        let alpn = strings(&alpn.value);
        sets.push(quote!(#m.tls.alpn = #alpn;));
    }
    if let Some(allow) = &config.allow_invalid {
        let allow = allow.value;
        sets.push(quote!(#m.tls.allow_invalid = #allow;));
    }
    if let Some(probe) = &config.legacy_probe {
        let probe = variant("LegacyProbe", probe.value);
        sets.push(quote!(#m.tls.legacy_probe = #probe;));
    }

    let binding = if sets.is_empty() {
        quote!(let #m)
    } else {
        quote!(let mut #m)
    };
    let explicit = config.given.iter().map(|(name, _)| name);
    Ok(quote! {
        #item

        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #declare() -> ::monitor_core::TcpMonitor {
            #binding = ::monitor_core::TcpMonitor::new(#id, #host, #port);
            #(#sets)*
            #m
        }

        ::monitor_core::__private::inventory::submit! {
            ::monitor_core::registry::Registration {
                function: #fn_name,
                module_path: ::core::module_path!(),
                file: ::core::file!(),
                line: ::core::line!(),
                explicit: &[#(#explicit),*],
                declare: #declare,
                refine: #ident,
            }
        }
    })
}

/// The code of `monitor_defaults!`: the defaults and their registration.
pub(crate) fn defaults(config: &Config) -> syn::Result<TokenStream> {
    let d = Ident::new("defaults", Span::call_site());
    let sets = shared(config, &d, true)?;
    let binding = if sets.is_empty() {
        quote!(let #d)
    } else {
        quote!(let mut #d)
    };
    Ok(quote! {
        const _: () = {
            fn __monitor_defaults() -> ::monitor_core::registry::Defaults {
                #binding = <::monitor_core::registry::Defaults as ::core::default::Default>::default();
                #(#sets)*
                #d
            }

            ::monitor_core::__private::inventory::submit! {
                ::monitor_core::registry::DefaultsRegistration {
                    file: ::core::file!(),
                    line: ::core::line!(),
                    build: __monitor_defaults,
                }
            }
        };
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequency_variants() {
        for (text, path) in [("10s", "S10"), ("1m", "M1"), ("24h", "H24")] {
            let got = frequency(text).map(|t| t.to_string()).ok();
            assert_eq!(
                got,
                Some(format!(":: monitor_core :: Frequency :: {path}")),
                "{text}"
            );
        }
        for text in crate::rules::FREQUENCIES {
            assert!(frequency(text).is_ok(), "{text}");
        }
        assert!(frequency("30").is_err());
    }
}
