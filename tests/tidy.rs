//! Mechanical checks of the invariants ARCHITECTURE.md states: every source file starts with
//! a `//!` doc line, and the sans-IO layers (and the Socket.IO layer) touch no sockets,
//! clock, threads, locks or OS randomness.
//!
//! The layer check reads the code, not its text: a small tokenizer drops comments, doc
//! comments and string and char literals; `#[cfg(test)]` items (and modules declared under
//! it) are left out; `use` declarations are expanded (nested groups, `self`, aliases, globs)
//! and every path in the code is resolved through them, so `use std::{net::TcpStream}`,
//! `use std::time::Instant as Clock; Clock::now()` and `std::thread::spawn` are all seen,
//! and an `Instant::now()` inside a string is not.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn files_under(rel: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let mut files = Vec::new();
    if root.is_dir() {
        rust_files(&root, &mut files);
    } else {
        files.push(root);
    }
    files
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let mut files = files_under("src");
    files.extend(files_under("examples"));
    files.extend(files_under("tests"));
    assert!(files.len() > 5, "found too few files: {files:?}");
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            let text = fs::read_to_string(f).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .collect();
    assert!(missing.is_empty(), "files without a //! line: {missing:?}");
}

// ---- The tokenizer ----

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::` or one punctuation character.
    Punct(&'static str),
    Other(char),
    /// A string, char or number literal (its content does not matter here).
    Literal,
    Lifetime,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

/// The punctuation the checks look at; anything else is `Tok::Other`.
const PUNCT: &[&str] = &[
    "#", "[", "]", "(", ")", "{", "}", "<", ">", ";", ",", ".", "*", "!",
];

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits Rust source into tokens, without comments. Never panics on odd input: an
/// unterminated literal or comment runs to the end of the file.
fn tokenize(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        let start_line = line;
        let mut push = |tok: Tok| {
            out.push(Token {
                tok,
                line: start_line,
            })
        };
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            // Block comments nest.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if let Some(len) = raw_string_start(&chars, i) {
            // r"..", r#".."#, br"..", cr#".."#: no escapes; ends at a quote and as many #.
            let hashes = len - raw_prefix_len(&chars, i) - 1;
            i += len;
            while i < chars.len() {
                if chars[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                    i += 1 + hashes;
                    break;
                }
                if chars[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            push(Tok::Literal);
        } else if c == '"' || ((c == 'b' || c == 'c') && at(i + 1) == '"') {
            i += if c == '"' { 1 } else { 2 };
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if at(i) == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 1;
            push(Tok::Literal);
        } else if c == '\'' || (c == 'b' && at(i + 1) == '\'') {
            let q = if c == '\'' { i } else { i + 1 };
            if at(q + 1) == '\\' {
                // An escaped char: up to the closing quote.
                i = q + 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                push(Tok::Literal);
            } else if at(q + 2) == '\'' {
                i = q + 3;
                push(Tok::Literal);
            } else {
                // A lifetime or a label: 'a, 'static.
                i = q + 1;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                push(Tok::Lifetime);
            }
        } else if c == 'r' && at(i + 1) == '#' && is_ident_start(at(i + 2)) {
            // A raw identifier: r#type.
            let start = i + 2;
            i = start;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            push(Tok::Ident(chars[start..i].iter().collect()));
        } else if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            push(Tok::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            while i < chars.len()
                && (is_ident_char(chars[i]) || (chars[i] == '.' && at(i + 1).is_ascii_digit()))
            {
                i += 1;
            }
            push(Tok::Literal);
        } else if c == ':' && at(i + 1) == ':' {
            i += 2;
            push(Tok::Punct("::"));
        } else {
            i += 1;
            match PUNCT.iter().find(|p| p.starts_with(c)) {
                Some(p) => push(Tok::Punct(p)),
                None => push(Tok::Other(c)),
            }
        }
    }
    out
}

/// The length of `r`, `br` or `cr` at `i`, if a raw string starts there.
fn raw_prefix_len(chars: &[char], i: usize) -> usize {
    match (chars.get(i), chars.get(i + 1)) {
        (Some('r'), _) => 1,
        (Some('b' | 'c'), Some('r')) => 2,
        _ => 0,
    }
}

/// If a raw string starts at `i`: the length of its opening (prefix, hashes, quote).
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    let prefix = raw_prefix_len(chars, i);
    if prefix == 0 {
        return None;
    }
    // Only at the start of a word: the `r` of `bar"` is not a prefix.
    if i > 0 && is_ident_char(chars[i - 1]) {
        return None;
    }
    let mut j = i + prefix;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some(j + 1 - i)
}

// ---- What the code refers to ----

/// One thing the code refers to.
#[derive(Clone, Debug, PartialEq)]
enum Reference {
    /// A path, resolved through the file's `use` declarations; `from_use` if it is one.
    Path {
        segments: Vec<String>,
        from_use: bool,
    },
    /// A method call: `.name(`.
    Method(String),
}

fn is(tokens: &[Token], i: usize, tok: &Tok) -> bool {
    tokens.get(i).is_some_and(|t| &t.tok == tok)
}

fn ident(tokens: &[Token], i: usize) -> Option<&str> {
    match tokens.get(i).map(|t| &t.tok) {
        Some(Tok::Ident(name)) => Some(name),
        _ => None,
    }
}

/// The tokens without `#[cfg(test)]` items; also returns the names of modules declared
/// under `#[cfg(test)]` without a body (`mod tests;`: a whole test-only file).
fn without_test_items(tokens: &[Token]) -> (Vec<Token>, Vec<String>) {
    let cfg_test = [
        Tok::Punct("#"),
        Tok::Punct("["),
        Tok::Ident("cfg".into()),
        Tok::Punct("("),
        Tok::Ident("test".into()),
        Tok::Punct(")"),
        Tok::Punct("]"),
    ];
    let mut out = Vec::new();
    let mut test_modules = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let is_cfg_test = tokens.len() - i >= cfg_test.len()
            && cfg_test
                .iter()
                .enumerate()
                .all(|(k, tok)| is(tokens, i + k, tok));
        if !is_cfg_test {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        // The item: up to a `;` outside brackets, or through its first `{ ... }` block.
        i += cfg_test.len();
        if ident(tokens, i) == Some("mod")
            && let Some(name) = ident(tokens, i + 1)
            && is(tokens, i + 2, &Tok::Punct(";"))
        {
            test_modules.push(name.to_owned());
        }
        let mut depth = 0usize;
        while i < tokens.len() {
            match tokens[i].tok {
                Tok::Punct("(" | "[") => depth += 1,
                Tok::Punct(")" | "]") => depth = depth.saturating_sub(1),
                Tok::Punct(";") if depth == 0 => {
                    i += 1;
                    break;
                }
                Tok::Punct("{") if depth == 0 => {
                    let mut braces = 0usize;
                    while i < tokens.len() {
                        match tokens[i].tok {
                            Tok::Punct("{") => braces += 1,
                            Tok::Punct("}") => braces -= 1,
                            _ => {}
                        }
                        i += 1;
                        if braces == 0 {
                            break;
                        }
                    }
                    break;
                }
                _ => {}
            }
            i += 1;
        }
    }
    (out, test_modules)
}

/// Parses one use tree at `*i` under `prefix`; appends each leaf path with the name it
/// binds (`None` for a glob or `_`).
fn use_tree(
    tokens: &[Token],
    i: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut path = prefix;
    if is(tokens, *i, &Tok::Punct("::")) {
        *i += 1;
    }
    loop {
        match tokens.get(*i).map(|t| &t.tok) {
            Some(Tok::Ident(name)) => {
                let name = name.clone();
                *i += 1;
                if is(tokens, *i, &Tok::Punct("::")) {
                    path.push(name);
                    *i += 1;
                    continue;
                }
                // `self` names the path so far.
                let bound = if name == "self" {
                    path.last().cloned()
                } else {
                    path.push(name.clone());
                    Some(name)
                };
                let bound = if ident(tokens, *i) == Some("as") {
                    *i += 2;
                    ident(tokens, *i - 1)
                        .filter(|a| *a != "_")
                        .map(str::to_owned)
                } else {
                    bound
                };
                out.push((path, bound));
                return;
            }
            Some(Tok::Punct("*")) => {
                *i += 1;
                path.push("*".into());
                out.push((path, None));
                return;
            }
            Some(Tok::Punct("{")) => {
                *i += 1;
                while *i < tokens.len() && !is(tokens, *i, &Tok::Punct("}")) {
                    let before = *i;
                    use_tree(tokens, i, path.clone(), out);
                    if is(tokens, *i, &Tok::Punct(",")) {
                        *i += 1;
                    } else if *i == before {
                        *i += 1; // something unexpected: step over it
                    }
                }
                *i += 1;
                return;
            }
            _ => return,
        }
    }
}

/// Everything the code of one file refers to, with line numbers, resolved through its
/// `use` declarations (file-wide; scopes are not modelled, which only errs on the strict
/// side), and the test-only modules it declares.
fn references(src: &str) -> (Vec<(usize, Reference)>, Vec<String>) {
    let (tokens, test_modules) = without_test_items(&tokenize(src));
    let mut found: Vec<(usize, Vec<String>, bool)> = Vec::new();
    let mut methods = Vec::new();
    let mut aliases: HashMap<String, Vec<String>> = HashMap::new();
    let mut i = 0;
    while i < tokens.len() {
        let line = tokens[i].line;
        // An identifier after `.` or after a path's `::` continues something; after a
        // leading `::` (nothing path-like before it) it starts an absolute path.
        let after_dot_or_path = i > 0
            && match tokens[i - 1].tok {
                Tok::Punct(".") | Tok::Lifetime => true,
                Tok::Punct("::") => {
                    i >= 2 && matches!(tokens[i - 2].tok, Tok::Ident(_) | Tok::Punct(">"))
                }
                _ => false,
            };
        match ident(&tokens, i) {
            Some("use") => {
                i += 1;
                let mut leaves = Vec::new();
                use_tree(&tokens, &mut i, Vec::new(), &mut leaves);
                for (path, bound) in leaves {
                    if let Some(name) = bound {
                        aliases.insert(name, path.clone());
                    }
                    found.push((line, path, true));
                }
            }
            Some("extern") if ident(&tokens, i + 1) == Some("crate") => {
                if let Some(name) = ident(&tokens, i + 2) {
                    let path = vec![name.to_owned()];
                    let bound = if ident(&tokens, i + 3) == Some("as") {
                        ident(&tokens, i + 4).unwrap_or(name)
                    } else {
                        name
                    };
                    aliases.insert(bound.to_owned(), path.clone());
                    found.push((line, path, true));
                }
                i += 3;
            }
            Some(name) if after_dot_or_path && is(&tokens, i - 1, &Tok::Punct(".")) => {
                if is(&tokens, i + 1, &Tok::Punct("(")) {
                    methods.push((line, name.to_owned()));
                }
                i += 1;
            }
            Some(name) if !after_dot_or_path => {
                let mut segments = vec![name.to_owned()];
                i += 1;
                while is(&tokens, i, &Tok::Punct("::")) {
                    if is(&tokens, i + 1, &Tok::Punct("<")) {
                        // A turbofish: skip the generic arguments.
                        i += 1;
                        let mut depth = 0usize;
                        while i < tokens.len() {
                            match tokens[i].tok {
                                Tok::Punct("<") => depth += 1,
                                Tok::Punct(">") => depth = depth.saturating_sub(1),
                                _ => {}
                            }
                            i += 1;
                            if depth == 0 {
                                break;
                            }
                        }
                    } else if let Some(next) = ident(&tokens, i + 1) {
                        segments.push(next.to_owned());
                        i += 2;
                    } else {
                        break;
                    }
                }
                found.push((line, segments, false));
            }
            _ => i += 1,
        }
    }
    let resolve = |segments: Vec<String>| -> Vec<String> {
        let mut segments = segments;
        // Aliases can build on each other (`use std::time; use time::Instant;`).
        for _ in 0..8 {
            match aliases.get(&segments[0]) {
                Some(full) if full.len() > 1 || full[0] != segments[0] => {
                    let mut resolved = full.clone();
                    resolved.extend(segments.drain(1..));
                    if resolved == segments {
                        break;
                    }
                    segments = resolved;
                }
                _ => break,
            }
        }
        segments
    };
    let mut refs: Vec<(usize, Reference)> = found
        .into_iter()
        .map(|(line, segments, from_use)| {
            let segments = if from_use && segments.len() == 1 {
                segments
            } else {
                resolve(segments)
            };
            (line, Reference::Path { segments, from_use })
        })
        .collect();
    refs.extend(
        methods
            .into_iter()
            .map(|(line, name)| (line, Reference::Method(name))),
    );
    (refs, test_modules)
}

// ---- The rules ----

/// What a rule looks for in a reference.
#[derive(Clone, Copy, Debug)]
enum Pattern {
    /// A crate used by path (`mio::Poll`, `use mio::...`, `extern crate mio`); a lone
    /// identifier of that name (a variable) is not the crate.
    Crate(&'static str),
    /// A path that starts with these segments.
    Prefix(&'static [&'static str]),
    /// A path that ends with these segments (`Instant::now`, however `Instant` came in).
    Suffix(&'static [&'static str]),
    /// A path with this segment anywhere (`Mutex`, whichever crate it is from).
    Segment(&'static str),
    /// A method call `.name(`.
    Method(&'static str),
}

impl Pattern {
    fn matches(self, reference: &Reference) -> bool {
        match (self, reference) {
            (Pattern::Crate(name), Reference::Path { segments, from_use }) => {
                segments[0] == name && (*from_use || segments.len() > 1)
            }
            (Pattern::Prefix(prefix), Reference::Path { segments, .. }) => {
                segments.len() >= prefix.len() && segments.iter().zip(prefix).all(|(a, b)| a == b)
            }
            (Pattern::Suffix(suffix), Reference::Path { segments, .. }) => {
                segments.len() >= suffix.len()
                    && segments[segments.len() - suffix.len()..]
                        .iter()
                        .zip(suffix)
                        .all(|(a, b)| a == b)
            }
            (Pattern::Segment(name), Reference::Path { segments, .. }) => {
                segments.iter().any(|s| s == name)
            }
            (Pattern::Method(name), Reference::Method(called)) => called == name,
            _ => false,
        }
    }
}

/// A rule: what it forbids, and the patterns that break it.
type Rule = (&'static str, &'static [Pattern]);

const NO_MIO: Rule = ("mio", &[Pattern::Crate("mio")]);
const NO_SOCKETS: Rule = (
    "sockets",
    &[
        Pattern::Prefix(&["std", "net", "TcpStream"]),
        Pattern::Prefix(&["std", "net", "TcpListener"]),
        Pattern::Prefix(&["std", "net", "UdpSocket"]),
        Pattern::Prefix(&["std", "os", "unix", "net"]),
        Pattern::Crate("socket2"),
    ],
);
const NO_CLOCK: Rule = (
    "clock reads",
    &[
        Pattern::Suffix(&["Instant", "now"]),
        Pattern::Suffix(&["SystemTime", "now"]),
        // `instant.elapsed()` reads the clock too.
        Pattern::Method("elapsed"),
    ],
);
const NO_THREADS: Rule = ("threads", &[Pattern::Prefix(&["std", "thread"])]);
const NO_LOCKS: Rule = (
    "locks",
    &[Pattern::Segment("Mutex"), Pattern::Segment("RwLock")],
);
const NO_RANDOM: Rule = ("OS randomness", &[Pattern::Crate("getrandom")]);
const NO_CHANNELS: Rule = ("channels", &[Pattern::Prefix(&["std", "sync", "mpsc"])]);

/// The pure layers: parsers, state machines and indexes, driven with bytes and time.
const PURE: &[Rule] = &[
    NO_MIO,
    NO_SOCKETS,
    NO_CLOCK,
    NO_THREADS,
    NO_LOCKS,
    NO_RANDOM,
    NO_CHANNELS,
];
/// The Socket.IO layer: like the pure layers, but its `Handle` is an mpsc queue.
const SOCKETIO_SERVER: &[Rule] = &[
    NO_MIO, NO_SOCKETS, NO_CLOCK, NO_THREADS, NO_LOCKS, NO_RANDOM,
];

/// The rule breaks in one file's source: `(line, rule, what was used)`.
fn violations(src: &str, rules: &[Rule]) -> Vec<(usize, &'static str, String)> {
    let (refs, _) = references(src);
    let mut out = Vec::new();
    for (line, reference) in &refs {
        for (rule, patterns) in rules {
            if patterns.iter().any(|p| p.matches(reference)) {
                let what = match reference {
                    Reference::Path { segments, .. } => segments.join("::"),
                    Reference::Method(name) => format!(".{name}()"),
                };
                out.push((*line, *rule, what));
            }
        }
    }
    out
}

/// The files of a layer that are compiled outside tests: a module declared under
/// `#[cfg(test)]` (`mod tests;`) is left out with its file.
fn layer_files(rel: &str) -> Vec<PathBuf> {
    let files = files_under(rel);
    let mut test_only: Vec<PathBuf> = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("read");
        let dir = match file.file_name().and_then(|n| n.to_str()) {
            Some("mod.rs" | "lib.rs") => file.parent().map(Path::to_path_buf),
            _ => file.with_extension("").into(),
        };
        let Some(dir) = dir else { continue };
        for module in references(&text).1 {
            test_only.push(dir.join(format!("{module}.rs")));
            test_only.push(dir.join(&module).join("mod.rs"));
        }
    }
    files
        .into_iter()
        .filter(|f| !test_only.contains(f))
        .collect()
}

#[test]
fn sans_io_layers_do_no_io() {
    let layers: [(&str, &[Rule]); 5] = [
        ("src/protocol", PURE),
        ("src/rooms.rs", PURE),
        ("src/metrics.rs", PURE),
        ("src/client_log.rs", PURE),
        ("src/server", SOCKETIO_SERVER),
    ];
    let mut problems = Vec::new();
    let mut checked = 0;
    for (layer, rules) in layers {
        for file in layer_files(layer) {
            let text = fs::read_to_string(&file).expect("read");
            checked += 1;
            for (line, rule, what) in violations(&text, rules) {
                problems.push(format!("{}:{line}: {rule}: `{what}`", file.display()));
            }
        }
    }
    assert!(checked > 20, "found too few files: {checked}");
    assert!(
        problems.is_empty(),
        "only src/engine may do IO, read the clock, or use threads, locks or OS randomness:\n{}",
        problems.join("\n")
    );
}

/// The checker itself: snippets that must break a rule, and snippets that must not.
#[test]
fn the_layer_check_reads_code_not_text() {
    let must_fail: &[(&str, &str)] = &[
        ("use std::{net::TcpStream, time::Instant};", "sockets"),
        (
            "use std::{net::{self, IpAddr}}; fn f() { net::TcpListener::bind(a); }",
            "sockets",
        ),
        ("use std :: { net :: { UdpSocket as U } };", "sockets"),
        ("fn f() { ::std::net::TcpStream::connect(a); }", "sockets"),
        ("use std::os::unix::net::UnixStream;", "sockets"),
        (
            "use std::time::Instant; fn f() { Instant::now(); }",
            "clock reads",
        ),
        (
            "use std::time::Instant as Clock; fn f() { let t = Clock::now(); }",
            "clock reads",
        ),
        (
            "use std::time; fn f() { time::SystemTime::now(); }",
            "clock reads",
        ),
        (
            "use std::time; use time::Instant; fn f() { Instant::now(); }",
            "clock reads",
        ),
        ("fn f() { std::time::Instant::now(); }", "clock reads"),
        (
            "use std::time::*; fn f() { Instant::now(); }",
            "clock reads",
        ),
        (
            "fn f(t: Instant) -> u64 { t.elapsed().as_secs() }",
            "clock reads",
        ),
        ("fn f() { std::thread::spawn(|| {}); }", "threads"),
        ("use std::thread::sleep; fn f() { sleep(d); }", "threads"),
        ("fn f() { std::thread::Builder::new(); }", "threads"),
        ("use std::sync::{Arc, Mutex};", "locks"),
        ("static L: std::sync::RwLock<u8> = x;", "locks"),
        ("use mio::net::TcpStream;", "mio"),
        ("use mio;", "mio"),
        ("use mio as m; fn f() { m::Poll::new(); }", "mio"),
        ("extern crate mio;", "mio"),
        ("fn f() { getrandom::fill(&mut b); }", "OS randomness"),
        ("use std::sync::mpsc::channel;", "channels"),
        (
            "fn f() -> Vec<u8> { Vec::<u8>::new(); std::thread::current(); }",
            "threads",
        ),
    ];
    for (src, rule) in must_fail {
        let found = violations(src, PURE);
        assert!(
            found.iter().any(|(_, r, _)| r == rule),
            "{src:?} must break {rule:?}, found {found:?}"
        );
    }
    let must_pass: &[&str] = &[
        r#"fn f() -> &'static str { "Instant::now() std::thread::spawn mio::Poll" }"#,
        "// Instant::now()\n/// std::net::TcpStream\n//! use mio;\nfn f() {}",
        "/* mio::Poll /* nested std::thread */ Instant::now() */ fn f() {}",
        r##"const S: &str = r#"use mio::Poll; "Instant::now()""#;"##,
        r#"const B: &[u8] = br"std::thread"; const C: &[u8] = b"Mutex";"#,
        r#"fn f() { let q = '"'; let s = "Instant::now()"; let e = '\''; }"#,
        r#"fn f<'a>(x: &'a str) -> &'a str { let _ = "SystemTime::now()"; x }"#,
        "#[cfg(test)]\nmod tests { use std::time::Instant; fn t() { Instant::now(); } }",
        "#[cfg(test)]\nuse std::thread;\nfn f() {}",
        "#[cfg(test)]\nmod tests;",
        "use std::time::{Duration, Instant}; fn f(now: Instant) -> Instant { now + Duration::ZERO }",
        "use std::net::{IpAddr, SocketAddr}; use std::sync::Arc;",
        "fn f(now: Instant, at: Instant) { let elapsed = now.saturating_duration_since(at); }",
        "fn f() { let mio = 1; let getrandom = mio + 1; }",
        "struct Now; impl Now { fn now() {} } fn f() { Now::now(); }",
    ];
    for src in must_pass {
        let found = violations(src, PURE);
        assert!(found.is_empty(), "{src:?} must pass, found {found:?}");
    }
    // The Socket.IO layer may use a channel (its Handle), and nothing else more.
    assert!(violations("use std::sync::{mpsc, Arc};", SOCKETIO_SERVER).is_empty());
    assert!(!violations("use std::thread;", SOCKETIO_SERVER).is_empty());
    // Test-only modules are found, so their files can be left out.
    assert_eq!(
        references("#[cfg(test)]\nmod tests;\nmod real;").1,
        vec!["tests".to_owned()]
    );
}
