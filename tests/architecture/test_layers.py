"""The package's architecture, enforced: layers only import downwards, and no module imports itself
back through others (docs/architecture.md).

The import graph is read from the source with `ast`, so imports inside functions count as much as
those at the top of a module: a lazy import is still a dependency. Imports under
`if TYPE_CHECKING:` count for the direction of layers (a type still names a higher layer) but not
for cycles (they never run).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "registry"

# Lowest first. A subpackage may import its own modules and those of any lower layer; subpackages
# on the same layer are independent of each other. Must match docs/architecture.md.
LAYERS: list[tuple[str, ...]] = [
    ("core",),
    ("formats",),
    ("cards",),
    ("versions",),
    ("packaging", "compression"),
    ("publishing", "consuming"),
    ("checks",),
    ("training", "catalog"),
    ("api",),
    ("cli",),
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}
# Modules directly in registry/ that belong to no layer: the package's version and `python -m`.
TOP_LEVEL = {"registry", "registry.__main__"}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module
    line: int
    type_only: bool


def module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_modules(package: Path) -> dict[str, Path]:
    """Every module of the package, by dotted name (package data such as templates excluded)."""
    return {
        module_name(p, package): p
        for p in sorted(package.rglob("*.py"))
        if "templates" not in p.parts
    }


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """The registry modules `name` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    type_only = _type_checking_lines(tree)
    found = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("registry")
        ):
            for alias in node.names:  # `from registry.pkg import module` imports that module
                sub = f"{node.module}.{alias.name}"
                targets.append(sub if sub in modules else node.module)
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(
                f"{path}:{node.lineno}: relative import; write the absolute module name"
            )
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.split(".")[0] == "registry"]
        for target in dict.fromkeys(targets):
            found.append(Import(name, target, node.lineno, node.lineno in type_only))
    return found


def import_graph(package: Path = PACKAGE) -> list[Import]:
    modules = python_modules(package)
    return [imp for name, path in modules.items() for imp in imports_of(name, path, modules)]


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and module not in TOP_LEVEL else None


def layer_violations(graph: list[Import]) -> list[str]:
    problems = []
    for imp in graph:
        src, dst = layer_of(imp.source), layer_of(imp.target)
        if src is None or dst is None or src == dst:
            continue
        if src not in RANK or dst not in RANK:
            missing = src if src not in RANK else dst
            problems.append(
                f"{imp.source}:{imp.line}: registry.{missing} is on no layer; add it to LAYERS"
            )
        elif RANK[dst] >= RANK[src]:
            how = (
                "a higher layer"
                if RANK[dst] > RANK[src]
                else "an independent package on the same layer"
            )
            problems.append(f"{imp.source}:{imp.line} imports {imp.target}, {how}")
    return problems


def cycles(graph: list[Import]) -> list[list[str]]:
    """Strongly connected groups of more than one module, over imports that run."""
    edges: dict[str, set[str]] = {}
    for imp in graph:
        if not imp.type_only and imp.source != imp.target:
            edges.setdefault(imp.source, set()).add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_subpackage_is_on_a_layer_and_says_what_it_owns():
    for sub in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()):
        assert sub.name in RANK, (
            f"registry/{sub.name}/ is on no layer: add it to LAYERS and docs/architecture.md"
        )
        doc = ast.get_docstring(ast.parse((sub / "__init__.py").read_text(encoding="utf-8"))) or ""
        assert "may import" in doc.lower(), (
            f"registry/{sub.name}/__init__.py must say what it owns and may import"
        )


def test_layers_import_only_downwards():
    assert layer_violations(import_graph()) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_no_module_left_directly_in_the_package():
    loose = sorted(
        m
        for m in python_modules(PACKAGE)
        if m.count(".") == 1
        and m not in TOP_LEVEL
        and (PACKAGE / f"{m.split('.')[1]}.py").is_file()
    )
    assert loose == [], "every module belongs to a capability subpackage (docs/architecture.md)"


# --------------------------------------------------------------------------- the checker itself


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "registry" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "registry"


@pytest.mark.parametrize(
    "source, text, expected",
    [
        (
            "core/a.py",
            "from registry.cards.b import x\n",
            "imports registry.cards.b, a higher layer",
        ),
        (
            "cards/b.py",
            "def f():\n    from registry.checks import c\n",
            "imports registry.checks, a higher layer",
        ),
        (
            "packaging/c.py",
            "import registry.compression.d\n",
            "an independent package on the same layer",
        ),
    ],
)
def test_an_upward_import_is_reported_even_inside_a_function(tmp_path, source, text, expected):
    package = _write(
        tmp_path,
        {
            "__init__.py": "",
            "cards/__init__.py": "",
            "cards/b.py": "x = 1\n",
            "checks/__init__.py": "",
            "compression/__init__.py": "",
            "compression/d.py": "",
            "core/__init__.py": "",
            "packaging/__init__.py": "",
            source: text,
        },
    )
    problems = layer_violations(import_graph(package))
    assert len(problems) == 1 and expected in problems[0]


def test_a_cycle_is_reported_but_a_type_only_import_is_not(tmp_path):
    package = _write(
        tmp_path,
        {
            "__init__.py": "",
            "core/__init__.py": "",
            "core/a.py": "from registry.core import b\n",
            "core/b.py": "def f():\n    from registry.core import a\n",
        },
    )
    assert cycles(import_graph(package)) == [["registry.core.a", "registry.core.b"]]
    (package / "core/b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from registry.core import a\n"
    )
    assert cycles(import_graph(package)) == []


# --------------------------------------------------------------------------- the documents agree


def _subpackages() -> set[str]:
    return {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def test_readme_layout_names_every_subpackage():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    listed = {m.group(1) for m in re.finditer(r"^  ([a-z_]+)/ ", block, re.M)}
    assert listed == _subpackages()


def test_architecture_doc_shows_the_layers_of_this_test():
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| `([a-z_]+)/` \|", doc, re.M)
    assert {name: int(rank) for rank, name in rows} == RANK
    assert set(RANK) == _subpackages()
