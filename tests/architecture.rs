//! The crate's layering, checked from the source: the module graph of
//! `src/` is acyclic, `evidence` and `net` are leaves, checks never reach a
//! probe or the network, signing, the run directory and the export never
//! reach a probe, no two files import each other, and the audit binary
//! neither starts processes nor embeds a private key (the lab is its own
//! crate, `lab/`).
//!
//! Why a test over `use crate::` lines rather than `cargo modules`: it needs
//! nothing installed, runs in CI with the other tests, and names the file
//! and line of an offending import. It reads non-test code only (everything
//! from a file's `#[cfg(test)]` on is left out), since unit tests may build
//! fixtures from anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module of a file under `src/` (`checks/access.rs` -> `checks`).
fn module_of(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Non-test code of a file, without `//` comments.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every top-level module `src_code` refers to: `crate::x` paths and the
/// names inside `use crate::{x, y::z}` groups.
fn referenced(src_code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = src_code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

/// Module -> (module it uses -> first file that does).
fn graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(&src).unwrap()))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut g: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let m = module_of(rel);
        if m == "lib" || m == "main" {
            continue;
        }
        let deps = g.entry(m.clone()).or_default();
        for d in referenced(&code(&std::fs::read_to_string(f).unwrap())) {
            if d != m && modules.contains(&d) {
                deps.entry(d).or_insert_with(|| rel.display().to_string());
            }
        }
    }
    g
}

fn find_cycle(g: &BTreeMap<String, BTreeMap<String, String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle = path[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for d in g.get(n).into_iter().flat_map(|m| m.keys()) {
            if let Some(c) = visit(d, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(n, g, &mut Vec::new(), &mut done))
}

#[test]
fn the_module_graph_is_acyclic() {
    let g = graph();
    assert!(g.len() > 10, "read the modules: {g:?}");
    if let Some(c) = find_cycle(&g) {
        let hops: Vec<String> = c
            .windows(2)
            .map(|w| format!("{} -> {} (in src/{})", w[0], w[1], g[&w[0]][&w[1]]))
            .collect();
        panic!("import cycle: {}", hops.join(", "));
    }
}

#[test]
fn evidence_and_net_are_leaves_and_checks_never_reach_probes_or_the_network() {
    let g = graph();
    for leaf in ["evidence", "net"] {
        assert!(g[leaf].is_empty(), "{leaf} imports {:?}", g[leaf]);
    }
    let allowed: BTreeSet<&str> = ["evidence", "policy"].into();
    for (dep, file) in &g["checks"] {
        assert!(
            allowed.contains(dep.as_str()),
            "checks import `{dep}` (src/{file}): checks judge evidence and policy only"
        );
    }
    for dep in ["checks", "report", "engine", "cmd", "cli"] {
        assert!(
            !g["probes"].contains_key(dep),
            "probes import `{dep}` (src/{})",
            g["probes"][dep]
        );
    }
}

#[test]
fn signing_the_run_directory_the_export_and_the_store_never_reach_a_probe() {
    let g = graph();
    for m in ["sign", "run", "export", "aws", "store"] {
        assert!(g.contains_key(m), "no module `{m}` read: {:?}", g.keys());
        assert!(
            !g[m].contains_key("probes"),
            "{m} imports `probes` (src/{}): AWS plumbing is in `aws`, run files in `run`",
            g[m]["probes"]
        );
    }
}

/// A file's module path: `cmd/run.rs` -> `cmd::run`, `probes/tls/mod.rs`
/// -> `probes::tls`, `lib.rs` -> the crate root.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") || parts == ["lib"] {
        parts.pop();
    }
    parts
}

/// Non-test code of a file (its `#[cfg(test)] mod tests` left out),
/// without `//` comments.
fn file_code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    code(text)
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// File -> the files whose items it names: `crate::`, `super::` and
/// `self::` paths, and paths through the child modules it declares
/// (`run::run_one`, `pub use acl::*`), each resolved to the file of the
/// longest module path it names. Declaring a child (`mod x;`) is not an
/// import.
fn file_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let files: BTreeMap<Vec<String>, String> = paths
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(&src).unwrap();
            (module_path(rel), rel.display().to_string())
        })
        .collect();
    let resolve = |path: &[String]| -> Option<&String> {
        (0..=path.len()).rev().find_map(|n| files.get(&path[..n]))
    };
    let mut g = BTreeMap::new();
    for (module, rel) in &files {
        let text = file_code(&std::fs::read_to_string(src.join(rel)).unwrap());
        let mut children = BTreeSet::new();
        let mut body = String::new();
        for line in text.lines() {
            let t = line.trim_start();
            let t = t
                .strip_prefix("pub(crate) ")
                .or_else(|| t.strip_prefix("pub "))
                .unwrap_or(t);
            match t.strip_prefix("mod ") {
                Some(rest) if rest.trim_end().ends_with(';') => {
                    children.insert(ident(rest).to_string());
                }
                _ => {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
        let mut deps = BTreeSet::new();
        let bytes = body.as_bytes();
        let mut i = 0;
        while let Some(at) = body[i..].find("::") {
            let end = i + at;
            i = end + 2;
            // The path's first segment: the identifier just before `::`,
            // unless that is itself a later segment of a longer path.
            let start = body[..end]
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(0, |p| p + 1);
            if start >= 2 && &bytes[start - 2..start] == b"::" {
                continue;
            }
            let head = &body[start..end];
            let mut base: Vec<String> = match head {
                "crate" => Vec::new(),
                "super" => module[..module.len().saturating_sub(1)].to_vec(),
                "self" => module.clone(),
                h if children.contains(h) => {
                    let mut m = module.clone();
                    m.push(h.to_string());
                    m
                }
                _ => continue,
            };
            // The rest of the path: segments, or one `{a, b::c}` group.
            let mut rest = &body[end + 2..];
            let mut tails: Vec<Vec<String>> = Vec::new();
            loop {
                if let Some(group) = rest.strip_prefix('{') {
                    let close = group.find('}').unwrap_or(group.len());
                    for part in group[..close].split(',') {
                        let segs: Vec<String> = part
                            .trim()
                            .split("::")
                            .map(|s| ident(s.trim()).to_string())
                            .filter(|s| !s.is_empty())
                            .collect();
                        tails.push(segs);
                    }
                    break;
                }
                let seg = ident(rest);
                if seg.is_empty() {
                    tails.push(Vec::new());
                    break;
                }
                rest = &rest[seg.len()..];
                base.push(seg.to_string());
                match rest.strip_prefix("::") {
                    Some(r) => rest = r,
                    None => {
                        tails.push(Vec::new());
                        break;
                    }
                }
            }
            for tail in tails {
                let mut full = base.clone();
                full.extend(tail);
                if let Some(f) = resolve(&full) {
                    if f != rel {
                        deps.insert(f.clone());
                    }
                }
            }
        }
        g.insert(rel.clone(), deps);
    }
    g
}

#[test]
fn no_two_files_import_each_other() {
    let g = file_graph();
    assert!(g.len() > 40, "read the files: {:?}", g.keys());
    // The resolver sees what it must: a child named through its parent's
    // declaration, a `super::` path, and a `crate::` path to a mod.rs.
    assert!(
        g["cmd/mod.rs"].contains("cmd/run.rs"),
        "{:?}",
        g["cmd/mod.rs"]
    );
    assert!(
        g["probes/acl/mod.rs"].contains("probes/scaffold.rs"),
        "{:?}",
        g["probes/acl/mod.rs"]
    );
    assert!(
        g["export/mod.rs"].contains("run/mod.rs"),
        "{:?}",
        g["export/mod.rs"]
    );
    let mut circles = Vec::new();
    for (a, deps) in &g {
        for b in deps {
            if a < b && g.get(b).is_some_and(|d| d.contains(a)) {
                circles.push(format!("src/{a} <-> src/{b}"));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "files that import each other (move what both need into a third file): {circles:#?}"
    );
}

#[test]
fn the_audit_binary_starts_no_process_and_embeds_no_key() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for f in files {
        let text = code(&std::fs::read_to_string(&f).unwrap());
        for banned in [
            "std::process::Command",
            "process::Command",
            "Command::new",
            "include_bytes!",
            "include_str!(\"../fixtures/pki",
            "PRIVATE KEY",
            "waitpid",
        ] {
            assert!(
                !text.contains(banned),
                "{} contains `{banned}`: process spawning and test key material belong in lab/",
                f.display()
            );
        }
    }
}

/// Offsets of PEM private-key blocks in `bytes`: a `-----BEGIN ` header
/// whose label ends in `PRIVATE KEY-----` followed by base64 text. The bare
/// labels (`PRIVATE KEY`, `RSA PRIVATE KEY`, ...) that PEM parsers carry
/// as constants are not key material and are not counted.
fn pem_private_keys(bytes: &[u8]) -> Vec<usize> {
    let begin = b"-----BEGIN ";
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = bytes[i..].windows(begin.len()).position(|w| w == begin) {
        let start = i + at;
        let rest = &bytes[start + begin.len()..];
        let header_end = rest.iter().take(40).position(|&b| b == b'\n');
        if let Some(end) = header_end {
            let header = &rest[..end];
            let body = &rest[end + 1..];
            let base64_body = body.len() >= 64
                && body[..64]
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=\n\r".contains(b));
            if header.ends_with(b"PRIVATE KEY-----") && base64_body {
                out.push(start);
            }
        }
        i = start + begin.len();
    }
    out
}

#[test]
fn the_audit_binary_holds_no_private_key_but_the_lab_binary_does() {
    let audit = std::fs::read(env!("CARGO_BIN_EXE_epic-audit")).unwrap();
    assert_eq!(
        pem_private_keys(&audit),
        Vec::<usize>::new(),
        "a PEM private key is compiled into the audit binary"
    );
    // The scanner finds keys where there are some: the lab embeds the
    // test PKI (fixtures/pki, public test keys) on purpose.
    let lab = Path::new(env!("CARGO_BIN_EXE_epic-audit")).with_file_name("epic-audit-lab");
    if let Ok(lab) = std::fs::read(&lab) {
        assert!(
            pem_private_keys(&lab).len() >= 7,
            "the scanner should find the lab's 7 test keys"
        );
    }
    let key = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pki/client.key"))
        .unwrap();
    assert_eq!(pem_private_keys(&key), vec![0]);
}

#[test]
fn the_checks_table_cites_what_the_policy_cites() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/checks.md"))
            .unwrap();
    let policy = epic_audit::policy::Policy::builtin().unwrap();
    let mut rows = BTreeMap::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        if cells.len() == 4 && policy.get(cells[0]).is_some() {
            rows.insert(cells[0].to_string(), cells[3].to_string());
        }
    }
    assert_eq!(
        rows.len(),
        policy.checks.len(),
        "one docs/checks.md row per check"
    );
    for c in &policy.checks {
        assert_eq!(
            rows[&c.id],
            epic_audit::hipaa::list(&c.hipaa),
            "docs/checks.md's HIPAA column for {} differs from checks/*.toml",
            c.id
        );
    }
}

/// Checks no lab variant can fail, with the reason: the only ones a map row
/// may leave without a lab test.
const NO_LAB_VARIANT: [(&str, &str); 2] = [
    (
        "TLS-003",
        "Debian's OpenSSL 3 refuses to load a SHA-1-signed certificate at its default security level",
    ),
    (
        "TLS-008",
        "redis-server serves one tls-cert-file on its client and bus ports",
    ),
];

#[test]
fn the_map_names_each_checks_title_rule_and_the_tests_that_fail_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/checks.md")).unwrap();
    let policy = epic_audit::policy::Policy::builtin().unwrap();
    let registry = epic_audit::checks::registry();
    // What `epic-audit checks` lists: the same ids and titles as the map.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_epic-audit"))
        .args(["checks", "--format", "json"])
        .current_dir(root.join("docs"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let listed: BTreeMap<String, String> = listed
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["title"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut rows = BTreeMap::new();
    for line in docs.lines() {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        if cells.len() == 5 && policy.get(cells[0]).is_some() {
            rows.insert(cells[0].to_string(), cells);
        }
    }
    assert_eq!(
        rows.iter()
            .map(|(id, c)| (id.clone(), c[1].to_string()))
            .collect::<BTreeMap<_, _>>(),
        listed,
        "docs/checks.md's map and `epic-audit checks` list different ids or titles"
    );
    let mentions = |file: &str, id: &str| {
        let text = std::fs::read_to_string(root.join("tests").join(file))
            .unwrap_or_else(|_| panic!("{id}: tests/{file} does not exist"));
        text.contains(&format!("\"{id}\"")) || text.contains(&format!("\"{id}/"))
    };
    for c in &policy.checks {
        let cells = &rows[&c.id];
        // `rule`: file → `function`, as the registry and the source have it.
        let (rule, place) = cells[2].split_once(": ").unwrap();
        assert_eq!(rule.trim_matches('`'), c.rule, "{}: rule", c.id);
        assert!(registry.contains_key(c.rule.as_str()), "{}", c.rule);
        let (file, func) = place.split_once(" → ").unwrap();
        let source = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(
            source.contains(&format!("fn {}(", func.trim_matches('`')))
                && source.contains(&format!("\"{}\"", c.rule)),
            "{}: {place} does not define {}",
            c.id,
            c.rule
        );
        // At least one fixture test, and every test named exists and
        // names the check.
        assert_ne!(cells[3], "—", "{} has no fixture test", c.id);
        for (col, kind) in [(3, "fixture"), (4, "lab")] {
            if cells[col] == "—" {
                assert!(
                    kind == "lab" && NO_LAB_VARIANT.iter().any(|(id, _)| *id == c.id),
                    "{} has no {kind} test",
                    c.id
                );
                continue;
            }
            for file in cells[col].split(", ") {
                assert!(
                    mentions(file, &c.id),
                    "{}: tests/{file} does not name it",
                    c.id
                );
            }
        }
    }
    for (id, why) in NO_LAB_VARIANT {
        assert!(
            docs.contains(why),
            "docs/checks.md does not say why {id} has no lab variant"
        );
    }
}

/// Every `.rs` file under `dir`, recursively, sorted.
fn all_rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    rust_files(dir, &mut out);
    out.sort();
    out
}

/// (name, first line, lines) of every function of a rustfmt-formatted
/// file: from its `fn` line to the `}` at the same indentation.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let body = l.trim_start();
        let indent = &l[..l.len() - body.len()];
        let rest = ["pub(crate) ", "pub ", ""]
            .iter()
            .find_map(|v| body.strip_prefix(v))
            .unwrap_or(body);
        let rest = rest.strip_prefix("async ").unwrap_or(rest);
        let Some(sig) = rest.strip_prefix("fn ") else {
            continue;
        };
        let name: String = sig
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{indent}}}");
        if let Some(end) = lines[i..].iter().position(|x| *x == close) {
            out.push((name, i + 1, end + 1));
        }
    }
    out
}

#[test]
fn rules_are_short_and_no_file_is_long() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut long_files = Vec::new();
    for dir in ["src", "lab/src", "tests"] {
        for f in all_rust_files(&root.join(dir)) {
            let n = std::fs::read_to_string(&f).unwrap().lines().count();
            if n > 900 {
                long_files.push(format!(
                    "{} ({n} lines)",
                    f.strip_prefix(root).unwrap().display()
                ));
            }
        }
    }
    assert_eq!(
        long_files,
        Vec::<String>::new(),
        "files over 900 lines: split them"
    );
    let mut long_rules = Vec::new();
    let mut seen = 0;
    for f in all_rust_files(&root.join("src/checks")) {
        let text = std::fs::read_to_string(&f).unwrap();
        for (name, line, n) in functions(&text) {
            seen += 1;
            if n > 120 {
                long_rules.push(format!(
                    "{}:{line} {name} ({n} lines)",
                    f.strip_prefix(root).unwrap().display()
                ));
            }
        }
    }
    assert!(seen > 50, "read the checks' functions ({seen})");
    assert_eq!(
        long_rules,
        Vec::<String>::new(),
        "functions over 120 lines in src/checks: split them into a classify step and a decide step"
    );
}
