//! The item under `#[tcp_monitor]`: it must be a plain `fn NAME(m: TcpMonitor) ->
//! TcpMonitor`, and its doc comment gives the monitor's name and description.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, FnArg, Ident, Item, ItemFn, Lit, Meta, ReturnType, Type};

use crate::parse::Errors;

/// The monitor function, as far as the generated code needs it.
pub(crate) struct Function {
    /// Its name.
    pub ident: Ident,
    /// Its doc comment, common indentation removed, if it has one.
    pub doc: Option<String>,
}

/// Checks that `item` is a function with the monitor signature; every problem goes to
/// `errors`.
pub(crate) fn function(item: &TokenStream, errors: &mut Errors) -> Option<Function> {
    let item = match syn::parse2::<Item>(item.clone()) {
        Ok(item) => item,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let Item::Fn(f) = item else {
        let (kind, span) = kind(&item);
        errors.at(
            span,
            format!("`#[tcp_monitor]` goes on a function `fn NAME(m: TcpMonitor) -> TcpMonitor`, not on {kind}"),
        );
        return None;
    };
    let mut problems = Errors::default();
    signature(&f, &mut problems);
    match problems.finish() {
        Ok(()) => Some(Function {
            ident: f.sig.ident.clone(),
            doc: doc(&f.attrs),
        }),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

/// What a non-function item is, and the span of its keyword.
fn kind(item: &Item) -> (&'static str, Span) {
    match item {
        Item::Struct(i) => ("a struct", i.struct_token.span),
        Item::Enum(i) => ("an enum", i.enum_token.span),
        Item::Union(i) => ("a union", i.union_token.span),
        Item::Const(i) => ("a constant", i.const_token.span),
        Item::Static(i) => ("a static", i.static_token.span),
        Item::Mod(i) => ("a module", i.mod_token.span),
        Item::Impl(i) => ("an impl block", i.impl_token.span),
        Item::Trait(i) => ("a trait", i.trait_token.span),
        Item::TraitAlias(i) => ("a trait alias", i.trait_token.span),
        Item::Type(i) => ("a type alias", i.type_token.span),
        Item::Use(i) => ("a `use`", i.use_token.span),
        Item::ExternCrate(i) => ("an `extern crate`", i.extern_token.span),
        Item::ForeignMod(i) => ("an extern block", i.abi.extern_token.span),
        Item::Macro(i) => ("a macro", i.mac.path.span()),
        _ => ("this item", item.span()),
    }
}

/// Checks the signature `fn NAME(m: TcpMonitor) -> TcpMonitor`.
fn signature(f: &ItemFn, errors: &mut Errors) {
    let sig = &f.sig;
    let expected = format!("fn {}(m: TcpMonitor) -> TcpMonitor", sig.ident.unraw());
    let message = |problem: &str| format!("{problem}; a monitor function is `{expected}`");
    if let Some(t) = &sig.constness {
        errors.at(t.span, message("a monitor function cannot be `const`"));
    }
    if let Some(t) = &sig.asyncness {
        errors.at(
            t.span,
            message("a monitor function cannot be `async`: it refines the monitor when the registry is built"),
        );
    }
    if let Some(t) = &sig.unsafety {
        errors.at(t.span, message("a monitor function cannot be `unsafe`"));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            message("a monitor function cannot have an ABI"),
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            message("a monitor function cannot be generic"),
        ));
    }
    if let Some(w) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(
            w,
            message("a monitor function cannot have a `where` clause"),
        ));
    }
    if let Some(v) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            v,
            message("a monitor function cannot be variadic"),
        ));
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        None => errors.at(
            sig.paren_token.span.join(),
            message("a monitor function takes the monitor as its one argument"),
        ),
        Some(FnArg::Receiver(r)) => errors.push(syn::Error::new_spanned(
            r,
            message("a monitor function cannot take `self`"),
        )),
        Some(FnArg::Typed(arg)) if !is_tcp_monitor(&arg.ty) => {
            errors.push(syn::Error::new_spanned(
                &arg.ty,
                message(
                    "the argument of a monitor function must be a `TcpMonitor`, taken by value",
                ),
            ));
        }
        Some(FnArg::Typed(_)) => {}
    }
    for extra in inputs {
        errors.push(syn::Error::new_spanned(
            extra,
            message("a monitor function takes exactly one argument, the monitor"),
        ));
    }
    match &sig.output {
        ReturnType::Default => errors.at(
            sig.paren_token.span.close(),
            message("a monitor function must return the monitor: add `-> TcpMonitor`"),
        ),
        ReturnType::Type(_, ty) if !is_tcp_monitor(ty) => errors.push(syn::Error::new_spanned(
            ty,
            message("a monitor function must return a `TcpMonitor`"),
        )),
        ReturnType::Type(..) => {}
    }
}

/// Whether a type is written `TcpMonitor` (any path ending so, without arguments).
fn is_tcp_monitor(ty: &Type) -> bool {
    match ty {
        Type::Group(g) => is_tcp_monitor(&g.elem),
        Type::Paren(p) => is_tcp_monitor(&p.elem),
        Type::Path(p) => {
            p.qself.is_none()
                && p.path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "TcpMonitor" && s.arguments.is_none())
        }
        _ => false,
    }
}

/// The doc comment's text, common indentation removed and blank lines at either end
/// trimmed; `None` when there is no text.
fn doc(attrs: &[Attribute]) -> Option<String> {
    let mut lines: Vec<String> = Vec::new();
    for attr in attrs {
        if let Meta::NameValue(nv) = &attr.meta
            && nv.path.is_ident("doc")
            && let Expr::Lit(syn::ExprLit {
                lit: Lit::Str(s), ..
            }) = &nv.value
        {
            // `split`, not `lines`: an empty `///` line is a paragraph break to keep.
            lines.extend(
                s.value()
                    .split('\n')
                    .map(|l| l.trim_end_matches('\r').to_owned()),
            );
        }
    }
    let leading = |line: &str| {
        line.bytes()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count()
    };
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| leading(l))
        .min()
        .unwrap_or(0);
    let text = lines
        .iter()
        .map(|l| {
            l.get(indent.min(leading(l))..)
                .unwrap_or_default()
                .trim_end()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The name a doc comment gives: the first sentence of its first line, without a final
/// period or a Markdown heading's `#`s.
pub(crate) fn name_from_doc(doc: &str) -> Option<String> {
    let line = doc.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = line.trim_start_matches('#').trim();
    let sentence = match line.find(". ") {
        Some(end) => line.get(..end).unwrap_or(line),
        None => line.strip_suffix('.').unwrap_or(line),
    };
    let sentence = sentence.trim();
    (!sentence.is_empty()).then(|| sentence.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(&str, Option<&str>), &[&str]>) {
        let item: TokenStream = match input.parse() {
            Ok(item) => item,
            Err(why) => panic!("{input}: {why}"),
        };
        let mut errors = Errors::default();
        let got = function(&item, &mut errors);
        let got = match errors.finish() {
            Ok(()) => Ok(got.map(|f| (f.ident.to_string(), f.doc))),
            Err(e) => Err(e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>()),
        };
        let expected = expected
            .map(|(name, doc)| Some((name.to_owned(), doc.map(str::to_owned))))
            .map_err(|m| m.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, expected, "{input}");
    }

    #[test]
    fn signatures() {
        check(
            "fn redis(m: TcpMonitor) -> TcpMonitor { m }",
            Ok(("redis", None)),
        );
        check(
            "pub fn redis(mut m: monitor_core::TcpMonitor) -> ::monitor_core::TcpMonitor { m }",
            Ok(("redis", None)),
        );
        let expected = "a monitor function is `fn redis(m: TcpMonitor) -> TcpMonitor`";
        check(
            "async unsafe fn redis<T>(m: &TcpMonitor, n: u8) where T: Copy {}",
            Err(&[
                &format!(
                    "a monitor function cannot be `async`: it refines the monitor when the registry is built; {expected}"
                ),
                &format!("a monitor function cannot be `unsafe`; {expected}"),
                &format!("a monitor function cannot be generic; {expected}"),
                &format!("a monitor function cannot have a `where` clause; {expected}"),
                &format!(
                    "the argument of a monitor function must be a `TcpMonitor`, taken by value; {expected}"
                ),
                &format!("a monitor function takes exactly one argument, the monitor; {expected}"),
                &format!(
                    "a monitor function must return the monitor: add `-> TcpMonitor`; {expected}"
                ),
            ]),
        );
        check(
            "const extern \"C\" fn redis() -> u8 { 0 }",
            Err(&[
                &format!("a monitor function cannot be `const`; {expected}"),
                &format!("a monitor function cannot have an ABI; {expected}"),
                &format!("a monitor function takes the monitor as its one argument; {expected}"),
                &format!("a monitor function must return a `TcpMonitor`; {expected}"),
            ]),
        );
        check(
            "struct Redis;",
            Err(&[
                "`#[tcp_monitor]` goes on a function `fn NAME(m: TcpMonitor) -> TcpMonitor`, not on a struct",
            ]),
        );
    }

    #[test]
    fn docs() {
        check(
            "/// Redis cache answers PING.\n///\n/// Checked from every region.\n///     indented\nfn redis(m: TcpMonitor) -> TcpMonitor { m }",
            Ok((
                "redis",
                Some("Redis cache answers PING.\n\nChecked from every region.\n    indented"),
            )),
        );
        check(
            "/**\n   Block doc.\n   Second line.\n */\nfn redis(m: TcpMonitor) -> TcpMonitor { m }",
            Ok(("redis", Some("Block doc.\nSecond line."))),
        );
        for (doc, name) in [
            (
                "Redis cache answers PING.",
                Some("Redis cache answers PING"),
            ),
            ("Redis answers. Checked often.", Some("Redis answers")),
            ("# Redis\n\nMore.", Some("Redis")),
            ("No period", Some("No period")),
            ("\n\nLater line.", Some("Later line")),
            (".", None),
            ("", None),
        ] {
            assert_eq!(name_from_doc(doc).as_deref(), name, "{doc:?}");
        }
    }
}
