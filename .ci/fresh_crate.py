#!/usr/bin/env python3
"""Builds README.md's code as a new user would: in a fresh crate that depends on the packaged
sioloop by path.

Run after `cargo package` (it needs target/package/sioloop-VERSION/). The fresh crate's
`[dependencies]` are README's Cargo.toml block (its `sioloop` line pointed at the unpacked
package), its `src/main.rs` is README's first Socket.IO example, and every other Rust block
of README is a binary in `src/bin/`. Hidden doctest lines (`# ...`) are shown and a block
without `fn main` is wrapped as rustdoc wraps it, so what builds here is what the doctests
build, but against the package and with versions resolved afresh from the registry (the
crate gets its own lock file). Everything is written under target/fresh-crate/, so the tree
stays clean. Exits non-zero if README loses one of these blocks or its code stops building.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATE = ROOT / "target" / "fresh-crate"


def fail(msg):
    print(f"fresh_crate: {msg}", file=sys.stderr)
    sys.exit(1)


def package_version():
    text = (ROOT / "Cargo.toml").read_text()
    m = re.search(r'^\[package\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
    if not m:
        fail("no version in Cargo.toml's [package]")
    return m.group(1)


def code_blocks(markdown):
    """(info string, body) of every fenced code block, in order."""
    blocks = []
    fence = re.compile(r"^```(.*)$")
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        m = fence.match(lines[i])
        if m:
            info = m.group(1).strip()
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append((info, body))
        i += 1
    return blocks


def is_rust(info):
    """Rustdoc's reading of an info string: no language means Rust."""
    words = [w for w in re.split(r"[,\s]+", info) if w]
    if any(w in ("ignore", "compile_fail", "text") for w in words):
        return False
    langs = [
        w for w in words if w not in ("no_run", "should_panic") and not w.startswith("edition")
    ]
    return not langs or langs == ["rust"]


def unhide(body):
    """Rustdoc's hidden lines (`# code`, a lone `#`) shown; `##` is an escaped `#`."""
    out = []
    for line in body:
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped == "#":
            out.append("")
        elif stripped.startswith("##"):
            out.append(indent + stripped[1:])
        elif stripped.startswith("# "):
            out.append(indent + stripped[2:])
        else:
            out.append(line)
    return out


def as_program(body):
    """A whole program from a doctest body, wrapped the way rustdoc wraps it."""
    code = "\n".join(unhide(body))
    header = "#![allow(unused)]\n"
    if re.search(r"\bfn\s+main\s*\(", code):
        return header + code + "\n"
    last = [line for line in code.splitlines() if line.strip()][-1].strip()
    if re.fullmatch(r"Ok::<\(\),.*>\(\(\)\);?", last):
        return (
            header
            + "fn main() {\n"
            + "fn _inner() -> Result<(), impl core::fmt::Debug> {\n"
            + code
            + "\n}\n_inner().unwrap()\n}\n"
        )
    return header + "fn main() {\n" + code + "\n}\n"


def main():
    version = package_version()
    package = ROOT / "target" / "package" / f"sioloop-{version}"
    if not (package / "Cargo.toml").is_file():
        fail(f"{package} is missing: run `cargo package` first")

    blocks = code_blocks((ROOT / "README.md").read_text())

    deps = [b for info, b in blocks if info == "toml" and "[dependencies]" in b]
    if len(deps) != 1:
        fail(f"README.md should have one ```toml block with [dependencies], found {len(deps)}")
    manifest_deps = []
    found = False
    for line in deps[0]:
        if re.match(r"\s*sioloop\s*=", line):
            line = f"sioloop = {{ path = {json.dumps(str(package))} }}"
            found = True
        manifest_deps.append(line)
    if not found:
        fail("README.md's [dependencies] block has no sioloop line")

    rust = [b for info, b in blocks if is_rust(info)]
    sio = [
        i
        for i, b in enumerate(rust)
        if "Server::bind" in "\n".join(b) and "EngineServer" not in "\n".join(b)
    ]
    if not sio:
        fail("README.md has no Rust block binding a sioloop::Server (the Socket.IO server)")

    if CRATE.exists():
        shutil.rmtree(CRATE)
    (CRATE / "src" / "bin").mkdir(parents=True)
    (CRATE / "Cargo.toml").write_text(
        "[package]\n"
        'name = "sioloop-readme"\n'
        'version = "0.0.0"\n'
        'edition = "2024"\n'
        "publish = false\n\n"
        + "\n".join(manifest_deps)
        + "\n\n# Not part of any workspace above it.\n[workspace]\n"
    )
    for i, body in enumerate(rust):
        path = CRATE / "src" / ("main.rs" if i == sio[0] else f"bin/readme_{i}.rs")
        path.write_text(as_program(body))
    print(f"fresh_crate: {CRATE} with sioloop from {package}, {len(rust)} README blocks")
    print((CRATE / "Cargo.toml").read_text(), flush=True)

    # Its own lock file, resolved from the registry as a new user's would be.
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(CRATE / "target"))
    result = subprocess.run(["cargo", "build", "--bins"], cwd=CRATE, env=env)
    if result.returncode != 0:
        fail("README.md's code does not build against the packaged crate")
    lock = (CRATE / "Cargo.lock").read_text()
    if f'name = "sioloop"\nversion = "{version}"\n' not in lock:
        fail("the fresh crate's lock file does not name the packaged sioloop")
    print("fresh_crate: README.md's code builds against the packaged crate")


if __name__ == "__main__":
    main()
