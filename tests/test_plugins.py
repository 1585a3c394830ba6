"""The one plug-in mechanism (`registry.core.plugins.Plugins`): declared order, lookups with the
nearest name, a package walked once, and the mistakes it refuses; then the five real families."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from registry.core.errors import UsageError

_packages = itertools.count()

FAMILY = """
from registry.core.plugins import Plugins


class Part:
    name: str
    order: int


PARTS = Plugins("part", __name__, order_by="order", helpers=("shared",))
"""


def _part(name: str, order: int) -> str:
    return textwrap.dedent(f'''
        from {{pkg}} import PARTS, Part
        from {{pkg}}._log import IMPORTS

        IMPORTS.append(__name__.rsplit(".", 1)[-1])


        @PARTS.register
        class P(Part):
            name = "{name}"
            order = {order}
        ''')


@pytest.fixture
def family(tmp_path, monkeypatch):
    """A family package, imported fresh: (its name, `write(module=text, …)` adding modules)."""
    pkg = f"plugin_family_{next(_packages)}"
    folder = tmp_path / pkg
    folder.mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(**modules: str):
        for module, text in modules.items():
            (folder / f"{module}.py").write_text(text.replace("{pkg}", pkg))
        import importlib

        importlib.invalidate_caches()
        return importlib.import_module(pkg)

    write(
        __init__=FAMILY,
        _log="IMPORTS = []\n",
        shared='raise ImportError("a helper module is never imported by load")\n',
    )
    yield pkg, write
    for name in [m for m in sys.modules if m == pkg or m.startswith(pkg + ".")]:
        del sys.modules[name]


def test_parts_come_in_the_declared_order_then_by_name(family):
    pkg, write = family
    module = write(zeta=_part("zeta", 1), mid=_part("mid", 2), alpha=_part("alpha", 1))
    assert list(module.PARTS.load()) == ["alpha", "zeta", "mid"]


def test_an_unknown_name_names_the_nearest_part(family):
    pkg, write = family
    module = write(alpha=_part("alpha", 1), beta=_part("beta", 2))
    with pytest.raises(UsageError) as e:
        module.PARTS.lookup("alpah")
    assert e.value.message == "no part named 'alpah'"
    assert e.value.hint == "did you mean 'alpha'? known parts: alpha, beta"
    assert module.PARTS.lookup("beta").name == "beta"


def test_each_module_is_imported_once_and_the_package_walked_once(family):
    pkg, write = family
    module = write(alpha=_part("alpha", 1), beta=_part("beta", 2))
    assert list(module.PARTS.load()) == ["alpha", "beta"]
    log = sys.modules[f"{pkg}._log"].IMPORTS
    write(gamma=_part("gamma", 3))  # appears after the first load: the package is not walked again
    for _ in range(3):
        assert list(module.PARTS.load()) == ["alpha", "beta"]
        module.PARTS.lookup("beta")
    assert sorted(log) == ["alpha", "beta"]  # and the helpers (`shared`, `_log`) never


def test_a_duplicate_name_is_refused(family):
    pkg, write = family
    module = write(alpha=_part("alpha", 1), again=_part("alpha", 2))
    with pytest.raises(RuntimeError, match=rf"two parts named 'alpha': {pkg}\.again\.P and "):
        module.PARTS.load()


def test_a_part_without_the_declared_order_is_refused(family):
    pkg, write = family
    module = write(
        loose='from {pkg} import PARTS, Part\n\n\n@PARTS.register\nclass P(Part):\n    name = "x"\n'
    )
    with pytest.raises(RuntimeError, match=r"part 'x' .* sets no number 'order'"):
        module.PARTS.load()


def test_a_module_that_registers_nothing_must_be_declared_a_helper(family):
    pkg, write = family
    module = write(alpha=_part("alpha", 1), util="def helper():\n    return 1\n")
    with pytest.raises(RuntimeError, match=rf"{pkg}\.util registers no part"):
        module.PARTS.load()


# --------------------------------------------------------------------------- the real families

FAMILIES = {
    "registry.checks:load_checks": [
        "card-fields",
        "compress-spec",
        "registry-files",
        "codeowners",
        "unique-name",
        "model-files",
        "config-file",
        "source-repo",
        "card-targets",
        "weights-storage",
        "metrics",
        "graph",
        "lifecycle",
        "dvc-artifact",
        "release-notes",
    ],
    "registry.compression.methods:load_methods": [
        "dynamic-int8",
        "static-int8",
        "fp16",
        "mixed-precision",
        "prune",
        "distill",
        "train-small",
    ],
    "registry.packaging.targets:load_all": [
        "android-arm64",
        "cuda",
        "ios-arm64",
        "linux-aarch64",
        "linux-x86_64",
        "windows-x64",
    ],
    "registry.packaging.converters:load_all": [
        "coreml",
        "executorch",
        "onnx",
        "onnx-fp16",
        "openvino-ir",
        "ort-format",
    ],
    "registry.packaging.engines:ENGINES.load": ["coreml", "executorch", "onnxruntime", "openvino"],
}


@pytest.mark.parametrize("loader", FAMILIES)
def test_every_family_loads_its_parts_in_its_declared_order(loader):
    import importlib

    module, _, attr = loader.partition(":")
    fn = importlib.import_module(module)
    for part in attr.split("."):
        fn = getattr(fn, part)
    assert list(fn()) == FAMILIES[loader]


def test_loading_the_checks_imports_no_report_module():
    code = (
        "import sys; from registry.checks import load_checks; load_checks(); "
        "print([m for m in ('registry.checks.report', 'registry.checks.github') "
        "if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    assert out.strip() == "[]"
