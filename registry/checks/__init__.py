"""The validation bot's standards: one module per check, each a registered `Check` subclass that
declares its place in the run (`order`).

`run_checks` reads each model's card at the head (and base) snapshot once, runs every check on it
and returns a `CheckReport`. A check yields `Finding`s; it never raises for a problem in the
model (that is a finding), only for infrastructure failures (`StorageError`, `GitError`), which
stop the run with their own exit code. The report's renderings (`report`) and GitHub's formats
(`github`) live here too; they define no check, and loading the checks never imports them.

May import: every capability below it (core, formats, cards, versions, packaging, compression,
publishing, consuming), to judge a pull request as publish and packaging will act on it. Must not
import training, the catalog, the API or the CLI.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, computed_field

from registry.cards.schema import CARD_FILE, MODELS_DIR, LoadedCard, ModelCard, read_card
from registry.core.errors import CardError, RegistryError
from registry.core.plugins import Plugins
from registry.core.repo import RegistryRepo, Snapshot


class Severity(str, Enum):
    error = "error"
    warning = "warning"
    notice = "notice"


class Finding(BaseModel):
    """One problem found in a model, with where it is and how to fix it."""

    check: str = Field(description="name of the check that found it")
    severity: Severity = Severity.error
    message: str
    hint: str | None = None
    path: str | None = Field(None, description="repository-relative file")
    line: int | None = None


class CheckOptions(BaseModel):
    """Switches of a check run."""

    offline: bool = Field(
        False, description="do not contact source repositories (reachability becomes a warning)"
    )
    content: bool = Field(True, description="run the checks that read weights (storage, graph)")
    allow_local_urls: bool = Field(
        False,
        description="accept file://, local paths and loopback, link-local or "
        "private addresses as source.repo (off: the bot's own machine is not a source)",
    )
    timeout: float = Field(
        10.0, description="seconds allowed for network operations such as git ls-remote"
    )
    only: list[str] | None = Field(None, description="run only these checks")
    raise_unexpected: bool = Field(
        False,
        description="let an unexpected error in a check "
        "propagate as it is (`--traceback`), not become a finding",
    )
    jobs: int | None = Field(
        None,
        ge=1,
        description="processes that share the models when the content checks are off (default: "
        "one per core from 1,000 models on, a single process below)",
    )


# Models whose tags a run reads one by one before it reads every tag at once.
_OWN_TAG_READS = 16


@dataclass
class ModelContext:
    """Everything a check may look at for one model. Expensive parts load on first use."""

    name: str
    head: Snapshot
    base: Snapshot | None
    repo: RegistryRepo | None
    options: CheckOptions
    workdir: Path
    loaded: LoadedCard | None = None  # the head card (None when the model was deleted)
    base_loaded: LoadedCard | None = None  # the base card (None when the model is new)
    head_error: CardError | None = None  # the head card could not be read at all
    artifacts: dict[str, Any] = field(default_factory=dict)  # summaries/pictures for the report
    # shared by every model of one run; "run-size": how many models the run checks
    cache: dict[Any, Any] = field(default_factory=dict)
    # the models the pull request touches (set for the checks whose scope is the registry)
    touched: list[str] | None = None

    @property
    def folder(self) -> str:
        return f"{MODELS_DIR}/{self.name}"

    @property
    def card_path(self) -> str:
        return f"{self.folder}/{CARD_FILE}"

    @property
    def card(self) -> ModelCard | None:
        return self.loaded.card if self.loaded else None

    @property
    def base_card(self) -> ModelCard | None:
        return self.base_loaded.card if self.base_loaded else None

    @property
    def deleted(self) -> bool:
        return self.loaded is None and self.head_error is None

    def line(self, *loc: Any) -> int | None:
        """Line of a field in the head card."""
        return self.loaded.line_of(*loc) if self.loaded else None

    @cached_property
    def files(self):
        """The model folder's files and DVC pointers at the head (`registry.cards.model_files`),
        resolved once."""
        from registry.cards.model_files import model_files

        return model_files(self.head, self.name)

    @cached_property
    def base_files(self):
        """The same at the base (None without a base)."""
        from registry.cards.model_files import model_files

        return model_files(self.base, self.name) if self.base is not None else None

    def tagged_versions(self) -> dict[str, str]:
        """{version: tagged commit} of this model's published versions, withdrawn ones included.

        The first models of a run read their own tags (`registry.versions.tags.model_tag_refs`:
        found by name among a million, packed or loose), so a pull request's check does not grow
        with the registry's history; a run over many models reads every tag once instead.
        """
        from registry.versions.tags import model_tag_refs, parse_refs, tagged_commits

        if self.repo is None:
            return {}
        every = self.cache.get("tags")
        if every is not None:
            return every.get(self.name, {})
        own: dict[str, dict[str, str]] = self.cache.setdefault("tags-by-model", {})
        if self.name in own:
            return own[self.name]
        if len(own) >= _OWN_TAG_READS:
            self.cache["tags"] = tagged_commits(self.repo)
            return self.cache["tags"].get(self.name, {})
        refs = model_tag_refs(self.repo.root, self.name, self.repo.objects)
        found = parse_refs(refs).get(self.name, [])
        own[self.name] = {v.version: v.commit for v in found}
        return own[self.name]

    @cached_property
    def storage(self):
        """The registry's DVC remotes (from the checkout the bot runs in, never from the PR)."""
        from registry.core.storage import Storage

        root = self.repo.root if self.repo else Path.cwd()
        return Storage(root)


class Check:
    """Base of every standard. Subclasses set `name`, `description` and `order`, and implement
    `run`."""

    name: ClassVar[str]
    description: ClassVar[str]
    order: ClassVar[int]  # run and reported lowest first (ties by name): the card before content
    scope: ClassVar[Literal["model", "registry"]] = "model"  # registry: once per pull request
    needs_card: ClassVar[bool] = True  # skipped when the head card is invalid or deleted
    reads_content: ClassVar[bool] = False  # skipped with --no-content

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        raise NotImplementedError

    def finding(
        self,
        message: str,
        hint: str | None = None,
        *,
        path: str | None = None,
        line: int | None = None,
        severity: Severity = Severity.error,
    ) -> Finding:
        """A finding of this check."""
        return Finding(
            check=self.name, severity=severity, message=message, hint=hint, path=path, line=line
        )


# `report` and `github` render a run's outcome; they define no check.
CHECKS: Plugins[Check] = Plugins("check", __name__, order_by="order", helpers=("github", "report"))
register = CHECKS.register


def load_checks() -> dict[str, type[Check]]:
    """Every registered check, in run order (the modules are imported once per process)."""
    return CHECKS.load()


class ModelReport(BaseModel):
    """The outcome for one model."""

    name: str
    findings: list[Finding] = Field(default_factory=list)
    checks_run: list[str] = Field(default_factory=list)
    checks_skipped: dict[str, str] = Field(default_factory=dict, description="check -> why skipped")
    artifacts: dict[str, Any] = Field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.error]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.warning]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        """True when no finding is an error (warnings and notices alone pass)."""
        error = Severity.error
        return all(f.severity is not error for f in self.findings)


class CheckReport(BaseModel):
    """The outcome of a check run over some models."""

    base: str | None = Field(None, description="base revision as given, with its commit")
    head: str | None = Field(None, description="head revision as given, or 'working tree'")
    head_commit: str | None = Field(
        None, description="full commit id of the head (None: working tree)"
    )
    models: list[ModelReport] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        """True when every model passed."""
        return all(m.passed for m in self.models)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def counts(self) -> dict[str, int]:
        """Models checked/failed and findings by severity."""
        by_severity = {s: 0 for s in Severity}
        error = Severity.error
        failed = 0
        for m in self.models:  # one pass: a run over the whole registry holds 100,000s
            failing = False
            for f in m.findings:
                by_severity[f.severity] += 1
                failing = failing or f.severity is error
            failed += failing
        return {
            "models": len(self.models),
            "failed": failed,
            **{s.value: n for s, n in by_severity.items()},
        }


def check_model(
    name: str,
    head: Snapshot,
    base: Snapshot | None,
    repo: RegistryRepo | None,
    options: CheckOptions,
    workdir: Path,
    cache: dict | None = None,
) -> ModelReport:
    """Run every standard on one model and collect its report.

    Args:
        cache: a dict shared by the models of one run (per-URL reachability, registry-wide indexes).
    """
    loaded, error = read_card(head, name)
    base_loaded = read_card(base, name)[0] if base is not None else None
    ctx = ModelContext(
        name,
        head,
        base,
        repo,
        options,
        workdir,
        loaded,
        base_loaded,
        error,
        cache=cache if cache is not None else {},
    )
    report = ModelReport(name=name)
    for check_name, cls in load_checks().items():
        if options.only and check_name not in options.only:
            continue
        if cls.scope != "model":
            continue
        check = cls()
        if cls.reads_content and not options.content:
            report.checks_skipped[check_name] = "content checks turned off (--no-content)"
            continue
        if cls.needs_card and ctx.card is None:
            report.checks_skipped[check_name] = (
                "model deleted" if ctx.deleted else "the card is not valid"
            )
            continue
        report.findings.extend(_run_guarded(check, ctx, ctx.card_path))
        report.checks_run.append(check_name)
    report.artifacts = ctx.artifacts
    return report


def _run_guarded(
    check: Check, ctx: ModelContext, path: str | None, subject: str = "model"
) -> list[Finding]:
    """A check's findings; an unexpected error in it becomes an error finding (on `path`) that
    fails its `subject`, so one hostile file never takes the whole report down with it (exit 70).

    Infrastructure errors (`RegistryError`: storage unreachable, git) still stop the run, and with
    `options.raise_unexpected` (`--traceback`) every error is raised as it is.
    """
    try:
        return list(check.run(ctx))
    except RegistryError:
        raise
    except Exception as e:  # noqa: BLE001 - turned into a finding, see the docstring
        if ctx.options.raise_unexpected:
            raise
        text = str(e).splitlines()[0][:300] if str(e) else ""
        return [
            check.finding(
                f"the {check.name} check could not finish on this {subject} "
                f"({type(e).__name__}{': ' + text if text else ''}); the {subject} fails until it "
                f"does",
                "re-run `registry check` with --traceback and report it to the registry's "
                "maintainers",
                path=path,
            )
        ]


# Below this many models a run stays in one process (starting others costs more than it saves).
PARALLEL_FROM = 1_000
# Models handed to a process at a time: big enough to pay for the transfer, small enough to even
# out the processes' loads.
SLICE = 500
# Models a parallel run checks itself before it forks: enough for the checks to build the run's
# registry-wide indexes (model names, tags) here, once, for every process to inherit.
FIRST = 64


def run_checks(
    names: list[str],
    head: Snapshot,
    base: Snapshot | None = None,
    repo: RegistryRepo | None = None,
    options: CheckOptions | None = None,
) -> CheckReport:
    """Validate the given models of `head` (compared with `base` when given).

    Args:
        names: the models to check; with a base, those the diff touches (the checks of the whole
            pull request read the cards of these models only).
    """
    options = options or CheckOptions()
    report = CheckReport(base=base.label if base else None, head=head.label, head_commit=head.rev)
    cache: dict = {"run-size": len(names)}
    with tempfile.TemporaryDirectory(prefix="registry-check-") as tmp:
        jobs = _jobs(options, len(names))
        first = names if jobs == 1 else names[:FIRST]
        # the first models here: they also fill the run's cache (registry-wide indexes), which the
        # other processes then inherit
        with _kept(len(first)) as keep:
            for i, name in enumerate(first, 1):
                report.models.append(
                    check_model(name, head, base, repo, options, Path(tmp) / name, cache)
                )
                if i % SLICE == 0:
                    keep()
        if len(first) < len(names):
            report.models += _check_in_processes(
                names[len(first) :], head, base, repo, options, Path(tmp), cache, jobs
            )
    if base is not None and repo is not None:
        registry_report = check_registry(head, base, repo, options, names)
        if registry_report.findings:
            report.models.insert(0, registry_report)
    return report


def _jobs(options: CheckOptions, count: int) -> int:
    """How many processes check `count` models: one per core for a large run without content
    checks (their native libraries start threads, which a forked process must not inherit), where
    the system can fork (not macOS, where forking is unsafe, nor Windows)."""
    import sys

    if options.content or count <= SLICE or sys.platform == "darwin":
        return 1  # decided before importing multiprocessing, which a small run never needs
    import multiprocessing
    import os

    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if options.jobs is not None:
        return options.jobs
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) if count >= PARALLEL_FROM else 1


# The run a forked process works on: set by the parent just before it forks, reopened in the child.
_RUN: dict[str, Any] = {}


def _open_run() -> None:
    """In a forked process: fresh git readers (the parent's are its own), the rest inherited."""
    repo: RegistryRepo | None = _RUN["repo"]
    if repo is not None:
        repo = RegistryRepo(repo.root)
        _RUN["repo"] = repo
        for side in ("head", "base"):
            snap = _RUN[side]
            if snap is not None and snap.rev is not None:
                _RUN[side] = repo.snapshot(snap.rev)


def _check_slice(names: list[str]) -> list[tuple]:
    head, base, repo, options, tmp, cache = (
        _RUN[k] for k in ("head", "base", "repo", "options", "tmp", "cache")
    )
    return [_packed(check_model(n, head, base, repo, options, tmp / n, cache)) for n in names]


# A model's report as plain values, the form in which a forked process sends it back: the parent
# reads 100,000 of these many times faster than as pickled models.
def _packed(report: ModelReport) -> tuple:
    return (
        report.name,
        [(f.check, f.severity.value, f.message, f.hint, f.path, f.line) for f in report.findings],
        report.checks_run,
        report.checks_skipped,
        report.artifacts,
        report.model_fields_set,
    )


_SEVERITY = {s.value: s for s in Severity}
_FINDING_FIELDS = frozenset(Finding.model_fields)


def _unpacked(packed: tuple) -> ModelReport:
    """The report `_packed` stood for, equal to it; built as `model_construct` builds one (the
    values were validated in the process that checked the model), only faster."""
    name, findings, checks_run, checks_skipped, artifacts, fields_set = packed
    new, put, severity = object.__new__, object.__setattr__, _SEVERITY
    built = []
    for c, s, m, h, p, n in findings:
        f = new(Finding)
        put(
            f,
            "__dict__",
            {"check": c, "severity": severity[s], "message": m, "hint": h, "path": p, "line": n},
        )
        put(f, "__pydantic_fields_set__", set(_FINDING_FIELDS))
        put(f, "__pydantic_extra__", None)
        put(f, "__pydantic_private__", None)
        built.append(f)
    report = new(ModelReport)
    put(
        report,
        "__dict__",
        {
            "name": name,
            "findings": built,
            "checks_run": checks_run,
            "checks_skipped": checks_skipped,
            "artifacts": artifacts,
        },
    )
    put(report, "__pydantic_fields_set__", set(fields_set))
    put(report, "__pydantic_extra__", None)
    put(report, "__pydantic_private__", None)
    return report


@contextmanager
def _kept(count: int) -> Iterator[Callable[[], None]]:
    """For a run over `count` models: a function that sets the objects made so far aside from the
    garbage collector, which need not scan the reports received again and again (at 100,000 models
    that was most of this process's time), nor forked processes what they inherit."""
    import gc

    if count < PARALLEL_FROM or gc.get_freeze_count():
        yield lambda: None
        return
    gc.freeze()
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()


def _check_in_processes(
    names: list[str],
    head: Snapshot,
    base: Snapshot | None,
    repo: RegistryRepo | None,
    options: CheckOptions,
    tmp: Path,
    cache: dict,
    jobs: int,
) -> list[ModelReport]:
    """Check `names` in `jobs` forked processes, a slice at a time; the reports in their order."""
    import multiprocessing

    head.model_listing()  # no thread reading it may run across the fork
    _RUN.update(head=head, base=base, repo=repo, options=options, tmp=tmp, cache=cache)
    slices = [names[i : i + SLICE] for i in range(0, len(names), SLICE)]
    out: list[ModelReport] = []
    try:
        with (
            _kept(len(names)) as keep,
            multiprocessing.get_context("fork").Pool(jobs, initializer=_open_run) as pool,
        ):
            for part in pool.imap(_check_slice, slices):
                out += map(_unpacked, part)
                keep()
    finally:
        _RUN.clear()
    return out


REGISTRY_REPORT = "(registry)"


def check_registry(
    head: Snapshot,
    base: Snapshot,
    repo: RegistryRepo,
    options: CheckOptions,
    touched: list[str] | None = None,
) -> ModelReport:
    """Run the checks whose scope is the whole pull request (not one model) once; report them
    under the name `(registry)`.

    Args:
        touched: the models the pull request changes (None: unknown, every model may have).
    """
    ctx = ModelContext(REGISTRY_REPORT, head, base, repo, options, Path(tempfile.gettempdir()))
    ctx.touched = touched
    report = ModelReport(name=REGISTRY_REPORT)
    for check_name, cls in load_checks().items():
        if cls.scope != "registry" or (options.only and check_name not in options.only):
            continue
        report.findings.extend(_run_guarded(cls(), ctx, None, "pull request"))
        report.checks_run.append(check_name)
    return report


def select_models(
    repo: RegistryRepo,
    head: Snapshot,
    *,
    names: Iterable[str] = (),
    all_models: bool = False,
    base: str | None = None,
    head_rev: str | None = None,
) -> list[str]:
    """The models a check run covers: the given names, every model folder, or those a diff touches.

    Exactly one of `names`, `all_models` and `base` must be given. With `base`, the diff is taken
    against `head_rev` (or the working tree, committed or not, when `head_rev` is None).

    Raises:
        UsageError: none or several selections, or a named model that does not exist.
    """
    from registry.core.errors import UsageError

    names = list(names)
    if sum(bool(x) for x in (names, all_models, base)) != 1:
        raise UsageError(
            "say which models to check: NAME…, --all, or --base REV [--head REV]",
            "e.g. `registry check --base origin/main --head HEAD`",
        )
    if base:
        return repo.changed_models(base, head_rev)
    if all_models:
        return head.model_folders()
    known = set(head.model_folders())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            f"no model named {', '.join(unknown)} in {head.label}",
            "see `registry list`, or models/ for the folder names",
        )
    return names


def check_revisions(
    repo: RegistryRepo,
    *,
    names: Iterable[str] = (),
    all_models: bool = False,
    base: str | None = None,
    head: str | None = None,
    options: CheckOptions | None = None,
) -> CheckReport:
    """Select models (see `select_models`) and validate them at `head` (default: the working tree).

    Raises:
        UsageError: a bad selection or an unknown check name in `options.only`.
        GitError: an unknown revision.
    """
    from registry.core.errors import UsageError

    options = options or CheckOptions()
    unknown = sorted(set(options.only or ()) - set(load_checks()))
    if unknown:
        raise UsageError(
            f"no check named {', '.join(unknown)}", "known checks: " + ", ".join(load_checks())
        )
    head_snap = repo.snapshot(head)
    if not options.only or "unique-name" in options.only:
        head_snap.prefetch_listing()  # git lists models/ for unique-name while the diff is taken
    base_snap = repo.snapshot(base) if base else None
    # by commit id from here on: git resolves each name once
    selected = select_models(
        repo,
        head_snap,
        names=names,
        all_models=all_models,
        base=base_snap.rev if base_snap is not None else None,
        head_rev=head_snap.rev,
    )
    return run_checks(selected, head_snap, base_snap, repo, options)
