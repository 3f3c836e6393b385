//! The generated code: for `#[tcp_monitor]`, the function unchanged, a hidden function
//! that declares the monitor the macro built and validated, and its registration; for
//! `monitor_defaults!`, the defaults and their registration. Every path is absolute and
//! hidden (`::monitor_core::__private`), so no import is needed.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;
use syn::ext::IdentExt;

use monitor_spec::TcpMonitor;

use crate::config::Config;
use crate::item::{Function, name_from_doc};
use crate::tokens::{Quote, spec};

/// `private` of `::monitor_core::__private::{private}`.
fn private(name: &str) -> TokenStream {
    let name = Ident::new(name, Span::call_site());
    quote!(::monitor_core::__private::#name)
}

/// Assignments to `m` for each field where `built` differs from `base`.
macro_rules! differences {
    ($sets:ident, $m:ident, $built:ident, $base:ident; $($($field:ident).+),* $(,)?) => {
        $(if $built.$($field).+ != $base.$($field).+ {
            let value = Quote::quote(&$built.$($field).+);
            $sets.push(quote!(#$m.$($field).+ = #value;));
        })*
    };
}

/// The code of `#[tcp_monitor]`: `item` unchanged, the declaring function and the
/// registration. `built` is the monitor the macro built and validated; the generated
/// function makes it again, with the id `registry::derived_id` gives unless `id` is set.
pub(crate) fn monitor(
    item: &TokenStream,
    function: &Function,
    config: &Config,
    built: &TcpMonitor,
) -> TokenStream {
    let spec = spec();
    let ident = &function.ident;
    let fn_name = ident.unraw().to_string();
    let declare = format_ident!("__tcp_monitor_declare_{}", ident.unraw());
    let id = match &config.id {
        Some(_) => built.id.quote(),
        None => {
            let derived_id = private("derived_id");
            quote!(#derived_id(::core::module_path!(), #fn_name))
        }
    };
    let base = TcpMonitor::new(
        built.id.clone(),
        built.target.host.clone(),
        built.target.port,
    );
    let m = Ident::new("m", Span::call_site());
    let mut sets = Vec::new();
    if config.name.is_some() || function.doc.as_deref().and_then(name_from_doc).is_some() {
        let name = built.name.quote();
        sets.push(quote!(#m.name = #name;));
    }
    differences! { sets, m, built, base;
        description, tags, group, target.ip_family, steps, recipe, proxy_protocol,
        tls.mode, tls.starttls, tls.server_name, tls.ca, tls.client_cert, tls.min_version,
        tls.alpn, tls.allow_invalid, tls.expiry_warn_days, tls.expiry_fail_days,
        tls.legacy_probe, tls.ocsp, tls.policy, timeouts.connect_ms, timeouts.read_ms, timeouts.total_ms,
        max_response_bytes, degraded_response_time_ms, max_response_time_ms, should_fail,
        frequency, locations, private_locations, activated, muted, run_parallel, test_only,
        alert_channels, retry,
    }
    let (host, port) = (built.target.host.quote(), &built.target.port);
    let binding = if sets.is_empty() {
        quote!(let #m)
    } else {
        quote!(let mut #m)
    };
    let explicit = config.given.iter().map(|(name, _)| name);
    let (inventory, registration) = (private("inventory"), private("Registration"));
    quote! {
        #item

        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #declare() -> #spec::TcpMonitor {
            #binding = #spec::TcpMonitor::new(#id, #host, #port);
            #(#sets)*
            #m
        }

        #inventory::submit! {
            #registration {
                function: #fn_name,
                module_path: ::core::module_path!(),
                file: ::core::file!(),
                line: ::core::line!(),
                explicit: &[#(#explicit),*],
                declare: #declare,
                refine: #ident,
            }
        }
    }
}

/// The code of `monitor_defaults!`: each key given, as the placeholder monitor `built`
/// holds it, and the registration.
pub(crate) fn defaults(config: &Config, built: &TcpMonitor) -> TokenStream {
    let d = Ident::new("defaults", Span::call_site());
    let sets: Vec<TokenStream> = config
        .given
        .iter()
        .filter_map(|(key, _)| {
            let value = match *key {
                "frequency" => built.frequency.quote(),
                "locations" => built.locations.quote(),
                "private_locations" => built.private_locations.quote(),
                "tags" => built.tags.quote(),
                "retry" => built.retry.quote(),
                "alert_channels" => built.alert_channels.quote(),
                "expiry_warn_days" => built.tls.expiry_warn_days.quote(),
                "expiry_fail_days" => built.tls.expiry_fail_days.quote(),
                _ => return None,
            };
            let field = Ident::new(key, Span::call_site());
            Some(quote!(#d.#field = ::core::option::Option::Some(#value);))
        })
        .collect();
    let binding = if sets.is_empty() {
        quote!(let #d)
    } else {
        quote!(let mut #d)
    };
    let (inventory, registration, defaults) = (
        private("inventory"),
        private("DefaultsRegistration"),
        private("Defaults"),
    );
    quote! {
        const _: () = {
            fn __monitor_defaults() -> #defaults {
                #binding = <#defaults as ::core::default::Default>::default();
                #(#sets)*
                #d
            }

            #inventory::submit! {
                #registration {
                    file: ::core::file!(),
                    line: ::core::line!(),
                    build: __monitor_defaults,
                }
            }
        };
    }
}
