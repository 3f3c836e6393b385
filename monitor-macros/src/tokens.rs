//! Spec values as Rust code: each `monitor_spec` value the macro built, written as the
//! expression that makes it again, through the hidden path `::monitor_core::__private`.

use std::fmt::Debug;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Ident;

use monitor_spec::login::Login;
use monitor_spec::{
    Backoff, ClientCert, Expect, Frequency, IpFamily, LegacyProbe, OcspMode, Payload, PemSource,
    ProxyProtocol, ReadUntil, Recipe, RetryStrategy, StartTls, Step, TlsMode, TlsPolicy,
    TlsVersion,
};

/// `::monitor_core::__private::spec`: the spec crate, as generated code names it.
pub(crate) fn spec() -> TokenStream {
    quote!(::monitor_core::__private::spec)
}

/// A value written as the expression that makes it.
pub(crate) trait Quote {
    /// The expression.
    fn quote(&self) -> TokenStream;
}

impl Quote for String {
    fn quote(&self) -> TokenStream {
        quote!(::std::string::String::from(#self))
    }
}

/// Numbers and booleans are their own literals.
macro_rules! literal {
    ($($ty:ty),*) => {
        $(impl Quote for $ty {
            fn quote(&self) -> TokenStream {
                quote!(#self)
            }
        })*
    };
}

literal!(u16, u32, bool);

impl<T: Quote> Quote for Vec<T> {
    fn quote(&self) -> TokenStream {
        let items = self.iter().map(Quote::quote);
        quote!(::std::vec![#(#items),*])
    }
}

impl<T: Quote> Quote for Option<T> {
    fn quote(&self) -> TokenStream {
        match self {
            Some(value) => {
                let value = value.quote();
                quote!(::core::option::Option::Some(#value))
            }
            None => quote!(::core::option::Option::None),
        }
    }
}

/// `spec::Type::Variant` of a unit variant, named by its derived `Debug`.
fn unit(ty: &str, value: &impl Debug) -> TokenStream {
    let spec = spec();
    let ty = Ident::new(ty, Span::call_site());
    let variant = Ident::new(&format!("{value:?}"), Span::call_site());
    quote!(#spec::#ty::#variant)
}

/// The enums whose variants are all units.
macro_rules! units {
    ($($ty:ident),*) => {
        $(impl Quote for $ty {
            fn quote(&self) -> TokenStream {
                unit(stringify!($ty), self)
            }
        })*
    };
}

units!(
    Frequency,
    IpFamily,
    LegacyProbe,
    OcspMode,
    ProxyProtocol,
    StartTls,
    TlsMode,
    TlsPolicy,
    TlsVersion
);

/// `spec::Type::Variant(inner)` of a variant holding one value.
fn newtype(ty: &str, variant: &str, inner: &impl Quote) -> TokenStream {
    let spec = spec();
    let (ty, variant) = (
        Ident::new(ty, Span::call_site()),
        Ident::new(variant, Span::call_site()),
    );
    let inner = inner.quote();
    quote!(#spec::#ty::#variant(#inner))
}

impl Quote for Payload {
    fn quote(&self) -> TokenStream {
        match self {
            Payload::Text(t) => newtype("Payload", "Text", t),
            Payload::Hex(h) => newtype("Payload", "Hex", h),
        }
    }
}

impl Quote for Expect {
    fn quote(&self) -> TokenStream {
        match self {
            Expect::Contains(t) => newtype("Expect", "Contains", t),
            Expect::Regex(r) => newtype("Expect", "Regex", r),
            Expect::Exact(p) => newtype("Expect", "Exact", p),
        }
    }
}

impl Quote for ReadUntil {
    fn quote(&self) -> TokenStream {
        match self {
            ReadUntil::Delimiter(d) => newtype("ReadUntil", "Delimiter", d),
            ReadUntil::Bytes(n) => newtype("ReadUntil", "Bytes", n),
            ReadUntil::Close => unit("ReadUntil", self),
            ReadUntil::Any => unit("ReadUntil", self),
        }
    }
}

impl Quote for Step {
    fn quote(&self) -> TokenStream {
        match self {
            Step::Send(p) => newtype("Step", "Send", p),
            Step::Expect(e) => newtype("Step", "Expect", e),
            Step::Read(r) => newtype("Step", "Read", r),
        }
    }
}

impl Quote for Backoff {
    fn quote(&self) -> TokenStream {
        let spec = spec();
        let Backoff {
            base_backoff_seconds,
            max_retries,
            max_duration_seconds,
            same_region,
        } = self;
        quote!(#spec::Backoff {
            base_backoff_seconds: #base_backoff_seconds,
            max_retries: #max_retries,
            max_duration_seconds: #max_duration_seconds,
            same_region: #same_region,
        })
    }
}

impl Quote for RetryStrategy {
    fn quote(&self) -> TokenStream {
        let spec = spec();
        match self {
            RetryStrategy::None => quote!(#spec::RetryStrategy::None),
            RetryStrategy::SingleRetry {
                base_backoff_seconds,
                same_region,
            } => quote!(#spec::RetryStrategy::SingleRetry {
                base_backoff_seconds: #base_backoff_seconds,
                same_region: #same_region,
            }),
            RetryStrategy::Fixed(b) => newtype("RetryStrategy", "Fixed", b),
            RetryStrategy::Linear(b) => newtype("RetryStrategy", "Linear", b),
            RetryStrategy::Exponential(b) => newtype("RetryStrategy", "Exponential", b),
        }
    }
}

impl Quote for Recipe {
    fn quote(&self) -> TokenStream {
        let spec = spec();
        match self {
            Recipe::Postgres {
                user,
                database,
                login,
            } => {
                let (user, database, login) = (user.quote(), database.quote(), login.quote());
                quote!(#spec::Recipe::Postgres { user: #user, database: #database, login: #login })
            }
            Recipe::Smtp { helo, login } => {
                let (helo, login) = (helo.quote(), login.quote());
                quote!(#spec::Recipe::Smtp { helo: #helo, login: #login })
            }
            Recipe::Redis {
                password_env,
                username,
                role,
            } => {
                let (password_env, username, role) =
                    (password_env.quote(), username.quote(), role.quote());
                quote!(#spec::Recipe::Redis { password_env: #password_env, username: #username, role: #role })
            }
            Recipe::Memcached { key } => {
                let key = key.quote();
                quote!(#spec::Recipe::Memcached { key: #key })
            }
            Recipe::Mysql { login }
            | Recipe::Mongodb { login }
            | Recipe::Imap { login }
            | Recipe::Pop3 { login }
            | Recipe::Ftp { login }
            | Recipe::Ldap { login } => {
                let variant = quote::format_ident!("{}", variant_name(self));
                let login = login.quote();
                quote!(#spec::Recipe::#variant { login: #login })
            }
            Recipe::Ssh => unit("Recipe", self),
        }
    }
}

/// The Rust name of a recipe's variant: `Mysql` for `mysql`.
fn variant_name(recipe: &Recipe) -> String {
    let name = recipe.name();
    name[..1].to_ascii_uppercase() + &name[1..]
}

impl Quote for Login {
    fn quote(&self) -> TokenStream {
        let spec = spec();
        let Login {
            user,
            password_env,
            password_file,
            query,
            database,
            allow_plaintext,
        } = self;
        let (user, password_env, password_file, query, database, allow_plaintext) = (
            user.quote(),
            password_env.quote(),
            password_file.quote(),
            query.quote(),
            database.quote(),
            allow_plaintext.quote(),
        );
        quote!(#spec::login::Login {
            user: #user,
            password_env: #password_env,
            password_file: #password_file,
            query: #query,
            database: #database,
            allow_plaintext: #allow_plaintext,
        })
    }
}

impl Quote for PemSource {
    fn quote(&self) -> TokenStream {
        match self {
            PemSource::Path(p) => newtype("PemSource", "Path", p),
            PemSource::Pem(p) => newtype("PemSource", "Pem", p),
        }
    }
}

impl Quote for ClientCert {
    fn quote(&self) -> TokenStream {
        let spec = spec();
        let (cert, key) = (self.cert.quote(), self.key.quote());
        quote!(#spec::ClientCert { cert: #cert, key: #key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_quote_as_their_constructors() {
        let text = |q: &dyn Quote| q.quote().to_string().replace(' ', "");
        assert_eq!(
            text(&Frequency::M5),
            "::monitor_core::__private::spec::Frequency::M5"
        );
        assert_eq!(
            text(&Some(Recipe::redis_auth("PW"))),
            "::core::option::Option::Some(::monitor_core::__private::spec::Recipe::Redis{password_env:::core::option::Option::Some(::std::string::String::from(\"PW\")),username:::core::option::Option::None,role:false})"
        );
        assert_eq!(
            text(&Step::Read(ReadUntil::Bytes(4))),
            "::monitor_core::__private::spec::Step::Read(::monitor_core::__private::spec::ReadUntil::Bytes(4u32))"
        );
    }
}
