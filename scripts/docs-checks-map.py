#!/usr/bin/env python3
"""Regenerates two sections of docs/checks.md from the source:

- the map from each check to its rule (file and function) and to the
  test files that name it (fixture tests: *_from_fixtures.rs,
  performance_rules.rs, reason_codes.rs; lab tests: lab_*.rs,
  compose_lab.rs), between <!-- map:start --> and <!-- map:end -->;
- the reason codes of every area (the `reasons!` blocks in src/checks/),
  between <!-- reasons:start --> and <!-- reasons:end -->.

Usage: python3 scripts/docs-checks-map.py            (rewrites docs/checks.md)
       python3 scripts/docs-checks-map.py --check    (exit 1 if it is stale)

tests/architecture.rs and tests/reason_codes.rs check the result; this
script only saves typing. Needs Python 3.11 (tomllib) and nothing else.
"""
import glob
import os
import re
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AREAS = [
    ("Common", "src/checks/reason.rs", "every check"),
    ("Access", "src/checks/access.rs", "ACC"),
    ("Permissions", "src/checks/permissions.rs", "ACC-005, ACC-006, ACC-007, ACC-011, MON-007"),
    ("Transport", "src/checks/transport.rs", "TLS"),
    ("Data", "src/checks/data.rs", "DATA, MON-001, MON-002"),
    ("Sessions", "src/checks/sessions.rs", "DATA-005"),
    ("Monitoring", "src/checks/monitoring.rs", "MON-003..006"),
    ("Performance", "src/checks/performance.rs", "PERF"),
    ("Cluster", "src/checks/cluster.rs", "CLU-001..007"),
    ("Placement", "src/checks/placement.rs", "CLU-008..010"),
    ("Network", "src/checks/network.rs", "NET"),
    ("Encryption", "src/checks/encryption.rs", "ENC"),
    ("Backup", "src/checks/backup.rs", "BAK"),
    ("Patch", "src/checks/patch.rs", "PATCH"),
]


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def call_args(text, start):
    """The top-level arguments of the call whose '(' ends just before start."""
    args, depth, i, begin = [], 0, start, start
    while True:
        c = text[i]
        if c == '"':
            i += 1
            while text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                args.append(text[begin:i])
                return [a.strip() for a in args if a.strip()]
            depth -= 1
        elif c == "," and depth == 0:
            args.append(text[begin:i])
            begin = i + 1
        i += 1


def checks():
    out = []
    for f in sorted(glob.glob(os.path.join(ROOT, "checks", "*.toml"))):
        with open(f, "rb") as fh:
            for c in tomllib.load(fh).get("check", []):
                out.append((c["id"], c["title"], c["rule"]))
    return out


def rules():
    found = {}
    for f in glob.glob(os.path.join(ROOT, "src", "checks", "*.rs")):
        text = read(os.path.relpath(f, ROOT))
        for m in re.finditer(r"Rule::new\(", text):
            args = call_args(text, m.end())
            found[args[0].strip('"')] = (os.path.relpath(f, ROOT), args[-1])
    return found


def map_table():
    cs = checks()
    rs = rules()
    named = {}
    for f in sorted(glob.glob(os.path.join(ROOT, "tests", "*.rs"))):
        text = read(os.path.relpath(f, ROOT))
        for cid, _, _ in cs:
            if re.search('"' + re.escape(cid) + '[/"]', text):
                named.setdefault(cid, []).append(os.path.basename(f))
    fixture = lambda n: n.endswith("_from_fixtures.rs") or n in ("performance_rules.rs", "reason_codes.rs")
    lab = lambda n: n.startswith("lab_") or n == "compose_lab.rs"
    lines = [
        "| id | title | rule: file → function | fixture tests | lab tests |",
        "|---|---|---|---|---|",
    ]
    for cid, title, rule in cs:
        f, fn = rs[rule]
        ts = named.get(cid, [])
        a = ", ".join(t for t in ts if fixture(t)) or "—"
        b = ", ".join(t for t in ts if lab(t)) or "—"
        lines.append(f"| {cid} | {title} | `{rule}`: {f} → `{fn}` | {a} | {b} |")
    return "\n".join(lines)


def reason_list():
    lines = []
    for area, f, which in AREAS:
        text = read(f)
        m = re.search(r"reasons! \{\s*///[^\n]*\n\s*" + area + r" => (\w+) \{(.*?)\n    \}\n\}", text, re.S)
        enum = "reason::Common" if area == "Common" else f"{os.path.basename(f)[:-3]}::{m.group(1)}"
        lines.append(f"- **{which}** (`{enum}` in {f}):")
        for doc, slug in re.findall(r'/// ([^\n]*)\n\s*\w+ = "([^"]+)",', m.group(2)):
            lines.append(f"  - `{slug}`: {doc}")
    return "\n".join(lines)


def replace(text, name, body):
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    a, b = text.index(start) + len(start), text.index(end)
    return text[:a] + "\n" + body + "\n" + text[b:]


def main():
    path = os.path.join(ROOT, "docs", "checks.md")
    old = read("docs/checks.md")
    new = replace(replace(old, "map", map_table()), "reasons", reason_list())
    if "--check" in sys.argv[1:]:
        if new != old:
            print("docs/checks.md is stale: run python3 scripts/docs-checks-map.py", file=sys.stderr)
            sys.exit(1)
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(new)


if __name__ == "__main__":
    main()
