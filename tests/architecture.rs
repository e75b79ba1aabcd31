//! The shape of the code, read from the source itself (docs/architecture.md, "Layers"):
//!
//! - no import cycles, at any level of the module tree: among the files of a directory, and
//!   among the directories (a module with its submodules counts as one) of their parent;
//! - the engine and the wire and YAML readers import nothing from `server`, `cluster` or
//!   `cli`;
//! - a check id is spelled as a string literal in its own check file only (tests, comments
//!   and mutation names aside): everything else takes it from the registry.
//!
//! The module tree is found as rustc finds it: from `src/lib.rs`, following `mod` items that
//! are not `#[cfg(test)]`. A module's imports are every path it names outside its tests:
//! `use` trees, paths in types and expressions, and `crate::`/`super::` paths in macro
//! arguments. syn parses the files; nothing here compiles or runs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_admission::engine::{checks, mutations};
use proc_macro2::{TokenStream, TokenTree};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// One module of the crate with its own file (inline modules count as their file's).
struct Module {
    /// `engine::checks::cidr`; the crate root is empty.
    path: Vec<String>,
    /// Relative to the repository: `src/engine/checks/cidr.rs`.
    file: String,
    ast: syn::File,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .is_ok_and(|m| m.path().is_ident("test"))
    })
}

/// Every non-test module file of the crate, from `src/lib.rs` down.
fn modules() -> Vec<Module> {
    let mut out = Vec::new();
    let mut todo = vec![(Vec::<String>::new(), src().join("lib.rs"))];
    while let Some((path, file)) = todo.pop() {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let ast = syn::parse_file(&text)
            .unwrap_or_else(|e| panic!("cannot parse {}: {e}", file.display()));
        // Children of `lib.rs` and `x/mod.rs` sit beside them; those of `x.rs` in `x/`.
        let stem = file.file_stem().unwrap().to_string_lossy().to_string();
        let dir = if stem == "lib" || stem == "mod" {
            file.parent().unwrap().to_path_buf()
        } else {
            file.parent().unwrap().join(&stem)
        };
        for item in &ast.items {
            if let syn::Item::Mod(m) = item
                && m.content.is_none()
                && !is_cfg_test(&m.attrs)
            {
                let name = m.ident.to_string();
                let flat = dir.join(format!("{name}.rs"));
                let nested = dir.join(&name).join("mod.rs");
                let child = if flat.exists() { flat } else { nested };
                let mut p = path.clone();
                p.push(name);
                todo.push((p, child));
            }
        }
        let rel = file
            .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .to_string_lossy()
            .to_string();
        out.push(Module {
            path,
            file: rel,
            ast,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// What one file names outside its tests: paths (as written, with the line), string literals.
#[derive(Default)]
struct Names {
    paths: Vec<(Vec<String>, usize)>,
    literals: Vec<(String, usize)>,
    /// `use` bindings: the name in scope and the path it stands for.
    aliases: BTreeMap<String, Vec<String>>,
    /// Modules declared in the file, inline or not.
    children: BTreeSet<String>,
}

impl Names {
    fn use_tree(&mut self, prefix: &[String], tree: &syn::UseTree, line: usize) {
        let with = |s: &syn::Ident| {
            let mut p = prefix.to_vec();
            p.push(s.to_string());
            p
        };
        match tree {
            syn::UseTree::Path(p) => self.use_tree(&with(&p.ident), &p.tree, line),
            syn::UseTree::Name(n) => {
                let full = if n.ident == "self" {
                    prefix.to_vec()
                } else {
                    with(&n.ident)
                };
                let bound = full.last().cloned().unwrap_or_default();
                self.aliases.insert(bound, full.clone());
                self.paths.push((full, line));
            }
            syn::UseTree::Rename(r) => {
                let full = if r.ident == "self" {
                    prefix.to_vec()
                } else {
                    with(&r.ident)
                };
                self.aliases.insert(r.rename.to_string(), full.clone());
                self.paths.push((full, line));
            }
            syn::UseTree::Glob(_) => self.paths.push((prefix.to_vec(), line)),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t, line);
                }
            }
        }
    }

    /// `crate::a::b`, `super::a` and `self::a` paths and string literals inside a macro's
    /// arguments, which syn leaves as tokens.
    fn tokens(&mut self, ts: TokenStream) {
        let trees: Vec<TokenTree> = ts.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Literal(l) => {
                    if let Ok(syn::Lit::Str(s)) = syn::parse_str::<syn::Lit>(&l.to_string()) {
                        self.literals.push((s.value(), l.span().start().line));
                    }
                }
                TokenTree::Ident(id) if id == "crate" || id == "super" || id == "self" => {
                    let line = id.span().start().line;
                    let mut path = vec![id.to_string()];
                    let mut j = i + 1;
                    while let (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) =
                        (trees.get(j), trees.get(j + 1))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        match trees.get(j + 2) {
                            Some(TokenTree::Ident(next)) => {
                                path.push(next.to_string());
                                j += 3;
                            }
                            _ => break,
                        }
                    }
                    if path.len() > 1 {
                        self.paths.push((path, line));
                    }
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Names {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs: &[syn::Attribute] = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            syn::Item::Trait(t) => &t.attrs,
            syn::Item::Macro(m) => &m.attrs,
            _ => &[],
        };
        if is_cfg_test(attrs) {
            return;
        }
        if let syn::Item::Mod(m) = item {
            self.children.insert(m.ident.to_string());
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let line = u.use_token.span.start().line;
        self.use_tree(&[], &u.tree, line);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        let line = p
            .segments
            .first()
            .map_or(0, |s| s.ident.span().start().line);
        if segments.len() > 1 {
            self.paths.push((segments, line));
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }

    fn visit_lit_str(&mut self, s: &'ast syn::LitStr) {
        self.literals.push((s.value(), s.span().start().line));
    }

    // Doc comments are attributes; comments say what they like.
    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}
}

fn names_of(m: &Module) -> Names {
    let mut n = Names::default();
    n.visit_file(&m.ast);
    n
}

/// One import of a module by another, where it is written.
struct Edge {
    from: usize,
    to: usize,
    at: String,
}

/// Every import between two module files of the crate.
fn edges(mods: &[Module]) -> Vec<Edge> {
    let index: BTreeMap<&[String], usize> = mods
        .iter()
        .enumerate()
        .map(|(i, m)| (m.path.as_slice(), i))
        .collect();
    let mut out = Vec::new();
    for (from, m) in mods.iter().enumerate() {
        let names = names_of(m);
        let mut seen = BTreeSet::new();
        for (path, line) in &names.paths {
            let Some(abs) = absolute(&m.path, path, &names) else {
                continue;
            };
            // The longest prefix that is a module of ours is what the path reaches.
            let to = (1..=abs.len())
                .rev()
                .find_map(|k| index.get(&abs[..k]).copied());
            if let Some(to) = to
                && to != from
                && seen.insert(to)
            {
                out.push(Edge {
                    from,
                    to,
                    at: format!("{}:{line}", m.file),
                });
            }
        }
    }
    out
}

/// A path as the crate root sees it, or `None` for another crate's path or a local name.
fn absolute(module: &[String], path: &[String], names: &Names) -> Option<Vec<String>> {
    let first = path.first()?;
    let (mut base, rest): (Vec<String>, &[String]) = match first.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (module.to_vec(), &path[1..]),
        "super" => {
            let mut base = module.to_vec();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            (base, rest)
        }
        // A child module's name, or a name a `use` brought in (resolved once, so an alias
        // of an alias is not followed).
        _ if names.children.contains(first) => (module.to_vec(), path),
        _ => match names.aliases.get(first) {
            Some(full) if full.first().is_some_and(|s| s != first) => {
                let full = full.clone();
                let resolved = absolute(module, &full, &Names::default())?;
                return Some(resolved.into_iter().chain(path[1..].to_vec()).collect());
            }
            _ => return None,
        },
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

fn name(path: &[String]) -> String {
    if path.is_empty() {
        "crate".into()
    } else {
        format!("crate::{}", path.join("::"))
    }
}

/// A cycle in a directed graph of `n` nodes, as the list of nodes on it.
fn find_cycle(n: usize, next: &BTreeMap<usize, BTreeSet<usize>>) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn dfs(
        v: usize,
        next: &BTreeMap<usize, BTreeSet<usize>>,
        mark: &mut [Mark],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        mark[v] = Mark::Open;
        stack.push(v);
        for &w in next.get(&v).into_iter().flatten() {
            match mark[w] {
                Mark::Open => {
                    let at = stack.iter().position(|&x| x == w).unwrap();
                    return Some(stack[at..].to_vec());
                }
                Mark::New => {
                    if let Some(c) = dfs(w, next, mark, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        mark[v] = Mark::Done;
        None
    }
    let mut mark = vec![Mark::New; n];
    (0..n).find_map(|v| {
        if mark[v] == Mark::New {
            dfs(v, next, &mut mark, &mut Vec::new())
        } else {
            None
        }
    })
}

/// Cycles among the parts of each module: its own file and each child module with everything
/// under it. Checking every level finds every cycle between files, and names it at the level
/// where it crosses module lines.
fn cycles(mods: &[Module], edges: &[Edge]) -> Vec<String> {
    let mut found = Vec::new();
    for parent in mods {
        let depth = parent.path.len();
        // The part of `parent` a module falls in: 0 for its own file, else the child's name.
        let part = |m: &Module| -> Option<String> {
            if !m.path.starts_with(&parent.path) {
                return None;
            }
            Some(m.path.get(depth).cloned().unwrap_or_default())
        };
        let parts: Vec<String> = mods
            .iter()
            .filter_map(part)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if parts.len() < 2 {
            continue;
        }
        let id = |p: &str| parts.iter().position(|x| x == p).unwrap();
        let mut next: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        let mut witness: BTreeMap<(usize, usize), &Edge> = BTreeMap::new();
        for e in edges {
            let (Some(a), Some(b)) = (part(&mods[e.from]), part(&mods[e.to])) else {
                continue;
            };
            if a != b {
                let (a, b) = (id(&a), id(&b));
                next.entry(a).or_default().insert(b);
                witness.entry((a, b)).or_insert(e);
            }
        }
        if let Some(cycle) = find_cycle(parts.len(), &next) {
            let label = |i: usize| {
                let mut p = parent.path.clone();
                if !parts[i].is_empty() {
                    p.push(parts[i].clone());
                }
                name(&p)
                    + if parts[i].is_empty() {
                        " (its own file)"
                    } else {
                        ""
                    }
            };
            let hops: Vec<String> = cycle
                .iter()
                .zip(cycle.iter().cycle().skip(1))
                .map(|(&a, &b)| {
                    let e = witness[&(a, b)];
                    format!(
                        "{} -> {} ({} imports {})",
                        label(a),
                        label(b),
                        e.at,
                        name(&mods[e.to].path)
                    )
                })
                .collect();
            found.push(format!(
                "in {}:\n    {}",
                name(&parent.path),
                hops.join("\n    ")
            ));
        }
    }
    found
}

#[test]
fn no_module_imports_itself_through_others_at_any_level() {
    let mods = modules();
    assert!(
        mods.len() > 40,
        "only {} modules found from src/lib.rs",
        mods.len()
    );
    let found = cycles(&mods, &edges(&mods));
    assert!(
        found.is_empty(),
        "import cycles (break each by moving what both sides need into a module of its own):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_engine_and_the_readers_import_nothing_from_server_cluster_or_cli() {
    let mods = modules();
    let pure = |m: &Module| {
        m.path.first().is_some_and(|s| s == "engine") || m.path == ["wire"] || m.path == ["yaml"]
    };
    let outer = |m: &Module| {
        m.path
            .first()
            .is_some_and(|s| matches!(s.as_str(), "server" | "cluster" | "cli"))
    };
    assert!(mods.iter().filter(|m| pure(m)).count() > 20);
    let bad: Vec<String> = edges(&mods)
        .iter()
        .filter(|e| pure(&mods[e.from]) && outer(&mods[e.to]))
        .map(|e| format!("{} imports {}", e.at, name(&mods[e.to].path)))
        .collect();
    assert!(
        bad.is_empty(),
        "the engine must build and run without the server (docs/architecture.md):\n  {}",
        bad.join("\n  ")
    );
}

/// Whether `text` holds `id` as a whole word of a check id's alphabet (`a-z`, `-`).
fn spells(text: &str, id: &str) -> bool {
    let word = |c: char| c.is_ascii_lowercase() || c == '-';
    text.match_indices(id)
        .any(|(at, _)| !text[..at].ends_with(word) && !text[at + id.len()..].starts_with(word))
}

#[test]
fn a_check_id_is_spelled_in_its_own_check_file_only() {
    let mods = modules();
    let mutation_names: BTreeSet<&str> = mutations::MUTATIONS.iter().map(|m| m.name).collect();
    let mut bad = Vec::new();
    let mut homes: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for m in &mods {
        let names = names_of(m);
        let in_checks = m.file.starts_with("src/engine/checks/");
        let in_mutations = m.file.starts_with("src/engine/mutations/");
        for check in checks::CHECKS {
            for (text, line) in &names.literals {
                if !spells(text, check.id) {
                    continue;
                }
                if in_mutations && mutation_names.contains(text.as_str()) {
                    continue;
                }
                if in_checks {
                    homes.entry(check.id).or_default().insert(m.file.clone());
                } else {
                    bad.push(format!("{}:{line}: {text:?}", m.file));
                }
            }
        }
    }
    for (id, files) in &homes {
        if files.len() > 1 {
            bad.push(format!("{id} is spelled in {files:?}"));
        }
    }
    for check in checks::CHECKS {
        if !homes.contains_key(check.id) {
            bad.push(format!(
                "{} is spelled in no file under src/engine/checks/",
                check.id
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "check ids written outside their check file (use the check's value from the registry):\n  {}",
        bad.join("\n  ")
    );
}

#[test]
fn the_tools_of_these_tests_see_what_they_look_for() {
    // A cycle made on purpose is found, so an empty answer above means something.
    let mut next = BTreeMap::new();
    next.insert(0, BTreeSet::from([1]));
    next.insert(1, BTreeSet::from([2]));
    next.insert(2, BTreeSet::from([0]));
    assert_eq!(find_cycle(3, &next), Some(vec![0, 1, 2]));
    next.insert(2, BTreeSet::new());
    assert_eq!(find_cycle(3, &next), None);
    assert!(spells("x: default-deny-egress@spec", "default-deny-egress"));
    assert!(!spells("not-default-deny-egress", "default-deny-egress"));
    // Paths as rustc resolves them, from a module two levels down.
    let m = ["engine".to_string(), "checks".to_string()];
    let p = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
    assert_eq!(
        absolute(&m, &p("super::policy::Policy"), &Names::default()),
        Some(p("engine::policy::Policy"))
    );
    assert_eq!(
        absolute(&m, &p("crate::wire::read"), &Names::default()),
        Some(p("wire::read"))
    );
    assert_eq!(
        absolute(&m, &p("serde::Serialize"), &Names::default()),
        None
    );
}
