#!/usr/bin/env python3
"""Dependency direction check for CI (Python 3 standard library only).

Two checks, both failing with the offending edge or path named:

1. Crate layering: every workspace crate's workspace dependencies (from
   `cargo metadata`) must be listed for it in LAYERS below. A crate missing
   from LAYERS is an error too, so a new crate has to take a place in the
   layering on purpose.
2. Module cycles: inside each crate, the top-level modules (a module's
   submodules count as the module) must not import each other in a cycle.
   Imports are read from `crate::...` and `super::...` paths in `src/**/*.rs`,
   test modules (`#[cfg(test)]`, files named `tests.rs`) left out. A name the
   crate root re-exports (`pub use records::*`) counts as an import of the
   module it comes from, so a cycle cannot hide behind a re-export. (Names
   a macro defines are not seen: an import of one is missed, never invented.)

`--self-test` runs both checks on a tiny synthetic crate graph and module
tree with one bad edge and one cycle, and fails unless both are reported.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

# Each workspace crate and the workspace crates it may depend on (normal,
# build and dev dependencies alike). Dependencies point toward the core.
LAYERS = {
    "flywheel-core": set(),
    "flywheel-stats": {"flywheel-core"},
    "flywheel-ml": {"flywheel-core"},
    "flywheel-metadata": {"flywheel-core"},
    "flywheel-artifacts": {"flywheel-core"},
    "flywheel-pipeline": {"flywheel-core"},
    "flywheel-data": {"flywheel-core", "flywheel-stats", "flywheel-ml"},
    "flywheel-registry": {
        "flywheel-core", "flywheel-metadata", "flywheel-artifacts", "flywheel-data", "flywheel-ml",
    },
    # The server's HTTP client (infra validation, `flywheel replay`): it
    # speaks the protocols, so it needs no server code.
    "flywheel-client": {"flywheel-core", "flywheel-data", "flywheel-stats", "flywheel-ml"},
    # Components publish through core's `ModelRegistry`, never the store;
    # `infra_validate` starts the prediction server in-process.
    "flywheel-components": {
        "flywheel-core", "flywheel-data", "flywheel-stats", "flywheel-ml", "flywheel-serve", "flywheel-client",
    },
    # Deployment files: checked with the pipeline they name.
    "flywheel-deploy": {"flywheel-core", "flywheel-pipeline"},
    # Scores windows of the prediction log (read through the server's
    # reader) against the training data (through the registry).
    "flywheel-monitor": {
        "flywheel-core", "flywheel-data", "flywheel-deploy", "flywheel-ml", "flywheel-stats", "flywheel-metadata",
        "flywheel-registry", "flywheel-serve",
    },
    # `flywheel up`: the deployment's service (its CLI only wires it).
    "flywheel-daemon": {
        "flywheel-core", "flywheel-deploy", "flywheel-metadata", "flywheel-monitor", "flywheel-orchestrator",
        "flywheel-registry", "flywheel-serve", "flywheel-data",
    },
    "flywheel-orchestrator": {
        "flywheel-core", "flywheel-pipeline", "flywheel-metadata", "flywheel-artifacts", "flywheel-registry",
        "flywheel-data",
    },
    # The prediction server reads the registry; only the components (infra
    # validation) and the CLI know of it.
    "flywheel-serve": {
        "flywheel-core", "flywheel-registry", "flywheel-data", "flywheel-ml", "flywheel-metadata",
        "flywheel-artifacts",
    },
    "flywheel-cli": {
        "flywheel-core", "flywheel-stats", "flywheel-ml", "flywheel-metadata", "flywheel-artifacts",
        "flywheel-pipeline", "flywheel-data", "flywheel-registry", "flywheel-components",
        "flywheel-orchestrator", "flywheel-serve", "flywheel-client", "flywheel-deploy",
        "flywheel-monitor", "flywheel-daemon",
    },
}

# Module cycles tolerated for now, each with why and when it goes. An entry
# whose cycle no longer exists is an error, so the list only shrinks.
ALLOWED_CYCLES = set()


# --- crate layering ---------------------------------------------------------


def crate_graph(metadata):
    """{crate: {workspace crates it depends on}} from `cargo metadata` JSON."""
    members = set(metadata["workspace_members"])
    packages = [p for p in metadata["packages"] if p["id"] in members]
    names = {p["name"] for p in packages}
    return {p["name"]: {d["name"] for d in p["dependencies"] if d["name"] in names} for p in packages}


def layering_problems(graph, layers):
    problems = []
    for crate in sorted(graph):
        if crate not in layers:
            problems.append(f"crate {crate} is not in the layering: add it to the layering in .ci/depcheck.py")
            continue
        for dep in sorted(graph[crate] - layers[crate]):
            problems.append(
                f"{crate} -> {dep}: {crate} may depend only on "
                f"{', '.join(sorted(layers[crate])) or 'no workspace crate'} (layering in .ci/depcheck.py)"
            )
    return problems


# --- module cycles ----------------------------------------------------------

TOKEN = re.compile(
    r"""//[^\n]*                      # line comment
      | /\*(?:[^*]|\*(?!/))*\*/       # block comment (not nested)
      | \bb?r(\#*)".*?"\1             # raw string
      | b?"(?:[^"\\]|\\.)*"           # string
      | b?'(?:[^'\\\n]|\\[^\n]{1,10}?)'  # char literal (not a lifetime)
    """,
    re.X | re.S,
)


def strip(src):
    """Source with comments, strings and chars blanked (offsets kept)."""
    return TOKEN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), src)


def block_end(src, open_brace):
    """The offset just past the brace matching the one at `open_brace`."""
    depth = 0
    for i in range(open_brace, len(src)):
        if src[i] == "{":
            depth += 1
        elif src[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(src)


CFG_TEST = r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?"
CFG_TEST_MOD = re.compile(CFG_TEST + r"mod\s+(\w+)\s*([;{])")
CFG_TEST_USE = re.compile(CFG_TEST + r"use\b[^;]*;")
INLINE_MOD = re.compile(r"(?:pub(?:\([^)]*\))?\s+)?\bmod\s+(\w+)\s*\{")


def without_tests(src):
    """Blanks `#[cfg(test)] mod x { ... }`; returns the text and the names of
    `#[cfg(test)] mod x;` declarations (their files are tests too).
    `#[cfg(test)] use ...;` is blanked as well."""
    src = CFG_TEST_USE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), src)
    test_files = set()
    while True:
        m = None
        for m in CFG_TEST_MOD.finditer(src):
            if m.group(2) == "{":
                break
            test_files.add(m.group(1))
            m = None
        if m is None:
            return src, test_files
        end = block_end(src, m.end() - 1)
        src = src[: m.start()] + re.sub(r"[^\n]", " ", src[m.start() : end]) + src[end:]


def inline_depth(src):
    """[(start, end, name)] of inline (non-test) modules, to resolve `super::`."""
    return [(m.end() - 1, block_end(src, m.end() - 1), m.group(1)) for m in INLINE_MOD.finditer(src)]


def module_files(src_dir):
    """{file: module path} for every .rs file under src/, crate root = []."""
    files = {}
    for dirpath, _, names in os.walk(src_dir):
        for name in names:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, src_dir).split(os.sep)
            stem = rel[-1][:-3]
            if len(rel) == 1 and stem in ("lib", "main"):
                files[path] = []
            elif stem == "mod":
                files[path] = rel[:-1]
            elif rel[0] == "bin":
                continue  # other binaries are roots of their own
            else:
                files[path] = rel[:-1] + [stem]
    return files


PATH = re.compile(r"\b(crate|super)((?:\s*::\s*(?:\w+|\{))+)")
USE_TREE = re.compile(r"\buse\s+(crate|super)\s*::\s*\{")
PUB_ITEM = re.compile(
    r"\bpub\s+(?:unsafe\s+)?(?:struct|enum|fn|type|const|static|trait|mod|union)\s+(\w+)"
)
ROOT_REEXPORT = re.compile(r"\bpub(?:\([^)]*\))?\s+use\s+(\w+)\s*::\s*([^;]+);")


def use_tree_paths(tree):
    """The first two segments of every path in a use tree `a::{b, c::d}, e`."""
    out = []
    depth, start, parts = 0, 0, []
    for i, ch in enumerate(tree + ","):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(tree[start:i].strip())
            start = i + 1
    for part in filter(None, parts):
        segs = [s.strip() for s in part.split("::", 1)]
        head = segs[0].split(" as ")[0].strip()
        if len(segs) == 2 and segs[1].startswith("{"):
            inner = segs[1][1 : segs[1].rfind("}")]
            out += [[head] + p for p in use_tree_paths(inner)]
        else:
            rest = segs[1].split("::")[0].strip() if len(segs) == 2 else None
            out.append([head] + ([rest.split(" as ")[0].strip()] if rest else []))
    return out


def references(src, module):
    """Absolute paths (lists of segments, at least the first) named in `src`,
    a file of module `module` (a list of segments; [] for the root)."""
    spans = inline_depth(src)
    found = []

    def base(kind, at):
        here = module + [name for (s, e, name) in spans if s < at < e]
        return [] if kind == "crate" else here[:-1]

    for m in USE_TREE.finditer(src):
        end = block_end(src, m.end() - 1)
        for p in use_tree_paths(src[m.end() : end - 1]):
            found.append(base(m.group(1), m.start()) + p)
    for m in PATH.finditer(src):
        segs = [s.strip() for s in m.group(2).split("::")[1:]]
        segs = [s for s in segs if s and s != "{"]
        start = base(m.group(1), m.start())
        while segs and segs[0] == "super":  # super::super::x
            segs, start = segs[1:], start[:-1]
        found.append(start + segs[:2])
    return [p for p in found if p]


def root_exports(root_src, modules, pub_items):
    """{name: module} for names the crate root re-exports from a module."""
    out = {}
    for m in ROOT_REEXPORT.finditer(root_src):
        mod, tree = m.group(1), m.group(2).strip()
        if mod not in modules:
            continue
        if tree == "*":
            names = pub_items.get(mod, set())
        else:
            names = {p[-1] for p in use_tree_paths(tree.strip("{}")) if p}
            names |= {p[0] for p in use_tree_paths(tree.strip("{}")) if len(p) == 1}
        for n in names:
            if n != "self":
                out[n] = mod
    return out


def module_graph(src_dir):
    """{top-level module: {top-level modules it imports}} for one crate."""
    files = module_files(src_dir)
    texts, test_files = {}, set()
    for path, module in files.items():
        with open(path, encoding="utf-8") as f:
            text, tests = without_tests(strip(f.read()))
        texts[path] = text
        test_files |= {tuple(module + [t]) for t in tests}
    keep = {
        p: m for p, m in files.items()
        if os.path.basename(p) != "tests.rs" and not any(tuple(m[:i]) in test_files for i in range(1, len(m) + 1))
    }
    tops = {m[0] for m in keep.values() if m}
    pub_items = {}
    for p, m in keep.items():
        if m:
            pub_items.setdefault(m[0], set()).update(PUB_ITEM.findall(texts[p]))
    root_src = "".join(texts[p] for p, m in keep.items() if not m)
    exports = root_exports(root_src, tops, pub_items)
    graph = {t: set() for t in tops}
    for p, m in keep.items():
        if not m:
            continue
        for ref in references(texts[p], m):
            target = ref[0] if ref[0] in tops else exports.get(ref[0])
            if target and target != m[0]:
                graph[m[0]].add(target)
    return graph


def find_cycles(graph):
    """Every elementary cycle's strongly connected component, as one path
    through it (`a -> b -> a`), with the component's members."""
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(set(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [(cycle_path(graph, comp), frozenset(comp)) for comp in comps]


def cycle_path(graph, comp):
    """A shortest cycle through the component's first member, as a path."""
    start = min(comp)
    prev, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & comp):
                if w == start:
                    path = [v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return list(reversed(path)) + [start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return [start, start]


def cycle_problems(crate_dirs, allowed):
    problems, used = [], set()
    for crate, src_dir in sorted(crate_dirs.items()):
        for path, members in find_cycles(module_graph(src_dir)):
            if (crate, members) in allowed:
                used.add((crate, members))
                continue
            problems.append(f"{crate}: modules import each other in a cycle: {' -> '.join(path)}")
    for crate, members in sorted(allowed - used, key=lambda a: (a[0], sorted(a[1]))):
        problems.append(
            f"{crate}: the allowed cycle between {', '.join(sorted(members))} is gone: "
            "remove it from ALLOWED_CYCLES in .ci/depcheck.py"
        )
    return problems


# --- driver -----------------------------------------------------------------


def check_workspace():
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--locked"],
        check=True, capture_output=True, text=True,
    ).stdout
    metadata = json.loads(out)
    members = set(metadata["workspace_members"])
    dirs = {
        p["name"]: os.path.join(os.path.dirname(p["manifest_path"]), "src")
        for p in metadata["packages"] if p["id"] in members
    }
    return layering_problems(crate_graph(metadata), LAYERS) + cycle_problems(dirs, ALLOWED_CYCLES)


def self_test():
    """Both checks on a synthetic workspace: each must report its fault."""
    metadata = {
        "workspace_members": ["a 0", "b 0", "c 0"],
        "packages": [
            {"id": "a 0", "name": "a", "dependencies": [{"name": "b"}, {"name": "serde"}]},
            {"id": "b 0", "name": "b", "dependencies": [{"name": "a"}]},
            {"id": "c 0", "name": "c", "dependencies": []},
        ],
    }
    layering = layering_problems(crate_graph(metadata), {"a": {"b"}, "b": set()})
    files = {
        "lib.rs": "mod x; mod y; mod z; mod w; pub use w::*;\n#[cfg(test)]\nmod tests;\n",
        "x.rs": "use crate::y::Thing;\nfn e(_: crate::Exported) {}\n// crate::z::not_an_import\nfn f() { let s = \"crate::z\"; }\n",
        "y/mod.rs": "mod inner;\npub struct Thing;\n",
        "y/inner.rs": "use crate::{z::Other, w};\n",
        "z.rs": "pub fn g() -> super::x::Unit { todo!() }\npub struct Other;\n",
        "w.rs": "pub struct Exported;\n#[cfg(test)]\n#[allow(unused)]\nmod tests { use crate::x; }\n"
        "#[cfg(test)]\nuse crate::z::Other;\n",
        "tests.rs": "use crate::w::Exported; use crate::x;\n",
        "v.rs": "",
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(tmp, name)), exist_ok=True)
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.write(text)
        graph = module_graph(tmp)
        cycles = cycle_problems({"a": tmp}, {("a", frozenset({"p", "q"}))})
    expected_graph = {"x": {"y", "w"}, "y": {"z", "w"}, "z": {"x"}, "w": set(), "v": set()}
    checks = [
        ("a bad edge is named", "b -> a: b may depend only on no workspace crate" in " ".join(layering)),
        ("an unknown crate is named", any("crate c is not in the layering" in p for p in layering)),
        ("a non-workspace dependency is not an edge", not any("serde" in p for p in layering)),
        ("comments, strings and tests are not imports", graph == expected_graph),
        ("a cycle is reported as a path", "a: modules import each other in a cycle: x -> y -> z -> x" in cycles),
        ("a stale allowance is reported", any("between p, q is gone" in p for p in cycles)),
    ]
    failed = [name for name, ok in checks if not ok]
    for name, ok in checks:
        print(f"self-test: {'ok' if ok else 'FAILED'}: {name}")
    if failed:
        print(f"graph: {graph}\nlayering: {layering}\ncycles: {cycles}", file=sys.stderr)
    return not failed


def main(argv):
    if argv[1:] == ["--self-test"]:
        return 0 if self_test() else 1
    if argv[1:]:
        print("usage: depcheck.py [--self-test]", file=sys.stderr)
        return 2
    problems = check_workspace()
    for p in problems:
        print(f"depcheck: {p}", file=sys.stderr)
    if problems:
        return 1
    print("depcheck: crate layering and module imports are acyclic and point toward the core")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
