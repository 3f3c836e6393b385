//! `maintenance!`: a maintenance window declared in Rust. Its keys are read into a typed
//! config (one setter per key), built into the spec's `MaintenanceWindow`, judged by the
//! spec's own `problems()`, and registered for `monitor_core::registry::maintenance()`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Expr, Lit};

use monitor_spec::maintenance::{MaintenanceWindow, Weekday, WindowSchedule};

use crate::config::Given;
use crate::parse::{self, Entry, Errors, closest, did_you_mean, unknown_key};
use crate::tokens::{Quote, spec};
use crate::value::{self, Part, Read};
use crate::wire;

/// Everything a `maintenance!` says, one field per key.
#[derive(Default)]
struct Window {
    id: Option<Given<String>>,
    name: Option<Given<String>>,
    tags: Option<Given<Vec<String>>>,
    monitors: Option<Given<Vec<String>>>,
    days: Option<Given<Vec<Weekday>>>,
    start: Option<Given<String>>,
    end: Option<Given<String>>,
    /// Every key given, in order.
    given: Vec<&'static str>,
    /// Keys whose value was rejected, or that an unknown key looks like a misspelling
    /// of: the window holds a placeholder there, so the spec's problems about it are not
    /// reported twice.
    rejected: Vec<&'static str>,
}

/// One key: its name and its setter, which reads the value and stores it (`false` when
/// it was rejected).
struct Key {
    name: &'static str,
    set: fn(&mut Window, &Entry, &mut Errors) -> bool,
}

/// A value without parts, read by `read`, as a [`Given`].
fn whole<T>(read: syn::Result<T>, entry: &Entry, errors: &mut Errors) -> Option<Given<T>> {
    errors.ok(read).map(|value| Given {
        value,
        span: entry.value.span(),
        parts: Vec::new(),
    })
}

/// A value with parts, as a [`Given`].
fn with_parts<T>(read: Option<Read<T>>, entry: &Entry) -> Option<Given<T>> {
    read.map(|Read { value, parts }| Given {
        value,
        span: entry.value.span(),
        parts,
    })
}

/// Every key of `maintenance!`, in the order the documentation gives them.
const KEYS: &[Key] = &[
    Key {
        name: "id",
        set: |w, e, errors| {
            w.id = whole(value::string(&e.value, "id"), e, errors);
            w.id.is_some()
        },
    },
    Key {
        name: "name",
        set: |w, e, errors| {
            w.name = whole(value::string(&e.value, "name"), e, errors);
            w.name.is_some()
        },
    },
    Key {
        name: "tags",
        set: |w, e, errors| {
            w.tags = with_parts(value::list(&e.value, "tags", errors), e);
            w.tags.is_some()
        },
    },
    Key {
        name: "monitors",
        set: |w, e, errors| {
            w.monitors = with_parts(value::list(&e.value, "monitors", errors), e);
            w.monitors.is_some()
        },
    },
    Key {
        name: "days",
        set: |w, e, errors| {
            w.days = with_parts(days(&e.value, errors), e);
            w.days.is_some()
        },
    },
    Key {
        name: "start",
        set: |w, e, errors| {
            w.start = whole(value::string(&e.value, "start"), e, errors);
            w.start.is_some()
        },
    },
    Key {
        name: "end",
        set: |w, e, errors| {
            w.end = whole(value::string(&e.value, "end"), e, errors);
            w.end.is_some()
        },
    },
];

/// The names of the keys.
fn names() -> Vec<&'static str> {
    KEYS.iter().map(|k| k.name).collect()
}

/// `days = [saturday, sunday]`: names of days (or strings), each a part `[i]`; a day
/// rejected is left out of the value and recorded as a part that is not `ok`. `None`
/// when the value is not a list.
fn days(e: &Expr, errors: &mut Errors) -> Option<Read<Vec<Weekday>>> {
    let valid = wire::choices::<Weekday>();
    let valid_list = valid.join(", ");
    let Expr::Array(array) = value::peel(e) else {
        errors.push(value::expected_hint(
            e,
            "a list of days",
            "days",
            "write `days = [saturday, sunday]`",
        ));
        return None;
    };
    let mut read = Read::whole(Vec::with_capacity(array.elems.len()));
    let rejected = |read: &mut Read<Vec<Weekday>>, element: &Expr| {
        read.parts.push(Part {
            path: String::new(),
            span: element.span(),
            ok: false,
        });
    };
    for element in &array.elems {
        let name = match value::peel(element) {
            Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(|i| i.unraw().to_string()),
            Expr::Lit(syn::ExprLit {
                lit: Lit::Str(s), ..
            }) => Some(s.value()),
            _ => None,
        };
        let Some(name) = name else {
            errors.push(value::expected_hint(
                element,
                "a day",
                "days",
                &format!("use one of {valid_list}"),
            ));
            rejected(&mut read, element);
            continue;
        };
        match wire::choice::<Weekday>(&name) {
            Ok(day) => {
                read.parts.push(Part {
                    path: format!("[{}]", read.value.len()),
                    span: element.span(),
                    ok: true,
                });
                read.value.push(day);
            }
            Err(_) => {
                errors.at(
                    element.span(),
                    format!(
                        "`{}` is not a day; {}use one of {valid_list}",
                        name.escape_default(),
                        did_you_mean(&name, valid.iter().map(String::as_str))
                    ),
                );
                rejected(&mut read, element);
            }
        }
    }
    Some(read)
}

impl Window {
    /// Reads every entry with its key's setter; unknown and repeated keys are errors, as
    /// is every value a setter rejects.
    fn read(entries: &[Entry], errors: &mut Errors) -> Window {
        let valid = names();
        let mut window = Window::default();
        for entry in entries {
            let name = entry.key.unraw().to_string();
            match KEYS.iter().find(|k| k.name == name) {
                Some(key) if window.given.contains(&key.name) => errors.at(
                    entry.key.span(),
                    format!("duplicate key `{name}`; each key may be given once"),
                ),
                Some(key) => {
                    window.given.push(key.name);
                    if !(key.set)(&mut window, entry, errors) {
                        window.rejected.push(key.name);
                    }
                }
                None => {
                    window.rejected.extend(
                        closest(&name, valid.iter().copied())
                            .and_then(|near| KEYS.iter().find(|k| k.name == near).map(|k| k.name)),
                    );
                    errors.at(entry.key.span(), unknown_key(&name, &valid));
                }
            }
        }
        window
    }

    /// Whether the key was given or meant (misspelled).
    fn meant(&self, key: &str) -> bool {
        self.given.contains(&key) || self.rejected.contains(&key)
    }

    /// Whether the spec holds a placeholder for this key: absent, or rejected.
    fn placeholder(&self, key: &str) -> bool {
        !self.given.contains(&key) || self.rejected.contains(&key)
    }

    /// The required keys: `id`, `start` and `end`.
    fn check_keys(&self, errors: &mut Errors) {
        for (key, example) in [
            ("id", "id = \"db-vacuum\""),
            (
                "start",
                "start = \"03:00\" with `days = [...]`, or start = \"2026-12-24T22:00:00Z\"",
            ),
            (
                "end",
                "end = \"04:00\" with `days = [...]`, or end = \"2026-12-25T02:00:00Z\"",
            ),
        ] {
            if !self.meant(key) {
                errors.at(
                    Span::call_site(),
                    format!("missing `{key}`; add `{example}`"),
                );
            }
        }
    }

    /// The window the keys declare, with placeholders where a key is missing or was
    /// rejected (a valid weekly schedule stands for a one-off one that cannot be read);
    /// an instant that does not parse is reported at its value.
    fn build(&mut self, errors: &mut Errors) -> MaintenanceWindow {
        let text = |g: &Option<Given<String>>| g.as_ref().map(|g| g.value.clone());
        let list = |g: &Option<Given<Vec<String>>>| g.as_ref().map(|g| g.value.clone());
        let placeholder = || WindowSchedule::Weekly {
            days: vec![Weekday::Monday],
            start: "00:00".to_owned(),
            end: "01:00".to_owned(),
        };
        let schedule = if self.meant("days") {
            WindowSchedule::Weekly {
                days: self
                    .days
                    .as_ref()
                    .map_or_else(|| vec![Weekday::Monday], |g| g.value.clone()),
                start: text(&self.start).unwrap_or_else(|| "00:00".to_owned()),
                end: text(&self.end).unwrap_or_else(|| "01:00".to_owned()),
            }
        } else {
            let start = self.instant("start", errors);
            let end = self.instant("end", errors);
            match (start, end) {
                (Some(start), Some(end)) => once(&start, &end).unwrap_or_else(placeholder),
                _ => placeholder(),
            }
        };
        MaintenanceWindow {
            id: text(&self.id).unwrap_or_else(|| "placeholder".to_owned()),
            name: text(&self.name),
            tags: list(&self.tags).unwrap_or_default(),
            monitors: list(&self.monitors).unwrap_or_default(),
            schedule,
        }
    }

    /// The text of `start` or `end` of a one-off window when it reads as the spec's RFC
    /// 3339 instant; `None` when absent, or unreadable (reported, and the key marked
    /// rejected).
    fn instant(&mut self, key: &'static str, errors: &mut Errors) -> Option<String> {
        let given = if key == "start" {
            self.start.as_ref()
        } else {
            self.end.as_ref()
        }?;
        let text = given.value.as_str();
        if once(text, text).is_some() {
            return Some(text.to_owned());
        }
        let hint = if text.len() == 5 && text.contains(':') {
            format!(
                "`{text}` is a time of day: a weekly window needs `days = [...]`; a one-off window takes instants such as \"2026-12-24T22:00:00Z\""
            )
        } else {
            format!(
                "`{}` is not an RFC 3339 instant such as \"2026-12-24T22:00:00Z\" (or, with `days = [...]`, a time of day `HH:MM`)",
                text.escape_default()
            )
        };
        errors.at(given.span, format!("`{key}`: {hint}"));
        self.rejected.push(key);
        None
    }

    /// The key a spec path of the window was set by.
    fn key_of(path: &str) -> &'static str {
        let head = path.split(['.', '[']).next().unwrap_or_default();
        match head {
            "schedule" => {
                if path.ends_with(".start") {
                    "start"
                } else if path.ends_with(".end") {
                    "end"
                } else {
                    "days"
                }
            }
            "tags" => "tags",
            "monitors" => "monitors",
            "name" => "name",
            _ => "id",
        }
    }

    /// The value and parts a key was given with.
    fn written(&self, key: &str) -> Option<(Span, &[Part])> {
        fn of<T>(g: &Option<Given<T>>) -> Option<(Span, &[Part])> {
            g.as_ref().map(|g| (g.span, g.parts.as_slice()))
        }
        match key {
            "id" => of(&self.id),
            "name" => of(&self.name),
            "tags" => of(&self.tags),
            "monitors" => of(&self.monitors),
            "days" => of(&self.days),
            "start" => of(&self.start),
            _ => of(&self.end),
        }
    }

    /// Runs the spec's `problems()` on `window` and reports each at the token that set
    /// its path; problems about a missing or rejected key are already reported.
    fn report(&self, window: &MaintenanceWindow, errors: &mut Errors) {
        for problem in window.problems() {
            let mut key = Self::key_of(&problem.path);
            // No tag and no monitor: at whichever list was given empty, else the macro.
            if problem.path == "tags" && !self.given.contains(&"tags") {
                key = "monitors";
            }
            if self.placeholder(key) {
                if problem.path == "tags"
                    && !self.rejected.contains(&"tags")
                    && !self.rejected.contains(&"monitors")
                {
                    errors.at(
                        Span::call_site(),
                        format!(
                            "{}: {}; add `tags = [\"db\"]` or `monitors = [\"pg-primary\"]`",
                            problem.path, problem.message
                        ),
                    );
                }
                continue;
            }
            let Some((span, parts)) = self.written(key) else {
                continue;
            };
            // A list with a rejected entry: problems of the whole list are about it.
            if !problem.path.contains('[') && parts.iter().any(|p| !p.ok) {
                continue;
            }
            let below = problem.path.find('[').map(|i| &problem.path[i..]);
            let span = below
                .and_then(|b| parts.iter().find(|p| p.path == b))
                .map_or(span, |p| p.span);
            errors.at(
                span,
                format!("`{key}` ({}): {}", problem.path, problem.message),
            );
        }
    }
}

/// The one-off schedule from `start` to `end`, read by the spec's own serde form (RFC
/// 3339), or `None` when either is not an instant.
fn once(start: &str, end: &str) -> Option<WindowSchedule> {
    wire::build::<WindowSchedule>(serde_json::json!({ "once": { "start": start, "end": end } }))
        .ok()
}

/// `maintenance!` on proc-macro2 tokens: the registration of the window, or every error
/// at once (nothing is registered then).
pub(crate) fn maintenance(input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let expanded = Parser::parse2(parse::entries, input).and_then(|entries| {
        let mut window = Window::read(&entries, &mut errors);
        window.check_keys(&mut errors);
        let built = window.build(&mut errors);
        window.report(&built, &mut errors);
        std::mem::take(&mut errors)
            .finish()
            .map(|()| expand(&built))
    });
    expanded.unwrap_or_else(syn::Error::into_compile_error)
}

/// The code of `maintenance!`: a function that makes the window again, and its
/// registration.
fn expand(window: &MaintenanceWindow) -> TokenStream {
    let spec = spec();
    let (id, name, tags, monitors) = (
        window.id.quote(),
        window.name.quote(),
        window.tags.quote(),
        window.monitors.quote(),
    );
    let private = quote!(::monitor_core::__private);
    let schedule = match &window.schedule {
        WindowSchedule::Weekly { days, start, end } => {
            let days = days.iter().map(|d| {
                let day = format_ident!("{d:?}");
                quote!(#spec::maintenance::Weekday::#day)
            });
            let (start, end) = (start.quote(), end.quote());
            quote!(#spec::maintenance::WindowSchedule::Weekly {
                days: ::std::vec![#(#days),*],
                start: #start,
                end: #end,
            })
        }
        WindowSchedule::Once { start, end } => {
            let (start, end) = (start.unix_timestamp_nanos(), end.unix_timestamp_nanos());
            quote!(#spec::maintenance::WindowSchedule::Once {
                start: #private::instant(#start),
                end: #private::instant(#end),
            })
        }
    };
    quote! {
        const _: () = {
            fn __maintenance_window() -> #spec::maintenance::MaintenanceWindow {
                #spec::maintenance::MaintenanceWindow {
                    id: #id,
                    name: #name,
                    tags: #tags,
                    monitors: #monitors,
                    schedule: #schedule,
                }
            }

            #private::inventory::submit! {
                #private::WindowRegistration {
                    file: ::core::file!(),
                    line: ::core::line!(),
                    declare: __maintenance_window,
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expansion of `input` without spaces when it registers a window, or the
    /// message of every error.
    fn expanded(input: &str) -> Result<String, Vec<String>> {
        let tokens: TokenStream = match input.parse() {
            Ok(tokens) => tokens,
            Err(why) => panic!("{input}: {why}"),
        };
        let mut errors = Errors::default();
        let result = Parser::parse2(parse::entries, tokens).map(|entries| {
            let mut window = Window::read(&entries, &mut errors);
            window.check_keys(&mut errors);
            let built = window.build(&mut errors);
            window.report(&built, &mut errors);
            built
        });
        match (result, errors.finish()) {
            (Ok(built), Ok(())) => Ok(expand(&built).to_string().replace(' ', "")),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e.into_iter().map(|e| e.to_string()).collect()),
        }
    }

    /// Checks that `input` expands to code holding each of `expected`, or fails with
    /// exactly these messages.
    fn check(input: &str, expected: Result<&[&str], &[&str]>) {
        match (expanded(input), expected) {
            (Ok(out), Ok(parts)) => {
                for part in parts {
                    assert!(out.contains(part), "{input}: {part} not in {out}");
                }
            }
            (Err(got), Err(messages)) => assert_eq!(got, messages, "{input}"),
            (got, _) => panic!("{input}: unexpected {got:?}"),
        }
    }

    const VALID: &str = "valid keys: id, name, tags, monitors, days, start, end";

    #[test]
    fn weekly_and_one_off_windows_expand_to_the_spec() {
        check(
            r#"id = "db-vacuum", name = "Weekly database vacuum", tags = ["db"],
               monitors = ["pg-primary"], days = [saturday, "sunday"], start = "03:00", end = "04:00""#,
            Ok(&[
                "id:::std::string::String::from(\"db-vacuum\")",
                "name:::core::option::Option::Some(::std::string::String::from(\"Weeklydatabasevacuum\"))",
                "tags:::std::vec![::std::string::String::from(\"db\")]",
                "days:::std::vec![::monitor_core::__private::spec::maintenance::Weekday::Saturday,::monitor_core::__private::spec::maintenance::Weekday::Sunday]",
                "start:::std::string::String::from(\"03:00\")",
                "::monitor_core::__private::inventory::submit!",
                "declare:__maintenance_window",
            ]),
        );
        check(
            r#"id = "xmas", tags = ["db"], start = "2026-12-24T22:00:00Z", end = "2026-12-25T02:00:00+00:00""#,
            Ok(&[
                "name:::core::option::Option::None",
                "monitors:::std::vec![]",
                "start:::monitor_core::__private::instant(1798149600000000000i128)",
                "end:::monitor_core::__private::instant(1798164000000000000i128)",
            ]),
        );
    }

    #[test]
    fn keys_are_checked_once_each() {
        check(
            r#"id = "a", tag = ["db"], id = "b", days = [sunday], start = "03:00", end = "04:00""#,
            Err(&[
                &format!("unknown key `tag`; did you mean `tags`? {VALID}"),
                "duplicate key `id`; each key may be given once",
            ]),
        );
        check(
            r#"tags = ["db"]"#,
            Err(&[
                "missing `id`; add `id = \"db-vacuum\"`",
                "missing `start`; add `start = \"03:00\" with `days = [...]`, or start = \"2026-12-24T22:00:00Z\"`",
                "missing `end`; add `end = \"04:00\" with `days = [...]`, or end = \"2026-12-25T02:00:00Z\"`",
            ]),
        );
        check(
            r#"id = 1, tags = "db", days = sunday, start = "03:00", end = "04:00""#,
            Err(&[
                "expected a string for `id`, found an integer",
                "expected a list of strings for `tags`, found a string; write `tags = [\"a\", \"b\"]`",
                "expected a list of days for `days`, found a name; write `days = [saturday, sunday]`",
            ]),
        );
    }

    #[test]
    fn the_spec_judges_the_window() {
        check(
            r#"id = "w", days = [sundy, 3, sunday], start = "3:00", end = "24:00""#,
            Err(&[
                "`sundy` is not a day; did you mean `sunday`? use one of monday, tuesday, wednesday, thursday, friday, saturday, sunday",
                "expected a day for `days`, found an integer; use one of monday, tuesday, wednesday, thursday, friday, saturday, sunday",
                "tags: a window selects at least one tag or monitor id; add `tags = [\"db\"]` or `monitors = [\"pg-primary\"]`",
                "`start` (schedule.weekly.start): `3:00` is not a time of day `HH:MM` (00:00 to 23:59)",
                "`end` (schedule.weekly.end): `24:00` is not a time of day `HH:MM` (00:00 to 23:59)",
            ]),
        );
        // A rejected day leaves the others judged: a duplicate still shows.
        check(
            r#"id = "w", tags = ["db"], days = [sundy, sunday, sunday], start = "03:00", end = "04:00""#,
            Err(&[
                "`sundy` is not a day; did you mean `sunday`? use one of monday, tuesday, wednesday, thursday, friday, saturday, sunday",
                "`days` (schedule.weekly.days[1]): duplicate day",
            ]),
        );
        check(
            r#"id = "w", tags = ["db"], days = [1], start = "03:00", end = "04:00""#,
            Err(&[
                "expected a day for `days`, found an integer; use one of monday, tuesday, wednesday, thursday, friday, saturday, sunday",
            ]),
        );
        check(
            r#"id = "w w", tags = ["db", "db", ""], monitors = [], days = [sunday, sunday], start = "03:00", end = "03:00""#,
            Err(&[
                "`id` (id): `w w` contains ` `; use 1 to 128 characters: letters, digits, `-`, `_`, `.`, `:` and `/`",
                "`tags` (tags[1]): duplicate of tags[0]",
                "`tags` (tags[2]): must not be empty or blank",
                "`days` (schedule.weekly.days[1]): duplicate day",
                "`end` (schedule.weekly.end): must differ from start",
            ]),
        );
        check(
            r#"id = "w", monitors = [], start = "2026-12-25T02:00:00Z", end = "2026-12-24T22:00:00Z""#,
            Err(&[
                "`monitors` (tags): a window selects at least one tag or monitor id",
                "`end` (schedule.once.end): must be after start",
            ]),
        );
        check(
            r#"id = "w", tags = ["db"], start = "03:00", end = "tomorrow""#,
            Err(&[
                "`start`: `03:00` is a time of day: a weekly window needs `days = [...]`; a one-off window takes instants such as \"2026-12-24T22:00:00Z\"",
                "`end`: `tomorrow` is not an RFC 3339 instant such as \"2026-12-24T22:00:00Z\" (or, with `days = [...]`, a time of day `HH:MM`)",
            ]),
        );
    }

    #[test]
    fn odd_input_is_an_error_never_a_panic() {
        for input in [
            "id",
            "= 1",
            "id = \"a\" tags = []",
            "days = [[monday]], start = 3, end = b\"x\"",
            "days = [a::b, (x)], start = \"99:99\", end = \"00:00\"",
            "id = concat!(\"a\"), tags = [r#\"x\"#, 'c'], start = \"\", end = \"\"",
            "íd = \"a\"",
        ] {
            let tokens: TokenStream = input.parse().unwrap_or_default();
            let out = maintenance(tokens).to_string();
            assert!(out.contains("compile_error"), "{input}: {out}");
            assert!(!out.contains("submit"), "{input}: {out}");
        }
    }
}
