//! The crate docs promise that no two files of `src/` import each other, directly or through
//! others (the layering diagram in `lib.rs`). This reads every file of `src/` and fails with the
//! circles it finds.
//!
//! A file imports another when its code (test modules and comments left out) names it: a path
//! starting with `crate::`, `super::` or `self::` (brace groups of `use` expanded), resolved to the
//! longest module prefix that is a file; a `mod.rs` naming one of its own child modules
//! (`fd::pipe`); a type named through the crate root (`crate::ChildStdout`), resolved through
//! `lib.rs`'s `pub use` lines to the file that defines it.
//!
//! `LAYERING_SRC=dir` checks another tree (e.g. an old commit's `src/`, to see this fail);
//! `LAYERING_EDGES=1` prints every file's imports (with `--nocapture`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Every `.rs` file under `src`, by module path (`sys/spawn/mod.rs` is `["sys", "spawn"]`).
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(src)
                .expect("under src")
                .with_extension("");
            let mut module: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            found.insert(module, path);
        }
    }
    found
}

/// The code of a file without comments and without `#[cfg(test)] mod name { .. }` blocks.
fn code(text: &str) -> String {
    let without_comments: String = text
        .lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = without_comments.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = skip_attributes(after);
        if !trimmed.starts_with("mod ") {
            out.push_str("#[cfg(test)]");
            rest = after;
            continue;
        }
        let Some(open) = trimmed.find(['{', ';']) else {
            rest = "";
            break;
        };
        if trimmed.as_bytes()[open] == b';' {
            rest = &trimmed[open + 1..];
            continue;
        }
        let mut depth = 0usize;
        let mut end = trimmed.len();
        for (i, c) in trimmed[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &trimmed[end..];
    }
    out.push_str(rest);
    out
}

/// `text` after the outer attributes (`#[...]`) and whitespace it starts with.
fn skip_attributes(text: &str) -> &str {
    let mut rest = text.trim_start();
    while rest.starts_with("#[") {
        let mut depth = 0usize;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = rest[end..].trim_start();
    }
    rest
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other,
}

fn tokens(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
            continue;
        }
        if c == '"' {
            // Skip string literals (an import path never sits in one).
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(Token::Other);
            continue;
        }
        if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Token::PathSep);
            i += 2;
            continue;
        }
        out.push(match c {
            '{' => Token::Open,
            '}' => Token::Close,
            ',' => Token::Comma,
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            _ => Token::Other,
        });
        i += 1;
    }
    out
}

/// Reads the path continuing at `at` (after a segment), expanding brace groups: every full path
/// it names, each a list of segments after `prefix`.
fn paths_from(tokens: &[Token], mut at: usize, prefix: Module, out: &mut Vec<Module>) -> usize {
    let mut path = prefix;
    while tokens.get(at) == Some(&Token::PathSep) {
        match tokens.get(at + 1) {
            Some(Token::Ident(name)) => {
                path.push(name.clone());
                at += 2;
            }
            Some(Token::Open) => {
                at += 2;
                loop {
                    match tokens.get(at) {
                        Some(Token::Ident(name)) => {
                            let mut sub = path.clone();
                            sub.push(name.clone());
                            at = paths_from(tokens, at + 1, sub, out);
                        }
                        Some(Token::Close) => return at + 1,
                        Some(_) => at += 1,
                        None => return at,
                    }
                }
            }
            _ => break,
        }
    }
    out.push(path);
    at
}

fn resolve(files: &BTreeMap<Module, PathBuf>, path: &[String]) -> Option<Module> {
    (0..=path.len())
        .rev()
        .map(|k| path[..k].to_vec())
        .find(|m| files.contains_key(m))
}

/// Public names the crate root re-exports, by the module that defines them.
fn reexports(files: &BTreeMap<Module, PathBuf>, lib: &str) -> BTreeMap<String, Module> {
    let toks = tokens(&code(lib));
    let mut out = BTreeMap::new();
    for i in 0..toks.len() {
        if toks[i] != Token::Ident("pub".into())
            || toks.get(i + 1) != Some(&Token::Ident("use".into()))
        {
            continue;
        }
        let Some(Token::Ident(first)) = toks.get(i + 2) else {
            continue;
        };
        let mut paths = Vec::new();
        paths_from(&toks, i + 3, vec![first.clone()], &mut paths);
        for path in paths {
            if let (Some(name), Some(module)) = (path.last(), resolve(files, &path)) {
                out.insert(name.clone(), module);
            }
        }
    }
    out
}

fn edges(files: &BTreeMap<Module, PathBuf>) -> BTreeMap<Module, BTreeSet<Module>> {
    let lib = std::fs::read_to_string(&files[&Vec::new()]).expect("lib.rs");
    let reexported = reexports(files, &lib);
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, path) in files {
        if module.is_empty() {
            continue;
        }
        let is_dir_module = matches!(path.file_name().and_then(|n| n.to_str()), Some("mod.rs"));
        let toks = tokens(&code(&std::fs::read_to_string(path).expect("read")));
        let mut named = Vec::new();
        for (i, tok) in toks.iter().enumerate() {
            let Token::Ident(word) = tok else { continue };
            // Only where a path starts.
            if i > 0 && toks[i - 1] == Token::PathSep {
                continue;
            }
            if toks.get(i + 1) != Some(&Token::PathSep) {
                continue;
            }
            let prefix: Module = match word.as_str() {
                "crate" => Vec::new(),
                "self" => module.clone(),
                "super" => {
                    let mut base = module[..module.len() - 1].to_vec();
                    let mut j = i + 1;
                    while toks.get(j) == Some(&Token::PathSep)
                        && toks.get(j + 1) == Some(&Token::Ident("super".into()))
                    {
                        base.pop();
                        j += 2;
                    }
                    paths_from(&toks, j, base, &mut named);
                    continue;
                }
                child if is_dir_module => {
                    let mut m = module.clone();
                    m.push(child.to_string());
                    if !files.contains_key(&m) {
                        continue;
                    }
                    m
                }
                _ => continue,
            };
            paths_from(&toks, i + 1, prefix, &mut named);
        }
        let targets = edges.entry(module.clone()).or_default();
        for path in named {
            // `crate::ChildStdout`: a name the root re-exports, not a module of its own.
            let through_root = path
                .first()
                .filter(|first| !files.contains_key(&vec![(*first).clone()]))
                .and_then(|first| reexported.get(first).cloned());
            if let Some(target) = through_root.or_else(|| resolve(files, &path))
                && !target.is_empty()
                && &target != module
            {
                targets.insert(target);
            }
        }
    }
    edges
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        circles: Vec<Vec<Module>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, v: &Module) {
            let n = self.index.len();
            self.index.insert(v.clone(), n);
            self.low.insert(v.clone(), n);
            self.stack.push(v.clone());
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v.clone(), low);
                } else if self.stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v.clone(), low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    let done = &w == v;
                    component.push(w);
                    if done {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.circles.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        circles: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.circles
}

#[test]
fn no_two_files_of_src_import_each_other() {
    let src = std::env::var_os("LAYERING_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let files = modules(&src);
    let edges = edges(&files);
    // The reader must see something, or a broken parser would pass.
    let known = [
        vec!["sys".to_string(), "spawn".to_string(), "fork".to_string()],
        vec!["handle".to_string()],
    ];
    for module in &known {
        assert!(
            edges.get(module).is_some_and(|t| !t.is_empty()),
            "no imports read from {module:?}"
        );
    }
    if std::env::var_os("LAYERING_EDGES").is_some() {
        for (m, t) in &edges {
            eprintln!(
                "{} -> {:?}",
                m.join("/"),
                t.iter().map(|m| m.join("/")).collect::<Vec<_>>()
            );
        }
    }
    let found = circles(&edges);
    let shown = spelled(&found);
    assert!(
        found.is_empty(),
        "files of {} that import each other:\n{}",
        src.display(),
        shown.join("\n")
    );
}

/// Each circle as `a <-> b <-> sys/fd`.
fn spelled(circles: &[Vec<Module>]) -> Vec<String> {
    circles
        .iter()
        .map(|c| {
            c.iter()
                .map(|m| m.join("/"))
                .collect::<Vec<_>>()
                .join(" <-> ")
        })
        .collect()
}

/// The reader on a made-up crate: a circle through a `use` brace group, one through the root's
/// re-export and `super::` paths, and imports that only a test module and a comment make.
#[test]
fn the_reader_finds_circles_and_ignores_tests_and_comments() {
    let dir = std::env::temp_dir().join(format!("napix-layering-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sys")).expect("mkdir");
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("write");
    write(
        "lib.rs",
        "mod a;\nmod b;\nmod c;\nmod d;\nmod sys;\npub use d::Thing;\n",
    );
    write("a.rs", "use crate::{b::B, sys};\n");
    write("b.rs", "pub struct B;\nfn f() { crate::a::g(); }\n");
    write("c.rs", "fn f(_: crate::Thing) {}\n");
    write("d.rs", "pub struct Thing;\nuse super::sys::fd;\n");
    write("sys/mod.rs", "mod fd;\npub(crate) use fd::pipe;\n");
    // Counted, the comment or the test module would close a -> sys -> sys/fd -> a.
    write(
        "sys/fd.rs",
        "pub fn pipe() { super::super::c::f(); } // crate::a\n\
         #[cfg(test)]\n#[allow(dead_code)]\nmod tests { use crate::a; }\n",
    );
    let files = modules(&dir);
    let found = circles(&edges(&files));
    let _ = std::fs::remove_dir_all(&dir);
    let mut shown = spelled(&found);
    shown.sort();
    assert_eq!(shown, ["a <-> b", "c <-> d <-> sys/fd"]);
}
