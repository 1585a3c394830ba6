"""What a diff changes in training: its paths under datasets/ and training/, the tasks they
affect, and whether it only rewrites results summaries.

A pull request's training check builds only the tasks its diff affects (`affected_tasks`), and
`registry train plan --base` trains only those. A task's committed results summary
(`training/<task>/results.json`, written by `registry train --register` on the model's branch) is a
record of a run, not an input to one: changing it affects no task, and a diff that changes nothing
else under datasets/ and training/ (`summaries_only`) gets the summary check alone.

This module reads git through `registry.core` and imports neither torch nor the checks, so a
check can decide what to run before it loads them.
"""

from __future__ import annotations

from pathlib import Path

from registry.core.errors import GitError
from registry.core.git import run_git
from registry.core.repo import RegistryRepo
from registry.training import (
    ALGORITHMS_DIR,
    DATASETS_DIR,
    LAYERS_DIR,
    RESULTS_SUMMARY,
    TRAINING_DIR,
)


def changed_paths(root: Path, base: str, head: str | None) -> list[str]:
    """Files under datasets/ and training/ that the diff from `base` to `head` (or the working tree)
    changes. Between two revisions the diff starts at their merge base, as a pull request's does
    (and the model check's, `RegistryRepo.changed_paths`): what the base branch changed since the
    pull request branched off is not the pull request's change.

    Raises:
        GitError: the diff failed (an unknown revision).
    """
    start = base
    if head:
        try:
            start = RegistryRepo(root).merge_base(base, head)
        except GitError:
            pass  # an unknown revision: the diff below names it
    try:
        # the revisions first, so git's own failure reads "git diff <base> failed: …"
        out = run_git(
            root,
            "diff",
            start,
            *([head] if head else []),
            "--name-only",
            "--",
            DATASETS_DIR,
            TRAINING_DIR,
        )
    except GitError as e:
        raise GitError(e.message, "fetch the base revision first") from None
    return [p for p in out.splitlines() if p]


def summary_task(path: str) -> str | None:
    """The task whose results summary `path` is (`training/<task>/results.json`), or None."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == TRAINING_DIR and parts[2] == RESULTS_SUMMARY:
        return parts[1]
    return None


def summaries_only(changed: list[str]) -> bool:
    """Whether every changed path is a task's results summary (as in a registered model's pull
    request)."""
    return bool(changed) and all(summary_task(p) is not None for p in changed)


def affected_tasks(snap, changed: list[str]) -> list[str]:
    """The tasks of a snapshot that use a changed file: their task.yaml (or another file of their
    folder, but not their results summary), or a dataset, structure, algorithm or layer file one of
    their instances uses."""
    from registry.training.algorithms import custom_algorithm_path
    from registry.training.files import (
        Algorithm,
        TrainingTask,
        algorithm_path,
        expand_instances,
        load_file,
        structure_path,
        task_names,
        task_path,
    )

    inputs = [p for p in changed if summary_task(p) is None]
    found = []
    for name in task_names(snap):
        lf = load_file(snap.read(task_path(name)), task_path(name), TrainingTask)
        used = {f"{TRAINING_DIR}/{name}/"}
        if lf.value is not None:
            for inst in expand_instances(lf.value):
                used |= {
                    f"{DATASETS_DIR}/{inst.dataset}/",
                    structure_path(inst.structure),
                    f"{ALGORITHMS_DIR}/{inst.algorithm}.",
                    f"{LAYERS_DIR}/",
                }
                if inst.algorithm:
                    algo = load_file(
                        snap.read(algorithm_path(inst.algorithm)),
                        algorithm_path(inst.algorithm),
                        Algorithm,
                    ).value
                    if algo is not None and algo.code:
                        used.add(custom_algorithm_path(algo.code))
        if any(p.startswith(u) or p == u for p in inputs for u in used):
            found.append(name)
    return found
