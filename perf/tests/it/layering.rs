//! The library's layers look only down. This test reads `perf/src` and fails on a `use` (or any
//! `crate::…` path) that climbs: ARCHITECTURE.md's invariants, kept true.
//!
//! - Each top-level module may name only the modules listed for it in [`ALLOWED`].
//! - Only `plan/` sees the plan file's TOML (`toml::`, `Spanned`, the raw `plan::model`).
//! - At every level of the module tree (the crate, `run/`, `env/`, `env/local/`…), the module's
//!   own file and its child modules do not import each other in a cycle.
//! - Below the command line nothing prints: progress goes through `run::Notes`.
//! - No function runs over [`LONG_FUNCTION`] lines without saying why beside it.
//!
//! How the sources are read: a small lexer drops comments, string and character literals and every
//! `#[cfg(test)]` item (tests may reach anywhere); a reader then collects every path the code
//! names, each `use` tree expanded into full paths (`use super::{a, b::c}` is `super::a` and
//! `super::b::c`), and the module tree of the files resolves them (`crate::`, `super::`,
//! `self::`, a child module's name) to the deepest file they reach. It reads paths, not the
//! compiler's namespaces: `super::judge` is the file `judge.rs` even where it means the function
//! that `mod.rs` re-exports, and a bare `x::` is the child module `x` wherever the file has one.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

/// What each top-level module of `perf/src` may use, besides itself. Read it bottom-up: `util`
/// at the bottom, the plan, then the engine and the environments beside it, the summary,
/// verdicts, reports, GitHub, the run, and the command line on top. A module lists only modules
/// above it in this table, so the top level has no cycle.
const ALLOWED: &[(&str, &[&str])] = &[
    ("util", &[]),
    ("plan", &["util"]),
    ("faults", &["plan", "util"]),
    ("env", &["faults", "plan", "util"]),
    ("engine", &["plan", "util"]),
    ("summary", &["engine", "plan", "util"]),
    ("compare", &["summary", "plan", "util"]),
    ("special", &["summary", "plan", "util"]),
    ("verdict", &["compare", "special", "summary", "plan", "util"]),
    ("render", &["verdict", "compare", "special", "summary", "plan", "util"]),
    ("export", &["verdict", "compare", "special", "summary", "plan", "util"]),
    ("history", &["render", "compare", "summary", "plan", "util"]),
    ("github", &["util"]),
    ("run", &["github", "export", "render", "verdict", "compare", "special", "summary", "engine", "env", "faults", "plan", "util"]),
    (
        "cli",
        &[
            "run", "history", "github", "export", "render", "verdict", "compare", "special", "summary", "engine", "env", "faults", "plan",
            "util",
        ],
    ),
];

// ---------------------------------------------------------------------------------------------
// Reading the sources

/// One token of code: an identifier (keywords and number literals too), `::`, or a single
/// punctuation character. Comments are gone; a string or character literal is the token `"`.
#[derive(Clone, Debug)]
struct Token {
    line: usize,
    text: String,
}

fn is_ident(text: &str) -> bool {
    text.starts_with(|c: char| c.is_alphabetic() || c == '_')
}

/// The tokens of `text`, without comments, literals' contents and `#[cfg(test)]` items.
fn code_tokens(text: &str) -> Vec<Token> {
    drop_test_items(lex(text))
}

fn lex(text: &str) -> Vec<Token> {
    let c: Vec<char> = text.chars().collect();
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let ident_char = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut out = Vec::new();
    let mut push = |line: usize, text: &str| out.push(Token { line, text: text.to_string() });
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        let start = line;
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            // Block comments nest.
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
            }
        } else if let Some(k) = raw_string_quote(&c, i) {
            // r"…", r#"…"#, br"…": ends at a quote followed by as many `#` as opened it.
            let hashes = k - i - if ch == 'r' { 1 } else { 2 };
            let mut k = k + 1;
            while k < c.len() && !(c[k] == '"' && (1..=hashes).all(|h| at(k + h) == '#')) {
                line += usize::from(c[k] == '\n');
                k += 1;
            }
            push(start, "\"");
            i = k + 1 + hashes;
        } else if ch == '"' || (matches!(ch, 'b' | 'c') && at(i + 1) == '"') {
            let mut k = if ch == '"' { i + 1 } else { i + 2 };
            while k < c.len() && c[k] != '"' {
                if c[k] == '\\' {
                    k += 1;
                }
                line += usize::from(at(k) == '\n');
                k += 1;
            }
            push(start, "\"");
            i = k + 1;
        } else if ch == '\'' || (ch == 'b' && at(i + 1) == '\'') {
            let q = if ch == '\'' { i } else { i + 1 };
            if at(q + 1) == '\\' {
                // '\n', '\'', '\u{…}'
                let mut k = q + 3;
                while k < c.len() && c[k] != '\'' {
                    k += 1;
                }
                push(start, "\"");
                i = k + 1;
            } else if at(q + 2) == '\'' {
                push(start, "\"");
                i = q + 3;
            } else {
                // A lifetime or a label.
                let mut k = q + 1;
                while ident_char(at(k)) {
                    k += 1;
                }
                push(start, &c[q..k].iter().collect::<String>());
                i = k;
            }
        } else if ch.is_alphabetic() || ch == '_' || ch.is_ascii_digit() {
            // Identifiers (`r#type` is `type`) and number literals.
            let from = if ch == 'r' && at(i + 1) == '#' { i + 2 } else { i };
            let mut k = from;
            while ident_char(at(k)) {
                k += 1;
            }
            push(start, &c[from..k].iter().collect::<String>());
            i = k;
        } else if ch == ':' && at(i + 1) == ':' {
            push(start, "::");
            i += 2;
        } else {
            push(start, &ch.to_string());
            i += 1;
        }
    }
    out
}

/// If a raw string starts at `i` (`r"`, `r#"`, `br#"`…), the index of its opening quote.
fn raw_string_quote(c: &[char], i: usize) -> Option<usize> {
    let mut k = match (c.get(i), c.get(i + 1)) {
        (Some('r'), _) => i + 1,
        (Some('b' | 'c'), Some('r')) => i + 2,
        _ => return None,
    };
    while c.get(k) == Some(&'#') {
        k += 1;
    }
    (c.get(k) == Some(&'"')).then_some(k)
}

/// Removes each item marked `#[cfg(test)]`: its attributes, then everything up to the `;` or the
/// closing `}` that ends it.
fn drop_test_items(toks: Vec<Token>) -> Vec<Token> {
    let is = |k: usize, s: &str| toks.get(k).is_some_and(|t| t.text == s);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if !["#", "[", "cfg", "(", "test", ")", "]"].iter().enumerate().all(|(j, s)| is(i + j, s)) {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        i += 7;
        while is(i, "#") && is(i + 1, "[") {
            i = after_group(&toks, i + 1);
        }
        let mut depth = 0i32;
        while i < toks.len() {
            match toks[i].text.as_str() {
                "(" | "[" | "{" => depth += 1,
                ")" | "]" => depth -= 1,
                "}" if depth == 0 => break, // the end of the enclosing block: not ours
                "}" => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                ";" if depth == 0 => {
                    i += 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
    }
    out
}

/// The index after the group that opens at `open` (`(`, `[` or `{`).
fn after_group(toks: &[Token], open: usize) -> usize {
    let mut depth = 0;
    for (k, t) in toks.iter().enumerate().skip(open) {
        match t.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// A path the code names: `super::measure::measure_once` from a `use`, `crate::env::Kind` in code.
#[derive(Clone, Debug, PartialEq)]
struct Named {
    line: usize,
    /// The inline modules (`mod x { … }`) around it, outermost first.
    scope: Vec<String>,
    path: Vec<String>,
    in_use: bool,
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", if self.in_use { "use " } else { "" }, self.path.join("::"))
    }
}

/// Every path in the tokens: each `use` expanded, and each path in code from its first segment
/// (`crate::x::f()`, `super::y::Z`, `child::g()`; generic arguments end it). A `mod child;`
/// declaration names nothing.
fn named_paths(toks: &[Token]) -> Vec<Named> {
    let text = |k: usize| toks.get(k).map_or("", |t| t.text.as_str());
    let mut out = Vec::new();
    let mut scope: Vec<String> = Vec::new();
    let mut opened: Vec<i64> = Vec::new(); // the brace depth inside each inline module
    let mut depth = 0i64;
    let mut i = 0;
    while i < toks.len() {
        let t = text(i);
        if t == "{" {
            depth += 1;
            i += 1;
        } else if t == "}" {
            if opened.last() == Some(&depth) {
                opened.pop();
                scope.pop();
            }
            depth -= 1;
            i += 1;
        } else if t == "mod" && is_ident(text(i + 1)) {
            if text(i + 2) == "{" {
                scope.push(text(i + 1).to_string());
                depth += 1;
                opened.push(depth);
                i += 3;
            } else {
                i += 2;
            }
        } else if t == "pub" && text(i + 1) == "(" {
            i = after_group(toks, i + 1); // `pub(in crate::x)` restricts, it does not import
        } else if t == "use" && text(i + 1) != "<" {
            let end = (i..toks.len()).find(|&k| text(k) == ";").unwrap_or(toks.len());
            let tree: Vec<(usize, &str)> = toks[i + 1..end].iter().map(|t| (t.line, t.text.as_str())).collect();
            for (line, path) in expand_use(&tree) {
                out.push(Named { line, scope: scope.clone(), path, in_use: true });
            }
            i = end + 1;
        } else if is_ident(t) && text(i + 1) == "::" && text(i.wrapping_sub(1)) != "::" {
            let mut path = vec![t.to_string()];
            let mut k = i + 1;
            while text(k) == "::" && is_ident(text(k + 1)) {
                path.push(text(k + 1).to_string());
                k += 2;
            }
            out.push(Named { line: toks[i].line, scope: scope.clone(), path, in_use: false });
            i = k;
        } else {
            i += 1;
        }
    }
    out
}

/// The full paths of a `use` tree (the tokens between `use` and `;`), each with the line of its
/// last segment: `super::{judge, measure::measure_once}` is `super::judge` and
/// `super::measure::measure_once`; `a::{self, B as C}` is `a` and `a::B`; a glob ends in `*`; a
/// leading `::` is kept as an empty first segment.
///
/// Written by hand on purpose: the grammar is tiny, and `syn` would be compiled a second time for
/// the test profile just to read it.
fn expand_use(toks: &[(usize, &str)]) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        use_tree(toks, &mut i, &[], &mut out);
    }
    out
}

fn use_tree(toks: &[(usize, &str)], i: &mut usize, prefix: &[String], out: &mut Vec<(usize, Vec<String>)>) {
    let at = |k: usize| toks.get(k).map(|t| t.1);
    let mut path = prefix.to_vec();
    if at(*i) == Some("::") {
        path.push(String::new());
        *i += 1;
    }
    while let Some(&(line, t)) = toks.get(*i) {
        *i += 1;
        match t {
            "{" => loop {
                match at(*i) {
                    None => return,
                    Some("}") => {
                        *i += 1;
                        return;
                    }
                    Some(",") => *i += 1,
                    Some(_) => use_tree(toks, i, &path, out),
                }
            },
            "*" => {
                path.push("*".to_string());
                out.push((line, path));
                return;
            }
            _ => {
                path.push(t.to_string());
                if at(*i) == Some("::") {
                    *i += 1;
                    continue;
                }
                if at(*i) == Some("as") {
                    *i += 2;
                }
                if path.len() > 1 && path.last().is_some_and(|s| s == "self") {
                    path.pop();
                }
                out.push((line, path));
                return;
            }
        }
    }
}

struct Source {
    /// Path below `perf/src`, e.g. `engine/run.rs`.
    rel: String,
    /// The file's lines as written, comments included.
    lines: Vec<String>,
    tokens: Vec<Token>,
    paths: Vec<Named>,
}

impl Source {
    fn new(rel: &str, text: &str) -> Source {
        let tokens = code_tokens(text);
        let paths = named_paths(&tokens);
        Source { rel: rel.to_string(), lines: text.lines().map(String::from).collect(), tokens, paths }
    }

    /// Where `pattern` (token texts) occurs, by line.
    fn lines_with(&self, pattern: &[&str]) -> Vec<usize> {
        self.tokens.windows(pattern.len()).filter(|w| w.iter().zip(pattern).all(|(t, p)| t.text == *p)).map(|w| w[0].line).collect()
    }
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            let src = Source::new(&rel, &text);
            assert!(balanced(&src.tokens), "the lexer lost its way in perf/src/{rel}: unbalanced brackets");
            src
        })
        .collect()
}

/// Whether the brackets of the tokens pair up: a string or comment misread would break this.
fn balanced(toks: &[Token]) -> bool {
    let mut open = Vec::new();
    for t in toks {
        match t.text.as_str() {
            "(" => open.push(")"),
            "[" => open.push("]"),
            "{" => open.push("}"),
            close @ (")" | "]" | "}") if open.pop() != Some(close) => return false,
            _ => {}
        }
    }
    open.is_empty()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") && !is_test_file(&path) {
            out.push(path);
        }
    }
}

/// `tests.rs`, `tests_*.rs`: test modules kept in their own files.
fn is_test_file(path: &Path) -> bool {
    let stem = path.file_stem().unwrap().to_string_lossy();
    stem == "tests" || stem.starts_with("tests_")
}

// ---------------------------------------------------------------------------------------------
// The module tree

/// The module a file is: `lib.rs` the crate, `run/mod.rs` and `env/local.rs` their module,
/// `env/local/app.rs` `env::local::app`. `bin/` is another crate: `None`.
fn module_of(rel: &str) -> Option<Vec<String>> {
    if rel.starts_with("bin/") {
        return None;
    }
    let mut parts: Vec<String> = rel.trim_end_matches(".rs").split('/').map(String::from).collect();
    if parts.last().is_some_and(|p| p == "mod") || parts == ["lib"] {
        parts.pop();
    }
    Some(parts)
}

fn top_module(rel: &str) -> &str {
    let first = rel.split('/').next().unwrap();
    first.strip_suffix(".rs").unwrap_or(first)
}

struct Tree {
    /// Module → its file.
    files: BTreeMap<Vec<String>, String>,
}

impl Tree {
    fn new(srcs: &[Source]) -> Tree {
        Tree { files: srcs.iter().filter_map(|s| Some((module_of(&s.rel)?, s.rel.clone()))).collect() }
    }

    fn has_children(&self, module: &[String]) -> bool {
        self.files.keys().any(|m| m.len() == module.len() + 1 && m.starts_with(module))
    }

    /// The absolute path (from the crate) that `path` names from inside module `here`, when it
    /// names something of this crate: `crate::…`, `self::…`, `super::…` (repeated), or a child
    /// module of `here`. A glob's `*` is dropped.
    fn resolve(&self, here: &[String], path: &[String]) -> Option<Vec<String>> {
        let (first, mut rest) = path.split_first()?;
        let mut abs = here.to_vec();
        match first.as_str() {
            "crate" => abs.clear(),
            "self" => {}
            "super" => {
                abs.pop()?;
                while rest.first().is_some_and(|s| s == "super") {
                    abs.pop()?;
                    rest = &rest[1..];
                }
            }
            child => {
                abs.push(child.to_string());
                if !self.files.contains_key(&abs) {
                    return None;
                }
            }
        }
        abs.extend(rest.iter().filter(|s| *s != "*").cloned());
        Some(abs)
    }

    /// The deepest module that has a file along `abs`: `run::measure::measure_once` is
    /// `run::measure`, `run::GateError` is `run`.
    fn file_module(&self, abs: &[String]) -> Vec<String> {
        (0..=abs.len()).rev().map(|n| abs[..n].to_vec()).find(|m| self.files.contains_key(m)).unwrap_or_default()
    }

    /// Every path of every file, resolved: (source, what it says, the module whose file it reaches,
    /// the absolute path).
    fn references<'a>(&self, srcs: &'a [Source]) -> Vec<Reference<'a>> {
        let mut out = Vec::new();
        for src in srcs {
            let Some(from) = module_of(&src.rel) else { continue };
            for named in &src.paths {
                let here = [from.clone(), named.scope.clone()].concat();
                if let Some(abs) = self.resolve(&here, &named.path) {
                    out.push(Reference { src, from: from.clone(), named, to: self.file_module(&abs), abs });
                }
            }
        }
        out
    }
}

struct Reference<'a> {
    src: &'a Source,
    from: Vec<String>,
    named: &'a Named,
    to: Vec<String>,
    abs: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// The checks, as functions of the sources so that the self-test runs them on planted text

fn layer_violations(srcs: &[Source]) -> Vec<String> {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED.iter().map(|(m, a)| (*m, a.iter().copied().collect())).collect();
    let mut violations = Vec::new();
    for (k, (module, may_use)) in ALLOWED.iter().enumerate() {
        for used in *may_use {
            if !ALLOWED[..k].iter().any(|(m, _)| m == used) {
                violations.push(format!("ALLOWED: `{module}` may use `{used}`, which is not listed below it"));
            }
        }
    }
    for src in srcs {
        let module = top_module(&src.rel);
        if !allowed.contains_key(module) && !matches!(module, "lib" | "bin") {
            violations.push(format!("perf/src/{}: module `{module}` is not in the layering table", src.rel));
        }
    }
    let tree = Tree::new(srcs);
    let mut seen = BTreeSet::new();
    for r in tree.references(srcs) {
        let module = top_module(&r.src.rel);
        let (Some(may_use), Some(used)) = (allowed.get(module), r.abs.first()) else { continue };
        if used != module
            && allowed.contains_key(used.as_str())
            && !may_use.contains(used.as_str())
            && seen.insert((r.src.rel.clone(), r.named.line, used.clone()))
        {
            violations.push(format!(
                "perf/src/{}:{}: `{module}` uses `crate::{used}` (`{}`), which is not below it",
                r.src.rel, r.named.line, r.named
            ));
        }
    }
    violations
}

fn toml_violations(srcs: &[Source]) -> Vec<String> {
    let tree = Tree::new(srcs);
    let mut violations = Vec::new();
    let mut flagged = BTreeSet::new();
    for src in srcs.iter().filter(|s| top_module(&s.rel) != "plan") {
        for (pattern, say) in
            [(&["toml", "::"][..], "toml::"), (&["Spanned"][..], "Spanned"), (&["plan", "::", "model"][..], "plan::model")]
        {
            for n in src.lines_with(pattern) {
                flagged.insert((src.rel.as_str(), n));
                violations.push(format!("perf/src/{}:{n}: `{say}` outside plan/", src.rel));
            }
        }
    }
    // Through a group or `super::`: `use crate::plan::{model::Raw}`.
    for r in tree.references(srcs) {
        if top_module(&r.src.rel) != "plan"
            && r.abs.starts_with(&["plan".to_string(), "model".to_string()])
            && !flagged.contains(&(r.src.rel.as_str(), r.named.line))
        {
            violations.push(format!("perf/src/{}:{}: `{}` reaches plan::model outside plan/", r.src.rel, r.named.line, r.named));
        }
    }
    violations.sort();
    violations.dedup();
    violations
}

/// Where printing is allowed: the command line, the binary, the engine's progress display,
/// and the default progress sink (`run::Notes::stderr`).
const MAY_PRINT: &[&str] = &["cli/", "bin/", "engine/progress.rs", "util/mod.rs"];

fn print_violations(srcs: &[Source]) -> Vec<String> {
    let mut violations = Vec::new();
    for src in srcs.iter().filter(|s| !MAY_PRINT.iter().any(|p| s.rel.starts_with(p))) {
        for mac in ["println", "eprintln", "print", "eprint", "dbg"] {
            for n in src.lines_with(&[mac, "!"]) {
                violations.push(format!("perf/src/{}:{n}: `{mac}!`: say it through run::Notes or return it", src.rel));
            }
        }
    }
    violations
}

fn start_violations(srcs: &[Source]) -> Vec<String> {
    let mut violations = Vec::new();
    for src in srcs.iter().filter(|s| !["run/lifetime.rs", "cli/up.rs", "env/"].iter().any(|p| s.rel.starts_with(p))) {
        for n in src.lines_with(&["Environment", "::", "start", "("]) {
            violations.push(format!("perf/src/{}:{n}: start it through run::lifetime::with_environments", src.rel));
        }
    }
    violations
}

/// A function longer than this many lines (from `fn` to its closing brace) says why beside it:
/// a comment line starting `Long:` among the comments and attributes just above it.
const LONG_FUNCTION: usize = 80;

fn long_functions(srcs: &[Source]) -> Vec<String> {
    let mut violations = Vec::new();
    for src in srcs {
        let toks = &src.tokens;
        for (i, t) in toks.iter().enumerate() {
            if t.text != "fn" || !toks.get(i + 1).is_some_and(|n| is_ident(&n.text)) {
                continue;
            }
            let Some(open) = body_start(&toks[i + 2..]).map(|k| i + 2 + k) else { continue };
            let close = after_group(toks, open) - 1;
            let lines = toks[close].line - t.line + 1;
            if lines > LONG_FUNCTION && !says_why(&src.lines, t.line) {
                let name = &toks[i + 1].text;
                violations.push(format!(
                    "perf/src/{}:{}: `{name}` is {lines} lines: split it, or say why beside it (`// Long: …`)",
                    src.rel, t.line
                ));
            }
        }
    }
    violations
}

/// Where a function's body opens, in the tokens after its name: the first `{` outside
/// parentheses and brackets; `None` at a `;` first (a declaration without a body).
fn body_start(toks: &[Token]) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate() {
        match t.text.as_str() {
            "(" | "[" => depth += 1,
            ")" | "]" => depth = depth.saturating_sub(1),
            "{" if depth == 0 => return Some(k),
            ";" if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

/// Whether a comment line starting `Long:` stands among the comments and attributes right above
/// line `fn_line` (1-based), or on it.
fn says_why(lines: &[String], fn_line: usize) -> bool {
    let says = |l: &str| l.trim_start().trim_start_matches('/').trim_start().starts_with("Long:");
    let own = lines.get(fn_line - 1).is_some_and(|l| l.split_once("//").is_some_and(|(_, c)| says(c)));
    own || lines[..fn_line - 1]
        .iter()
        .rev()
        .take_while(|l| {
            let l = l.trim_start();
            l.starts_with("//") || l.starts_with("#[") || l.starts_with(')') || l.starts_with(']')
        })
        .any(|l| says(l))
}

/// The imports between two nodes of a level: where each is made (file, line, what it says).
type Edges<'a> = BTreeMap<(Vec<String>, Vec<String>), BTreeSet<(&'a str, usize, String)>>;

/// An import that closes a cycle at one level of the module tree.
struct Climb {
    /// The own file of the module whose files these are: `run/mod.rs`, `env/local.rs`, `lib.rs`.
    level: String,
    /// The shortest cycle through the import: the importing node, the imported one, and on until
    /// the last node, which imports the first.
    cycle: Vec<String>,
    /// Where the first node imports the second: `perf/src/run/stress.rs:14: use super::…`.
    at: Vec<String>,
}

impl fmt::Display for Climb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cycle = self.cycle.join(" -> ");
        writeln!(f, "[{}] {} -> {}    (cycle: {cycle} -> {})", self.level, self.cycle[0], self.cycle[1], self.cycle[0])?;
        for at in &self.at {
            writeln!(f, "    {at}")?;
        }
        Ok(())
    }
}

/// The imports that close a cycle, at every level: for each module with child modules, a graph
/// whose nodes are the module's own file (`mod.rs`, `<dir>.rs`, `lib.rs`) and each child module
/// (a child with children of its own counts with everything below it). A file imports another
/// node when one of its paths resolves into it: a child naming an item of its parent
/// (`super::GateError`, `crate::run::GateRun`) reaches the parent's own file, `super::measure::x`
/// the sibling, and the parent's `pub use measure::x` or `measure::x()` the child; `mod measure;`
/// imports nothing. Each import (edge) on a cycle is listed once, with the shortest cycle through it.
fn import_cycles(srcs: &[Source]) -> Vec<Climb> {
    let tree = Tree::new(srcs);
    let refs = tree.references(srcs);
    let mut climbs = Vec::new();
    for level in tree.files.keys().filter(|m| tree.has_children(m)) {
        let node = |m: &[String]| m.starts_with(level).then(|| m[..(level.len() + 1).min(m.len())].to_vec());
        let name = |m: &Vec<String>| {
            let file = tree.files[m].clone();
            if m != level && tree.has_children(m) { format!("{file} and below") } else { file }
        };
        let mut edges: Edges = BTreeMap::new();
        for r in &refs {
            if let (Some(a), Some(b)) = (node(&r.from), node(&r.to))
                && a != b
            {
                edges.entry((a, b)).or_default().insert((r.src.rel.as_str(), r.named.line, r.named.to_string()));
            }
        }
        let mut next: BTreeMap<&Vec<String>, Vec<&Vec<String>>> = BTreeMap::new();
        for (a, b) in edges.keys() {
            next.entry(a).or_default().push(b);
        }
        for ((a, b), made) in &edges {
            let Some(back) = shortest_path(&next, b, a) else { continue };
            // One line per source line: `perf/src/run/mod.rs:41: use prepare::A, use prepare::B`.
            let mut by_line: BTreeMap<(&str, usize), Vec<&str>> = BTreeMap::new();
            for (rel, line, said) in made {
                by_line.entry((rel, *line)).or_default().push(said);
            }
            climbs.push(Climb {
                level: tree.files[level].clone(),
                cycle: std::iter::once(a).chain(back.into_iter().take_while(|n| *n != a)).map(&name).collect(),
                at: by_line.iter().map(|((rel, line), said)| format!("perf/src/{rel}:{line}: {}", said.join(", "))).collect(),
            });
        }
    }
    climbs
}

/// The shortest path of edges from `from` to `to` (both included), if any.
fn shortest_path<'a>(
    next: &BTreeMap<&'a Vec<String>, Vec<&'a Vec<String>>>,
    from: &'a Vec<String>,
    to: &Vec<String>,
) -> Option<Vec<&'a Vec<String>>> {
    let mut came: BTreeMap<&Vec<String>, &Vec<String>> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(n) = queue.pop_front() {
        if n == to {
            let mut path = vec![n];
            while let Some(p) = came.get(path.last().unwrap()) {
                path.push(p);
            }
            path.reverse();
            return Some(path);
        }
        for m in next.get(n).into_iter().flatten() {
            if *m != from && !came.contains_key(m) {
                came.insert(m, n);
                queue.push_back(m);
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn layers_only_look_down() {
    let violations = layer_violations(&sources());
    assert!(violations.is_empty(), "layering broken:\n{}", violations.join("\n"));
}

#[test]
fn only_the_plan_sees_toml() {
    let violations = toml_violations(&sources());
    assert!(violations.is_empty(), "only plan/ reads TOML:\n{}", violations.join("\n"));
}

#[test]
fn below_the_command_line_nothing_prints() {
    let violations = print_violations(&sources());
    assert!(violations.is_empty(), "printing below cli/:\n{}", violations.join("\n"));
}

#[test]
fn one_owner_starts_environments() {
    // The gate, A/B and the experiment start what they measure through run::lifetime, which
    // stops every environment it started on every path; `cargo perf up` (cli/up.rs) keeps its
    // environment until Ctrl-C and is the one other caller.
    let violations = start_violations(&sources());
    assert!(violations.is_empty(), "environments started outside run::lifetime:\n{}", violations.join("\n"));
}

#[test]
fn no_function_runs_long_without_saying_why() {
    let violations = long_functions(&sources());
    assert!(violations.is_empty(), "long functions:\n{}", violations.join("\n"));
}

#[test]
fn files_of_a_module_import_each_other_without_cycles() {
    let climbs = import_cycles(&sources());
    let mut per_level: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &climbs {
        *per_level.entry(&c.level).or_default() += 1;
    }
    let counts: Vec<String> = per_level.iter().map(|(level, n)| format!("{level}: {n}")).collect();
    let list: String = climbs.iter().map(ToString::to_string).collect();
    assert!(
        climbs.is_empty(),
        "{} imports close a cycle inside a module (an import climbs) - {}:\n{list}",
        climbs.len(),
        counts.join(", ")
    );
}

/// The paths the reader finds in `text`, as `line: path`.
fn paths_in(text: &str) -> Vec<String> {
    named_paths(&code_tokens(text)).iter().map(|n| format!("{}: {n}", n.line)).collect()
}

fn expanded(tree: &str) -> Vec<String> {
    let toks = lex(tree);
    let toks: Vec<(usize, &str)> = toks.iter().map(|t| (t.line, t.text.as_str())).collect();
    expand_use(&toks).into_iter().map(|(line, p)| format!("{line}: {}", p.join("::"))).collect()
}

#[test]
fn the_checker_sees_what_it_must() {
    // The use-tree expander.
    assert_eq!(expanded("super::{judge, measure::measure_once}"), ["1: super::judge", "1: super::measure::measure_once"]);
    assert_eq!(expanded("crate::{engine::X, plan::{a, b}}"), ["1: crate::engine::X", "1: crate::plan::a", "1: crate::plan::b"]);
    assert_eq!(expanded("crate::summary::{self, RunContext as Ctx}"), ["1: crate::summary", "1: crate::summary::RunContext"]);
    assert_eq!(expanded("super::super::{EnvError, *}"), ["1: super::super::EnvError", "1: super::super::*"]);
    assert_eq!(expanded("self::x::Y"), ["1: self::x::Y"]);
    assert_eq!(expanded("::std::io"), ["1: ::std::io"]);

    // The reader: a multi-line use, inline paths, and nothing from comments, literals or tests.
    let text = r##"//! Docs naming crate::cli::Doc.
pub(crate) use crate::{
    summary::S,
    cli::{self, Thing},
};
/* block crate::cli::Block /* nested */ crate::cli::Still */
fn f() -> u8 {
    let s = "crate::cli::InString \" super::x";
    let r = r#"crate::cli::Raw " still"#;
    let (c, l): (char, &'static str) = ('"', "");
    crate::engine::run::go(); // crate::cli::LineComment
    super::y::Z::<u8>::new();
    0
}
#[cfg(test)]
mod tests {
    use crate::cli::Test;
}
#[cfg(test)]
use crate::cli::TestUse;
mod child;
fn after() { self::inner::g(); }
mod inline {
    use super::super::Up;
}
"##;
    assert_eq!(
        paths_in(text),
        [
            "3: use crate::summary::S",
            "4: use crate::cli",
            "4: use crate::cli::Thing",
            "11: crate::engine::run::go",
            "12: super::y::Z",
            "22: self::inner::g",
            "24: use super::super::Up",
        ]
    );
    assert!(balanced(&code_tokens(text)));
    assert!(balanced(&lex("fn f() { let (a, b) = ('}', \"{\"); /* } */ }")));
    assert!(!balanced(&lex("fn f() { g(); ")));
    let scopes: Vec<Vec<String>> = named_paths(&code_tokens(text)).into_iter().map(|n| n.scope).collect();
    assert_eq!(scopes.last().unwrap(), &["inline"]);

    // The checks, on a planted tree.
    let planted: Vec<Source> = [
        ("lib.rs", "pub mod cli;\npub mod compare;\npub mod env;\npub mod run;\npub mod summary;\n"),
        ("cli/mod.rs", "pub struct Thing;\n"),
        ("summary/mod.rs", "pub struct S;\nfn f() { let _ = \"println!\"; } // eprintln!\n"),
        // A grouped climbing import in a low layer: flagged for `cli`, not for `summary`.
        ("compare/mod.rs", "use crate::{summary::S, cli::Thing};\nfn g() { eprintln!(\"x\"); }\n"),
        ("run/mod.rs", "mod a;\nmod judge;\nmod measure;\nmod stress;\n\npub use judge::judge;\npub struct GateError;\n"),
        // A climb to mod.rs, which re-exports from this child: a cycle.
        ("run/judge.rs", "use super::GateError;\npub fn judge() {}\n"),
        // A climb to mod.rs, which only declares this child: no cycle.
        ("run/a.rs", "use super::GateError;\npub fn a() {}\n"),
        // Siblings, one through a group and the other in code.
        ("run/measure.rs", "pub fn measure_once() {}\nfn f() {\n    super::stress::search();\n}\n"),
        ("run/stress.rs", "use super::{a, measure::measure_once};\npub fn search() {}\n"),
        // A nested directory module whose parent file is `env/local.rs`.
        ("env/mod.rs", "pub mod local;\npub struct EnvError;\npub use local::LocalEnv;\n"),
        ("env/local.rs", "mod app;\npub struct LocalEnv;\nfn start() { app::launch(); }\n"),
        ("env/local/app.rs", "use super::super::EnvError;\nuse super::LocalEnv;\npub fn launch() {}\n"),
    ]
    .into_iter()
    .map(|(rel, text)| Source::new(rel, text))
    .collect();
    assert_eq!(
        layer_violations(&planted),
        ["perf/src/compare/mod.rs:1: `compare` uses `crate::cli` (`use crate::cli::Thing`), which is not below it"]
    );
    assert_eq!(print_violations(&planted), ["perf/src/compare/mod.rs:2: `eprintln!`: say it through run::Notes or return it"]);
    let tree = Tree::new(&planted);
    let from_app = ["env", "local", "app"].map(String::from);
    let abs = tree.resolve(&from_app, &["super".into(), "super".into(), "EnvError".into()]).unwrap();
    assert_eq!(tree.files[&tree.file_module(&abs)], "env/mod.rs");
    let abs = tree.resolve(&from_app[..2], &["app".into(), "launch".into()]).unwrap();
    assert_eq!(tree.files[&tree.file_module(&abs)], "env/local/app.rs");

    let climbs = import_cycles(&planted);
    let found: Vec<String> = climbs.iter().map(|c| format!("[{}] {}", c.level, c.cycle.join(" -> "))).collect();
    assert_eq!(
        found,
        [
            "[env/mod.rs] env/mod.rs -> env/local.rs and below",
            "[env/mod.rs] env/local.rs and below -> env/mod.rs",
            "[env/local.rs] env/local.rs -> env/local/app.rs",
            "[env/local.rs] env/local/app.rs -> env/local.rs",
            "[run/mod.rs] run/mod.rs -> run/judge.rs",
            "[run/mod.rs] run/judge.rs -> run/mod.rs",
            "[run/mod.rs] run/measure.rs -> run/stress.rs",
            "[run/mod.rs] run/stress.rs -> run/measure.rs",
        ]
    );
    let at: Vec<&[String]> = climbs.iter().map(|c| &c.at[..]).collect();
    assert_eq!(at[0], ["perf/src/env/mod.rs:3: use local::LocalEnv"]);
    assert_eq!(at[1], ["perf/src/env/local/app.rs:1: use super::super::EnvError"]);
    assert_eq!(at[4], ["perf/src/run/mod.rs:6: use judge::judge"]);
    assert_eq!(at[5], ["perf/src/run/judge.rs:1: use super::GateError"]);
    assert_eq!(at[6], ["perf/src/run/measure.rs:3: super::stress::search"]);
    assert_eq!(at[7], ["perf/src/run/stress.rs:1: use super::measure::measure_once"]);

    // Long functions: counted from `fn` to the closing brace, a `fn` type and a declaration
    // skipped, a reason above (among docs and attributes) or on the line accepted.
    let body = |n: usize| "    let x = [0u8; 2];\n".repeat(n);
    let text = format!(
        "fn short() {{\n{}}}\n/// Docs.\n// Long: one ladder of cases.\n#[inline]\nfn said() {{\n{}}}\n\
         fn unsaid(f: fn(u8) -> u8, a: [u8; 3]) -> u8 {{\n{}    f(a[0])\n}}\ntrait T {{ fn decl(&self); }}\n\
         fn inline_reason() {{ // Long: one table.\n{}}}\n",
        body(LONG_FUNCTION - 2),
        body(LONG_FUNCTION),
        body(LONG_FUNCTION - 2),
        body(LONG_FUNCTION),
    );
    let found = long_functions(&[Source::new("long.rs", &text)]);
    let unsaid_line = LONG_FUNCTION + 3 + (LONG_FUNCTION + 2) + 1;
    assert_eq!(
        found,
        [format!("perf/src/long.rs:{unsaid_line}: `unsaid` is {} lines: split it, or say why beside it (`// Long: …`)", LONG_FUNCTION + 1)]
    );
}
