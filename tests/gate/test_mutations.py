"""Hundreds of damaged versions of a valid model folder (`factories.damaged`: lines dropped,
repeated, re-indented, values swapped for hostile ones, bytes flipped), each judged by the bot
in-process with `--traceback`'s strictness: every one ends in findings (or a `RegistryError` with
its message), none in an exception the bot would print as a crash. Seeded: a failure names its
seed and round, and the same run reproduces it."""

from __future__ import annotations

import random

import pytest

from factories import damaged, init_registry, mlp_onnx


@pytest.mark.parametrize("seed", [1, 2])
def test_a_damaged_model_folder_gets_findings_never_a_crash(tmp_path, seed):
    from registry.checks import CheckOptions, run_checks
    from registry.core.errors import RegistryError
    from registry.core.repo import RegistryRepo

    reg = init_registry(tmp_path / "registry", tmp_path / "storage")
    onnx = mlp_onnx()
    reg.write({"models/.gitkeep": ""})
    reg.add_model("fz", onnx)
    folder = reg.root / "models" / "fz"
    good = {n: (folder / n).read_text() for n in ("model.yaml", "config.yaml", "model.onnx.dvc")}
    repo = RegistryRepo(reg.root)
    options = CheckOptions(
        content=False, offline=True, allow_local_urls=True, raise_unexpected=True
    )
    rnd = random.Random(seed)
    for round_ in range(150):
        which = rnd.choice([*good, "model.yaml", "model.yaml"])
        for name, text in good.items():
            (folder / name).write_bytes(damaged(text, rnd) if name == which else text.encode())
        try:
            report = run_checks(["fz"], repo.snapshot(None), None, repo, options)
        except RegistryError:
            continue
        except Exception as e:  # noqa: BLE001 - the point of the test
            pytest.fail(f"seed {seed}, round {round_}, {which}: {type(e).__name__}: {e}")
        for finding in report.models[0].findings:
            finding.message.encode("utf-8")  # printable in the report
