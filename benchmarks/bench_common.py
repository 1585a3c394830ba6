"""What the benchmark scripts share: their section of docs/benchmarks.md, and compiled sources.

Each script owns one `## ` section of docs/benchmarks.md and rewrites it whole with `write`; the
other sections are left byte for byte. `compile_registry` compiles the registry's modules before
a script times the command line: where PYTHONDONTWRITEBYTECODE is set (as on some CI machines)
Python would otherwise compile every registry module it imports in every timed run, while the
installed packages run from the bytecode their install wrote.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nFigures written by the scripts in `benchmarks/`.\n"


def write(section: str, text: str, doc: Path = DOCS) -> None:
    """Put `text` (which starts with the `section` heading) in place of that section of `doc`,
    or after its last section when it has none; the file is replaced atomically."""
    if not text.startswith(section + "\n"):
        raise ValueError(f"the text for {doc.name} does not start with its heading {section!r}")
    old = doc.read_text() if doc.exists() else HEADER
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    body = text.rstrip("\n") + "\n"
    if pattern.search(old):
        new = pattern.sub(lambda _: body + "\n", old)
    else:
        new = old.rstrip("\n") + "\n\n" + body
    tmp = doc.with_name(doc.name + ".tmp")
    tmp.write_text(new.rstrip("\n") + "\n")
    tmp.replace(doc)


def compile_registry(python: str = sys.executable) -> None:
    """Write the bytecode of every registry module, as an install or a first run would."""
    subprocess.run([python, "-m", "compileall", "-q", str(ROOT / "registry")], check=True)
