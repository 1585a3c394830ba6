"""Report artifact (never fails): the release notes the merge would publish, for reviewers to
read."""

from __future__ import annotations

from collections.abc import Iterable

from registry.checks import Check, Finding, ModelContext, Severity, register


@register
class ReleaseNotesDraft(Check):
    """Drafts the release notes of a pull request that publishes a version (base/previous tag vs
    head)."""

    name = "release-notes"
    description = (
        "drafts the release notes this pull request would publish (card changes, metric deltas, "
        "model diff) so reviewers read them before merging; never fails"
    )
    needs_card = True
    order = 90

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        from registry.cards.lifecycle import classify, publishes

        card = ctx.card
        if not publishes(classify(ctx.base_card, card)) or not card.version:
            return []  # before importing the notes' machinery, which most pull requests never use
        from registry.core.errors import RegistryError
        from registry.core.storage import STAGING
        from registry.publishing.notes import (
            ModelVersion,
            build_notes,
            previous_version,
            render_notes,
            tagged_version,
        )

        try:
            old = None
            if ctx.repo is not None:
                versions = {v: c for v, c in ctx.tagged_versions().items() if v != card.version}
                prev = previous_version(versions, card.version)
                old = tagged_version(ctx.repo, ctx.name, prev) if prev else None
            storage = ctx.storage if ctx.options.content else None
            notes = build_notes(
                ModelVersion(card=card, snapshot=ctx.head, remote=STAGING),
                old,
                storage,
                workdir=ctx.workdir,
            )
            ctx.artifacts["release_notes_draft"] = render_notes(notes)
        except RegistryError as e:
            return [
                self.finding(
                    f"could not draft the release notes: {e.message}",
                    e.hint,
                    path=ctx.card_path,
                    severity=Severity.notice,
                )
            ]
        return []
