"""pyproject.toml's dependencies are what the bot needs: `registry check` imports nothing that only
an extra installs, and every requirement admits the versions the development environment holds
(torch 2.13.0's CPU build among them)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

try:
    import tomllib
except ImportError:  # Python 3.10: pip carries the same parser
    from pip._vendor import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
# Heavy parts of base packages that the check must not load either (int8 and fp16 conversions).
HEAVY_SUBMODULES = ("onnxruntime.quantization", "onnxruntime.transformers")
# Appended to an example card: what the card-targets and compress-spec checks read.
WIDER_CARD = """\
targets:
  - name: linux-x86_64
    quantize: dynamic
  - android-arm64
  - ios-arm64
  - cuda
compress:
  max_size: 2KB
  methods: [dynamic-int8, static-int8, fp16, mixed-precision, prune, distill, train-small]
"""
# Runs the real command line and writes the names of the modules it imported, as the process ends.
PROBE = """\
import atexit, json, runpy, sys
out, sys.argv = sys.argv[1], ["registry", *sys.argv[2:]]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
runpy.run_module("registry", run_name="__main__")
"""


def _normal(name: str) -> str:
    """A distribution's name as the package index compares names."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _name(requirement: str) -> str:
    return _normal(Requirement(requirement).name)


def _closure(names: set[str]) -> set[str]:
    """The installed distributions `names` need, themselves included (markers of this machine)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for r in requires:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(_name(r))
    return seen


def _extra_requirements() -> list[str]:
    own = f"{PROJECT['name']}["
    return [
        r
        for reqs in PROJECT["optional-dependencies"].values()
        for r in reqs
        if not r.startswith(own)
    ]


def extras_only_modules() -> set[str]:
    """Top-level modules of the installed distributions that only the extras bring in."""
    base = _closure({_name(r) for r in PROJECT["dependencies"]})
    extras = _closure({_name(r) for r in _extra_requirements()}) - base
    return {
        module
        for module, dists in metadata.packages_distributions().items()
        if any(_normal(d) in extras for d in dists)
    }


def test_check_imports_only_the_base_dependencies(tmp_path):
    forbidden = extras_only_modules()
    # the development environment holds every extra: the list is not vacuous
    assert {"torch", "openvino", "executorch", "sklearn", "dvclive", "matplotlib"} <= forbidden
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    subprocess.run([str(clone / "scripts/seed-examples")], check=True)
    # device targets and a compress section too, so that their checks run on real declarations
    with (clone / "models/wine-mlp/model.yaml").open("a") as card:
        card.write(WIDER_CARD)
    modules_file = tmp_path / "modules.json"

    # started outside the clone, so that the registry imported is the one under test, not its copy
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            str(modules_file),
            "-C",
            str(clone),
            "check",
            "--all",
            "--offline",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert proc.returncode == 0 and " 0 failed" in proc.stdout, proc.stdout + proc.stderr
    modules = json.loads(modules_file.read_text())
    imported = {m.split(".")[0] for m in modules}
    # the content checks ran: the weights were fetched from the local remote, loaded and run once
    # (a registry of local folders is opened without DVC's config code: `plain_remotes`)
    assert {"onnx", "onnxruntime"} <= imported, sorted(imported)
    assert "dvc" not in imported
    heavy = sorted(imported & forbidden) + [p for p in HEAVY_SUBMODULES if p in modules]
    assert heavy == [], f"registry check imported {heavy}: import them where they are used"


def test_every_requirement_admits_the_installed_versions():
    unmet = []
    for requirement in PROJECT["dependencies"] + _extra_requirements():
        req = Requirement(requirement)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            unmet.append(f"{requirement} (not installed)")
            continue
        if not req.specifier.contains(have, prereleases=True):
            unmet.append(f"{requirement} (installed: {have})")
    assert unmet == [], unmet


# --------------------------------------------------------------------------- a missing extra

# Runs the real command line with some top-level modules made unimportable, as on a machine whose
# environment lacks the extra that brings them.
WITHOUT = """\
import runpy, sys
blocked = set(sys.argv[1].split(","))

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Missing())
sys.argv = ["registry", *sys.argv[2:]]
runpy.run_module("registry", run_name="__main__")
"""


def _as_metadata() -> list[str]:
    """pyproject.toml's extras as an installed distribution's metadata lists them."""
    return [
        f'{r}; extra == "{extra}"'
        for extra, reqs in PROJECT["optional-dependencies"].items()
        for r in reqs
    ]


def test_a_missing_package_names_the_extra_that_installs_it():
    from registry.core.dependencies import missing_module

    def said(module, command=None):
        error = missing_module(ModuleNotFoundError(name=module), command, _as_metadata())
        return f"{error.message}\n{error.hint}"

    assert "[train]" in said("sklearn") and "'scikit-learn'" in said("sklearn")
    assert "[mobile]" in said("executorch.exir")
    assert "[package]" in said("openvino")
    # torch comes with three extras: the one named like the command comes first
    assert "git-model-registry[compress]'" in said("torch", "compress")
    assert "git-model-registry[train]'" in said("torch", "train")
    assert "scripts/bootstrap train" in said("torch", "train")
    # a package no extra lists: install it by name
    assert "pip install frobnicate" in said("frobnicate")
    # a module of the registry itself is a broken install, not a missing extra
    assert missing_module(ModuleNotFoundError(name="registry.training"), None, []) is None


def test_extras_in_the_hints_are_the_ones_pyproject_declares():
    from registry.core.dependencies import extras_providing

    for extra, reqs in PROJECT["optional-dependencies"].items():
        for r in reqs:
            if not r.startswith(f"{PROJECT['name']}["):
                assert extra in extras_providing(_name(r), _as_metadata()), (extra, r)


def _without(blocked: str, clone: Path, *args: str) -> subprocess.CompletedProcess:
    """`registry -C clone ARGS…` with the `blocked` modules unimportable, started outside it."""
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, blocked, "-C", str(clone), *args],
        cwd=clone.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_command_whose_extra_is_missing_says_what_to_install():
    proc = _without("torch", REPO, "train", "check")

    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr, proc.stderr
    assert "`registry train` needs the 'train' extra's Python package 'torch'" in proc.stderr
    assert "hint: pip install 'git-model-registry[train]'" in proc.stderr


def test_training_without_its_extra_stops_before_any_worker_starts(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)

    proc = _without("torch", clone, "train", "wine-mlp")

    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "FAILED" not in proc.stdout + proc.stderr and "worker" not in proc.stderr, proc.stderr
    assert "hint: pip install 'git-model-registry[train]'" in proc.stderr
    assert not (clone / "training" / "wine-mlp" / "results").exists()
