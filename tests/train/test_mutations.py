"""Hundreds of damaged versions of the example training files (`factories.damaged`), each judged
by the bot's static training check in-process: every one ends in findings that name their file (or
a `RegistryError` with its message), none in an exception the bot would print as a crash. Seeded:
a failure names its round and files, and the same run reproduces it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from factories import damaged


def test_damaged_training_files_get_findings_never_a_crash(training_tree):
    from registry.core.errors import RegistryError
    from registry.core.repo import WorkTree
    from registry.training.validate import check_training

    root = Path(training_tree)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".yaml", ".py"))
    good = {p: p.read_text() for p in files}
    rnd = random.Random(3)
    for round_ in range(120):
        for path, text in good.items():
            path.write_text(text)
        chosen = rnd.sample(files, rnd.randint(1, 2))
        for path in chosen:
            path.write_bytes(damaged(good[path], rnd))
        try:
            report = check_training(WorkTree(root))
        except RegistryError:
            continue
        except Exception as e:  # noqa: BLE001 - the point of the test
            names = ", ".join(str(p.relative_to(root)) for p in chosen)
            pytest.fail(f"round {round_}, {names}: {type(e).__name__}: {e}")
        assert all(f.path for f in report.findings), "every finding names its file"
