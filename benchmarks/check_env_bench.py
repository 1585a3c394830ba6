"""Benchmark of the validation bot's environment on a cold runner; writes docs/benchmarks.md.

What the check job of .github/workflows/validate.yml does when its cache has no entry, in a
throw-away clone of this repository under /tmp:

  (a) its install step, `scripts/bootstrap base` (a new venv, uv fetched by pip, then the registry
      and the dependencies `registry check` needs, from the package index), with the caches off
      (PIP_NO_CACHE_DIR, which bootstrap passes on to uv as `--no-cache`): wall time, the CPU time
      of its processes, and uv's own account of resolving, downloading and installing; then the
      same step with pip alone (REGISTRY_INSTALLER=pip) in a second clone, side by side;
  (b) the size of that venv on disk, after the install and after the first check;
  (c) `registry check --all` on the example models, with that venv: the first run (Python compiles
      the modules it imports) and a second one.

Goals: the environment at most 400 MB, the cold install at most 60 s. The figures go to
docs/benchmarks.md under `## Check environment`.

Usage:
    .venv/bin/python benchmarks/check_env_bench.py [--python PYTHON] [--keep] [--no-write]
                                                       [--no-pip]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_common  # benchmarks/bench_common.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Check environment"
GOAL_MB, GOAL_S = 400, 60


def run_timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float, list[tuple[float, str]]]:
    """Run `cmd`; return its wall time, the CPU time (user + system) of it and its children, and
    its output lines, each with the seconds since the start at which it came."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    for line in proc.stdout:
        lines.append((time.perf_counter() - start, line.rstrip("\n")))
    proc.wait()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        output = "\n".join(text for _, text in lines)
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{output}")
    return wall, cpu, lines


def disk_mb(path: Path) -> float:
    """Space the folder takes on disk (du), in MB."""
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0]) * 1024 / 1e6


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu})"


def index_settings(pip: list[str], env: dict) -> str:
    """Where pip takes packages from on this machine (its configuration), for the record."""
    out = subprocess.run([*pip, "config", "list"], capture_output=True, text=True, env=env).stdout
    found = re.findall(r"^\S+\.(index-url|extra-index-url|find-links)='(.+)'$", out, re.M)
    if not any(k == "index-url" for k, _ in found):
        found.insert(0, ("index-url", "https://pypi.org/simple (pip's default)"))
    return "; ".join(f"{k} {v}" for k, v in dict.fromkeys(found))


def largest(site: Path, count: int = 6) -> list[tuple[str, float]]:
    """The biggest entries of a site-packages folder, with their size on disk in MB."""
    sizes = [(entry.name, disk_mb(entry)) for entry in site.iterdir()]
    return sorted(sizes, key=lambda s: -s[1])[:count]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--python",
        default=os.environ.get("PYTHON", sys._base_executable),
        help="interpreter the venv is made from (the workflows use Python 3.12)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the clone and its venv")
    ap.add_argument("--no-write", action="store_true", help="print the section only")
    ap.add_argument("--no-pip", action="store_true", help="leave out the install with pip")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="registry-check-env-"))
    clone = work / "registry"
    try:
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        # this machine's pip settings, pip's cache off, and Python as a runner has it: no registry
        # on the path but the venv's, bytecode kept once compiled
        skip = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
        env = {k: v for k, v in os.environ.items() if k not in skip}
        env.update(PYTHON=args.python, PIP_NO_CACHE_DIR="1")
        load_before = os.getloadavg()
        wall, cpu, lines = run_timed(["scripts/bootstrap", "base"], clone, env)
        load_after = os.getloadavg()
        # the phases, from the times at which bootstrap announced them
        announced = [(t, text.removeprefix("==> ")) for t, text in lines if text.startswith("==> ")]
        ends = [t for t, _ in announced[1:]] + [wall]
        phases = [(text, end - t) for (t, text), end in zip(announced, ends)]
        # uv's own account of its install (resolving, downloading and building, installing)
        uv_steps = [
            text.strip()
            for _, text in lines
            if re.match(r"\s+(Resolved|Prepared|Installed|Uninstalled|Audited) ", text)
        ]
        # the same install with pip, side by side in this run (a second clone)
        pip_wall = pip_cpu = None
        if not args.no_pip:
            pip_clone = work / "registry-pip"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(pip_clone)], check=True)
            pip_env = {**env, "REGISTRY_INSTALLER": "pip"}
            pip_wall, pip_cpu, _ = run_timed(["scripts/bootstrap", "base"], pip_clone, pip_env)
        venv = clone / ".venv"
        vpy = str(venv / "bin" / "python")
        size_installed = disk_mb(venv)
        site = Path(
            subprocess.run(
                [vpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        biggest = largest(site)
        dists = json.loads(
            subprocess.run(
                [vpy, "-m", "pip", "list", "--format", "json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        versions = {d["name"].lower(): d["version"] for d in dists}
        check = [str(venv / "bin" / "registry"), "check", "--all"]
        first, _, out = run_timed(check, clone, env)
        second, _, _ = run_timed(check, clone, env)
        size_checked = disk_mb(venv)
        summary = next((t for _, t in reversed(out) if " checked: " in t), "")
        python = subprocess.run([vpy, "--version"], capture_output=True, text=True).stdout.strip()
        index = index_settings([vpy, "-m", "pip"], env)
        running = Path(sys.prefix).resolve()
        here_mb = disk_mb(running) if sys.prefix != sys.base_prefix else None
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    rows = [
        (
            "cold install: `scripts/bootstrap base`",
            f"{wall:.0f} s ({cpu:.0f} s CPU)",
            f"≤ {GOAL_S} s",
            met(wall <= GOAL_S),
        ),
        *((f"&nbsp;&nbsp;{text}", f"{seconds:.0f} s", "", "") for text, seconds in phases),
        *((f"&nbsp;&nbsp;&nbsp;&nbsp;uv: {text}", "", "", "") for text in uv_steps),
        *(
            [
                (
                    "the same install with pip (`REGISTRY_INSTALLER=pip`), in the same run",
                    f"{pip_wall:.0f} s ({pip_cpu:.0f} s CPU)",
                    f"≤ {GOAL_S} s",
                    met(pip_wall <= GOAL_S),
                )
            ]
            if pip_wall is not None
            else []
        ),
        (
            f"the venv on disk after the install ({len(dists)} distributions)",
            f"{size_installed:.0f} MB",
            f"≤ {GOAL_MB} MB",
            met(size_installed <= GOAL_MB),
        ),
        (
            "the venv on disk after the first check (bytecode of what it imported)",
            f"{size_checked:.0f} MB",
            f"≤ {GOAL_MB} MB",
            met(size_checked <= GOAL_MB),
        ),
        ("`registry check --all` on the example models, first run", f"{first:.1f} s", "", ""),
        ("the same, second run", f"{second:.1f} s", "", ""),
    ]
    if here_mb is not None:
        rows.append(
            (
                f"for comparison: the environment that ran this benchmark ({running.name})",
                f"{here_mb:.0f} MB",
                "",
                "",
            )
        )
    table = ["| measure | result | goal | met |", "| --- | ---: | --- | --- |"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    section = "\n".join(
        [
            SECTION,
            "",
            f"`.venv/bin/python benchmarks/check_env_bench.py --python {args.python}"
            + (" --no-pip" if args.no_pip else "")
            + "`: "
            "the check job of validate.yml on a runner with no cache entry, in a throw-away "
            "clone under /tmp: its install step `scripts/bootstrap base` with the installers' "
            "caches off (uv, fetched by pip into a temporary folder, installs from the package "
            "sources pip is configured with"
            + ("" if args.no_pip else "; the same step with pip alone beside it")
            + "), then "
            f"`registry check --all` on the example models ({summary}). "
            f"Machine: {machine()}, {python}, pip {versions.get('pip', '?')} in the venv; "
            f"package index: {index}. Load average {load_before[0]:.1f} when the install "
            f"started and {load_after[0]:.1f} when it ended (the cores are shared with other "
            "work: the CPU time of the install's processes is given beside its wall time).",
            "",
            *table,
            "",
            "Largest in the venv's site-packages: "
            + ", ".join(f"{name} {mb:.0f} MB" for name, mb in biggest)
            + ".",
            *(
                [
                    "",
                    f"Where the time goes (goal missed): the install's processes used the CPU for "
                    f"{cpu:.0f} s of its {wall:.0f} s; the rest is waiting on the package index "
                    "and its downloads (fetching uv, then uv's resolving and preparing above) and "
                    "on the shared cores.",
                ]
                if wall > GOAL_S
                else []
            ),
        ]
    )
    print(section)
    if not args.no_write:
        bench_common.write(SECTION, section)
        print(f"wrote {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
