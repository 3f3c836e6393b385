//! `cargo xtask architecture`: the rules the workspace's layout keeps, checked from the
//! source text: no module imports one that imports it back (directly or through others),
//! and no source file outside tests is over [`MAX_LINES`] lines.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The most lines a source file outside tests may have.
pub const MAX_LINES: usize = 900;

/// A module of a crate, as its path below the crate root (`["engine", "tls"]`).
type Module = Vec<String>;

/// Every problem found in the crates under `root` (those with a `src/` folder).
pub fn check(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut crates: Vec<PathBuf> = fs::read_dir(root)
        .with_context(|| format!("cannot list {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file() && p.join("src").is_dir())
        .collect();
    crates.sort();
    for dir in crates {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        let files = sources(&dir.join("src"))?;
        for (path, text) in files.values() {
            let lines = text.lines().count();
            if lines > MAX_LINES {
                problems.push(format!(
                    "{}: {lines} lines, over {MAX_LINES}: split it by role",
                    path.display()
                ));
            }
        }
        let graph: BTreeMap<Module, BTreeSet<Module>> = files
            .iter()
            .map(|(m, (_, text))| (m.clone(), imports(m, text, &files)))
            .collect();
        for cycle in cycles(&graph) {
            let names: Vec<String> = cycle.iter().map(|m| shown(m)).collect();
            problems.push(format!("{name}: import loop among {}", names.join(", ")));
        }
    }
    Ok(problems)
}

/// `cargo xtask architecture`: fails naming every problem.
pub fn run(root: &Path) -> Result<()> {
    let problems = check(root)?;
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

fn shown(m: &[String]) -> String {
    if m.is_empty() {
        "crate root".to_owned()
    } else {
        m.join("::")
    }
}

/// Every `.rs` file below `src`, by module, with its text (unit tests cut off).
fn sources(src: &Path) -> Result<BTreeMap<Module, (PathBuf, String)>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap_or(&path).with_extension("");
            let mut module: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|l| l == "mod") || module == ["lib"] || module == ["main"]
            {
                module.pop();
            }
            let text = fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let text = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            out.insert(module, (path, text));
        }
    }
    Ok(out)
}

/// The modules of the crate that `module` imports through `crate::`, `super::` or
/// `self::` paths, use trees expanded; items re-exported by the crate root count as
/// imports of the module that defines them.
fn imports(
    module: &Module,
    text: &str,
    files: &BTreeMap<Module, (PathBuf, String)>,
) -> BTreeSet<Module> {
    let root_exports = files
        .get(&Vec::new())
        .map(|(_, t)| reexports(t))
        .unwrap_or_default();
    let mut out = BTreeSet::new();
    for path in paths(text) {
        let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        let mut base: Module = match parts.first().copied() {
            Some("crate") => Vec::new(),
            Some("self") => module.clone(),
            Some("super") => module[..module.len().saturating_sub(1)].to_vec(),
            _ => continue,
        };
        parts.remove(0);
        while parts.first() == Some(&"super") {
            base.pop();
            parts.remove(0);
        }
        let mut full: Module = base
            .iter()
            .cloned()
            .chain(parts.iter().map(|p| (*p).to_owned()))
            .collect();
        // `crate::Name` re-exported by the crate root: the module that defines it.
        if let Some(defined) = full
            .first()
            .filter(|first| base.is_empty() && !files.contains_key(&vec![(*first).clone()]))
            .and_then(|first| root_exports.get(first))
        {
            full = defined.iter().cloned().chain(full).collect();
        }
        let target = (0..=full.len())
            .rev()
            .map(|k| full[..k].to_vec())
            .find(|m| files.contains_key(m));
        if let Some(target) = target.filter(|t| t != module) {
            out.insert(target);
        }
    }
    out
}

/// The paths of `text` that start with `crate`, `super` or `self`, use trees expanded.
fn paths(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    for tree in use_trees(&code, false) {
        expand("", &tree, &mut out);
    }
    let bytes = code.as_bytes();
    for head in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(head) {
            let start = from + at;
            from = start + head.len();
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
                continue;
            }
            let end = code[start..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| start + e);
            let path = code[start..end].trim_end_matches(':');
            // `use super::{...}` is expanded above; a bare head names no module.
            if path.len() > head.len() {
                out.push(path.to_owned());
            }
        }
    }
    out
}

/// The trees of the `use` declarations of `code` (only the `pub use` ones when
/// `public`), white space removed: `crate::a::{B, C}`.
fn use_trees(code: &str, public: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(line_start) = next_use(rest, public) {
        let decl = &rest[line_start..];
        let end = decl.find(';').unwrap_or(decl.len());
        let tree = &decl[decl.find("use ").map_or(0, |u| u + 4)..end];
        out.push(tree.split_whitespace().collect());
        rest = &decl[end..];
    }
    out
}

/// Where the next line that starts a `use` declaration begins.
fn next_use(code: &str, public: bool) -> Option<usize> {
    let mut at = 0;
    for line in code.split_inclusive('\n') {
        let t = line.trim_start();
        let visible = ["pub use ", "pub(crate) use ", "pub(super) use "]
            .iter()
            .any(|p| t.starts_with(p));
        if visible || (!public && t.starts_with("use ")) {
            return Some(at + (line.len() - t.len()));
        }
        at += line.len();
    }
    None
}

/// Flattens a use tree `a::{b, c::{d}}` into `a::b`, `a::c::d`.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let Some(open) = tree.find('{') else {
        let name = tree.split(" as ").next().unwrap_or(tree);
        out.push(format!("{prefix}{name}"));
        return;
    };
    let head = &tree[..open];
    let close = tree.rfind('}').filter(|&c| c > open).unwrap_or(tree.len());
    let inner = &tree[open + 1..close];
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                expand(&format!("{prefix}{head}"), &inner[start..i], out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < inner.len() {
        expand(&format!("{prefix}{head}"), &inner[start..], out);
    }
}

/// Names the crate root re-exports, with the module they come from.
fn reexports(root: &str) -> BTreeMap<String, Module> {
    let mut out = BTreeMap::new();
    let mut found = Vec::new();
    for tree in use_trees(root, true) {
        expand("", &tree, &mut found);
    }
    for path in found {
        let mut parts: Vec<String> = path
            .split("::")
            .filter(|p| !p.is_empty() && *p != "crate" && *p != "self")
            .map(str::to_owned)
            .collect();
        if let Some(name) = parts.pop() {
            out.insert(name, parts);
        }
    }
    out
}

/// The strongly connected groups of more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on: BTreeSet<&'a Module>,
        found: Vec<Vec<Module>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a Module) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        w.on.insert(v);
        for u in w.graph.get(v).into_iter().flatten() {
            let Some((u, _)) = w.graph.get_key_value(u) else {
                continue;
            };
            if !w.index.contains_key(u) {
                visit(w, u);
                let lu = w.low[u];
                if let Some(l) = w.low.get_mut(v) {
                    *l = (*l).min(lu);
                }
            } else if w.on.contains(u) {
                let iu = w.index[u];
                if let Some(l) = w.low.get_mut(v) {
                    *l = (*l).min(iu);
                }
            }
        }
        if w.low[v] == w.index[v] {
            let mut group = Vec::new();
            while let Some(u) = w.stack.pop() {
                w.on.remove(u);
                group.push(u.clone());
                if u == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                w.found.push(group);
            }
        }
    }
    let mut w = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !w.index.contains_key(v) {
            visit(&mut w, v);
        }
    }
    w.found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_tree(tree: &str, expected: &[&str]) {
        let mut out = Vec::new();
        expand("", tree, &mut out);
        assert_eq!(out, expected, "{tree}");
    }

    #[test]
    fn use_trees_expand() {
        check_tree("crate::a::B", &["crate::a::B"]);
        check_tree(
            "super::{a,b::{C,D}}",
            &["super::a", "super::b::C", "super::b::D"],
        );
        check_tree("crate::x as y", &["crate::x"]);
    }

    fn module(m: &str) -> Module {
        m.split("::")
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_loop_through_three_modules_is_found_and_a_chain_is_not() {
        let files: BTreeMap<Module, (PathBuf, String)> = [
            ("", "mod a;\nmod b;\nmod c;\nmod d;\npub use c::Thing;"),
            ("a", "use crate::b::X;"),
            ("b", "use super::Thing;"),
            (
                "c",
                "use crate::{a::Y, d};\nconst S: &str = \"use super::b;\";",
            ),
            ("d", "fn f() {}"),
        ]
        .into_iter()
        .map(|(m, t)| (module(m), (PathBuf::new(), t.to_owned())))
        .collect();
        let graph = files
            .iter()
            .map(|(m, (_, t))| (m.clone(), imports(m, t, &files)))
            .collect();
        assert_eq!(
            cycles(&graph),
            vec![vec![module("a"), module("b"), module("c")]]
        );
    }

    /// The workspace itself keeps the rules.
    #[test]
    fn the_workspace_has_no_import_loop_and_no_oversized_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let problems = check(&root).expect("the workspace can be read");
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
