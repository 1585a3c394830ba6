"""Standard: the pull request's change to a model is one its lifecycle state allows.

Compares the card on the base with the card on the head (`registry.cards.lifecycle.classify`), and
guards what identifies a published version: `source.repo`, the config file (path and content),
the weights and the PyTorch source (`pytorch`, when present; path and the md5 their DVC pointer
records) change only with a higher `version`; a version never goes down and never reuses a
published tag; a published model is unpublished before it is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable

from registry.cards.lifecycle import Operation, classify
from registry.cards.schema import ModelCard, Status
from registry.checks import Check, Finding, ModelContext, register
from registry.core.repo import Snapshot
from registry.core.semver import SemVer
from registry.core.storage import recorded_md5

_PUBLISHED = (Status.published, Status.updated)


def weights_md5(
    snapshot: Snapshot, folder: str, card: ModelCard, field: str = "weights"
) -> str | None:
    """The md5 the `.dvc` pointer of the card's weights (or other DVC-tracked `field`, e.g.
    `pytorch`) records in a snapshot (None when absent or unreadable)."""
    path = getattr(card, field)
    return recorded_md5(snapshot.read(f"{folder}/{path}.dvc")) if path else None


def _version(text: str | None) -> SemVer | None:
    try:
        return SemVer(text) if text else None
    except ValueError:
        return None


@register
class Lifecycle(Check):
    """Status transition allowed; identity fields frozen within a version; versions only rise."""

    name = "lifecycle"
    description = (
        "the status change from base to head is one SPEC.md §1 allows; source.repo, config "
        "(path and content), weights and pytorch (path and content md5) change only with a higher "
        "version; the version never goes down nor reuses a published tag; a published "
        "model is unpublished (status: offline) before it is deleted"
    )
    needs_card = False
    order = 40

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        if ctx.base is None:
            return  # no base revision (`check NAME`, `--all`): there is no change to judge
        if ctx.card is None and not ctx.deleted:
            return  # the head card is unreadable: card-fields says why
        base, head = ctx.base_card, ctx.card
        tags = ctx.tagged_versions()
        if head is None:
            yield from self._deletion(ctx, base, tags)
            return
        change = classify(base, head)
        status_line = ctx.line("status") or ctx.line("name")
        if not change.allowed:
            yield self.finding(
                f"status change not allowed: {change.reason}",
                "see the lifecycle table in docs/checks.md (lifecycle)",
                path=ctx.card_path,
                line=status_line,
            )
        hv, bv = _version(head.version), _version(base.version if base else None)
        version_line = ctx.line("version") or status_line
        if hv and bv and hv < bv:
            yield self.finding(
                f"version goes down from {bv} to {hv}",
                f"a new version must be higher than {bv} (e.g. {bv.next_patch()})",
                path=ctx.card_path,
                line=version_line,
            )
        if hv and bv and hv == bv and head.version != base.version:
            yield self.finding(
                f"version {head.version} has the same SemVer precedence as {base.version} (build "
                "metadata after '+' does not make a new version)",
                f"raise the version itself (e.g. {bv.next_patch()}), or keep {base.version}",
                path=ctx.card_path,
                line=version_line,
            )
        if head.version:
            yield from self._tag_name(ctx, head.version, version_line)
        same_as_tag = [v for v in tags if _version(v) == hv and v != head.version] if hv else []
        if same_as_tag:
            yield self.finding(
                f"version {head.version} has the same SemVer precedence as the published "
                f"{same_as_tag[0]} (tag {ctx.name}@v{same_as_tag[0]})",
                "published versions are never reused; raise the version itself",
                path=ctx.card_path,
                line=version_line,
            )
        new_version = head.version is not None and (base is None or head.version != base.version)
        if head.version in tags and (
            new_version or change.operation in (Operation.publish, Operation.update)
        ):
            latest = max((v for v in map(_version, tags) if v), default=None)
            yield self.finding(
                f"version {head.version} is already published (tag {ctx.name}@v{head.version})",
                "published versions are never reused; pick a new version"
                + (f" higher than {latest} (e.g. {latest.next_patch()})" if latest else ""),
                path=ctx.card_path,
                line=version_line,
            )
        published = base is not None and (base.status in _PUBLISHED or base.version in tags)
        if published and not (hv and bv and hv > bv):
            yield from self._identity(ctx, base, head)

    def _tag_name(self, ctx: ModelContext, version: str, line: int | None) -> Iterable[Finding]:
        """The version's tag must be a name git accepts, so that publish can make it."""
        import subprocess

        tag = f"{ctx.name}@v{version}"
        proc = subprocess.run(["git", "check-ref-format", f"refs/tags/{tag}"], capture_output=True)
        if proc.returncode != 0:
            yield self.finding(
                f"version {version} gives the tag {tag}, a name git refuses ('..', '.lock', "
                "a trailing '.' or '@{' are not allowed in tag names)",
                "choose a version whose pre-release and build parts avoid those, e.g. 1.0.0-rc.1",
                path=ctx.card_path,
                line=line,
            )

    def _identity(self, ctx: ModelContext, base: ModelCard, head: ModelCard) -> Iterable[Finding]:
        """Findings for identity fields changed while the version stays the same."""
        hint = (
            f"raise 'version' (e.g. to {SemVer(base.version).next_patch()}) to publish this as a "
            f"new version, or revert the change"
            if _version(base.version)
            else "raise 'version' to publish this as a new version, or revert the change"
        )
        same = (
            f"but version stays {head.version}"
            if head.version == base.version
            else f"but version {head.version} is not higher than {base.version}"
        )
        folder = ctx.folder
        if head.source.repo != base.source.repo:
            yield self.finding(
                f"source.repo changed from '{base.source.repo}' to '{head.source.repo}' {same}",
                hint,
                path=ctx.card_path,
                line=ctx.line("source", "repo"),
            )
        for field in ("config", "weights", "pytorch"):
            if getattr(head, field) != getattr(base, field):
                old, new = (
                    f"'{v}'" if v else "(none)"
                    for v in (getattr(base, field), getattr(head, field))
                )
                yield self.finding(
                    f"'{field}' changed from {old} to {new} {same}",
                    hint,
                    path=ctx.card_path,
                    line=ctx.line(field) or ctx.line("weights"),
                )
        if head.config == base.config and ctx.base is not None:
            old = ctx.base.read(f"{folder}/{base.config}")
            new = ctx.head.read(f"{folder}/{head.config}")
            if old is not None and new is not None and old != new:
                yield self.finding(
                    f"the content of config file '{head.config}' changed {same}",
                    hint,
                    path=ctx.card_path,
                    line=ctx.line("config"),
                )
        for field, what in (("weights", "the weights"), ("pytorch", "the PyTorch source")):
            if (
                getattr(head, field)
                and getattr(head, field) == getattr(base, field)
                and ctx.base is not None
            ):
                old_md5 = weights_md5(ctx.base, folder, base, field)
                new_md5 = weights_md5(ctx.head, folder, head, field)
                if old_md5 and new_md5 and old_md5 != new_md5:
                    yield self.finding(
                        f"{what} '{getattr(head, field)}' changed (md5 {old_md5[:8]}… → "
                        f"{new_md5[:8]}…) {same}",
                        hint,
                        path=ctx.card_path,
                        line=ctx.line(field),
                    )

        yield from self._pointers_frozen(ctx, base, head, same, hint)

    def _pointers_frozen(
        self, ctx: ModelContext, base: ModelCard, head: ModelCard, same: str, hint: str
    ) -> Iterable[Finding]:
        """Every other DVC pointer of the folder is part of the version too: publish copies each
        one."""
        if ctx.base_files is None:
            return
        named = {
            f"{ctx.folder}/{getattr(card, f)}"
            for card in (base, head)
            for f in ("weights", "pytorch")
            if getattr(card, f, None)
        }  # judged above, with their own messages
        old = {p: (t.md5, t.size) for p, t in ctx.base_files.tracked.items() if p not in named}
        new = {p: (t.md5, t.size) for p, t in ctx.files.tracked.items() if p not in named}
        for path in sorted(set(old) | set(new)):
            if old.get(path) == new.get(path):
                continue
            what = (
                "added"
                if path not in old
                else "removed"
                if path not in new
                else f"changed (md5 {old[path][0][:8]}… → {new[path][0][:8]}…)"
            )
            yield self.finding(
                f"the DVC-tracked file {path} was {what} {same}",
                hint,
                path=f"{path}.dvc" if path in new else ctx.card_path,
            )

    def _deletion(self, ctx: ModelContext, base: ModelCard | None, tags: dict) -> Iterable[Finding]:
        """Findings for a model whose card the pull request removes."""
        if base is None:
            return
        line = ctx.base_loaded.line_of("status") if ctx.base_loaded else None
        published = base.status in _PUBLISHED or (tags and base.status is not Status.offline)
        if published:
            shown = ", ".join(
                f"v{v}" for v in sorted(tags, key=lambda t: _version(t) or SemVer("0.0.0"))
            )
            yield self.finding(
                f"model '{ctx.name}' is deleted but it was published (status '{base.status.value}'"
                + (f"; tags {shown}" if shown else "")
                + ")",
                "unpublish it first: set 'status: offline' in one pull request, then delete the "
                "folder "
                "in a later one",
                path=ctx.card_path,
                line=line,
            )
            return
        change = classify(base, None)
        if not change.allowed:
            yield self.finding(
                f"deletion not allowed: {change.reason}",
                "unpublish it first (status: offline)",
                path=ctx.card_path,
                line=line,
            )
