"""Publishing a merge: copy a version's objects staging → public, verify them, tag, push, changelog.

`publish(repo, options)` looks at every model the merge (`base..head`) touches and acts on the
lifecycle change its card makes (`registry.cards.lifecycle.classify`):

- publish / update: copy exactly the version's objects (every DVC pointer in the model's folder at
  `head`) from the `staging` remote to the `public` remote, read them back from `public` and check
  md5 and size, and only then create the annotated tag `<name>@v<version>` on `head` (its message
  is the release notes) and push it; finally add the notes to `models/<name>/CHANGELOG.md`;
- unpublish (status `offline`): add GTO's deregistration tag `<name>@v<version>!#<n>` on the
  version's commit; the public objects stay so pinned consumers can still fetch the version;
- delete: nothing is destroyed (`registry gc` is the separate, explicit clean-up).

Every step is idempotent and ordered so that an interrupted run is completed by running it
again: objects first (present and verified objects are not copied twice), then the local tag,
then the push. The push of the tag is the atomic point between racing runs: git refuses to
overwrite an existing tag, and a tag that already exists on another commit is never moved.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, Field

from registry.cards.lifecycle import Operation, classify, publishes
from registry.cards.model_files import model_files
from registry.cards.schema import CARD_FILE, MODELS_DIR, ModelCard, read_card
from registry.core.errors import CardError, GitError, RegistryError, StorageError
from registry.core.git import create_tag, local_tag_commit, push_tag, remote_tags, run_git
from registry.core.repo import GitRevision, RegistryRepo
from registry.core.semver import semver_key
from registry.core.storage import PUBLIC, STAGING, Pointer, Remote, Storage
from registry.core.transfer import copy_object, verify_object
from registry.versions.tags import deregistration_tag, tagged_commits

T = TypeVar("T")


# --------------------------------------------------------------------------- typed results


class PublishOptions(BaseModel):
    """What to publish and where."""

    base: str = Field(description="revision before the merge (the push event's `before`)")
    head: str = Field(description="revision after the merge; tags are made on this commit")
    push: bool = Field(True, description="push the tags to the git remote")
    remote_name: str = Field("origin", description="git remote that receives the tags")
    source: str = Field(STAGING, description="DVC remote the objects are copied from")
    target: str = Field(PUBLIC, description="DVC remote the objects are copied to")
    changelog: bool = Field(
        True, description="add the notes to models/<name>/CHANGELOG.md in the working tree"
    )
    notes_dir: Path | None = Field(
        None, description="also write each new version's notes to <dir>/<tag>.md"
    )


class ObjectCopy(BaseModel):
    """One object of a published version on the public remote."""

    path: str = Field(description="the tracked file, repository-relative")
    md5: str
    size: int | None
    action: Literal["copied", "present"] = Field(
        description="copied in this run, or already on the remote"
    )
    verified: Literal["md5+size", "size"] = Field(
        description="md5+size: read back from the remote and hashed; size: the remote's stat only"
    )


class Failure(BaseModel):
    """Why one model could not be published."""

    message: str
    hint: str | None = None
    exit_code: int


Action = Literal[
    "published",
    "already-published",
    "deprecated",
    "already-deprecated",
    "deleted",
    "nothing",
    "failed",
]


class ModelPublish(BaseModel):
    """What publishing did for one model."""

    name: str
    operation: str = Field(
        description="lifecycle operation of the merge: publish, update, unpublish, delete, edit…"
    )
    version: str | None = None
    tag: str | None = Field(
        None, description="the version tag (or the deregistration tag for unpublish)"
    )
    withdrawn: list[str] = Field(
        default_factory=list,
        description="unpublish: the deregistration tag of every version, oldest first",
    )
    action: Action = "nothing"
    objects: list[ObjectCopy] = Field(default_factory=list)
    tag_created: bool = Field(False, description="the tag was created in this run")
    tag_pushed: bool = Field(False, description="the tag reached the git remote in this run")
    changelog: str | None = Field(None, description="the CHANGELOG.md path, repository-relative")
    changelog_updated: bool = False
    notes: str | None = Field(None, description="release notes (Markdown), also the tag's message")
    message: str = ""
    error: Failure | None = None

    @property
    def changed(self) -> bool:
        return (
            self.tag_created
            or self.tag_pushed
            or self.changelog_updated
            or any(o.action == "copied" for o in self.objects)
        )


class PublishReport(BaseModel):
    """The outcome of one `registry publish` run."""

    base: str
    head: str
    models: list[ModelPublish] = Field(default_factory=list)
    changed: bool = Field(False, description="anything was copied, tagged, pushed or written")
    changelog_files: list[str] = Field(
        default_factory=list, description="CHANGELOG.md files updated"
    )
    releases: list[dict] = Field(
        default_factory=list,
        description="{tag, name, version, notes} of each version published by this merge",
    )
    index: str | None = Field(
        None, description="the registry index commit (refs/registry/index) after this run"
    )
    index_error: Failure | None = Field(
        None, description="why the registry index could not be updated (the tags are not affected)"
    )

    @property
    def failed(self) -> list[ModelPublish]:
        return [m for m in self.models if m.error is not None]


# --------------------------------------------------------------------------- objects


class _Background:
    """A function running in a daemon thread; `result()` waits for it and raises what it raised."""

    def __init__(self, fn: Callable[[], T], name: str):
        self._value: T | None = None
        self._error: BaseException | None = None

        def target() -> None:
            try:
                self._value = fn()
            except BaseException as e:  # noqa: BLE001 - handed to the caller of result()
                self._error = e

        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Wait for the function to end, whatever it returns or raises."""
        self._thread.join()

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _warm_imports() -> _Background:
    """Import what the release notes need (jinja2, the graph summary) and compile their template in
    a background thread.

    Started as the objects' copy begins: the copy and its read-back spend their time in the kernel
    and in hashlib with the GIL released, so these imports then cost little wall time. An import
    that fails here fails again, with its real error, where the module is used.
    """

    def load() -> None:
        import importlib

        try:
            for module in (
                "registry.publishing.notes",
                "registry.formats.summary",
                "jinja2",
                "registry.publishing.changelog",
            ):
                importlib.import_module(module)
            from registry.publishing.notes import notes_template

            notes_template()
        except Exception:  # noqa: BLE001 - raised again, with its real message, where it is used
            return

    return _Background(load, "registry-warm-imports")


def version_objects(snapshot, name: str, card: ModelCard) -> list[tuple[str, Pointer]]:
    """Every object a version consists of: (tracked path, pointer) for each `.dvc` file in its
    folder,
    resolved by `registry.cards.model_files` exactly as the bot resolved them.

    Raises:
        CardError: the folder has a link, a submodule, an unusable or folder pointer, or the
            weights pointer is missing.
    """
    files = model_files(snapshot, name)
    files.require_usable("cannot publish")
    if files.pointer_of(card.weights) is None:
        folder = files.folder
        raise CardError(
            f"{folder}/{card.weights}.dvc is missing: the weights of {name} are not tracked by DVC",
            f"run: dvc add {folder}/{card.weights} && dvc push -r staging",
            path=f"{folder}/{card.weights}.dvc",
        )
    return [(t.path, t.pointer) for t in sorted(files.tracked.values(), key=lambda t: t.path)]


# --------------------------------------------------------------------------- tags


# --------------------------------------------------------------------------- the run


class Publisher:
    """Publishes the versions of one merge. See the module docstring for the order of steps.

    Args:
        repo: the registry clone (its working tree receives CHANGELOG.md updates).
        options: what to publish.
        storage: the DVC remotes (default: the clone's `.dvc/config`).
    """

    def __init__(self, repo: RegistryRepo, options: PublishOptions, storage: Storage | None = None):
        self.repo, self.options = repo, options
        # DVC's configuration and file systems are opened in a thread while git is asked what
        # changed
        self._storage = storage
        # the remotes as the merge's base names them: a merged pull request cannot re-point them
        self._opening = (
            None
            if storage
            else _Background(
                lambda: Storage.at_revision(repo.root, options.base), "registry-open-storage"
            )
        )
        self.base = GitRevision(repo.git, options.base)
        self.head = GitRevision(repo.git, options.head)
        self._warming: _Background | None = None
        self._fetching_index: _Background | None = None

    @property
    def storage(self) -> Storage:
        """The DVC remotes (waits for them to be opened; raises what opening them raised)."""
        if self._storage is None:
            self._storage = self._opening.result()
        return self._storage

    def run(self) -> PublishReport:
        """Publish every model the merge touches; failures are recorded per model, not raised."""
        report = PublishReport(base=self.base.rev, head=self.head.rev)
        try:
            self._run(self.repo.changed_models(self.base.rev, self.head.rev), report)
            self.storage  # noqa: B018 - a broken DVC configuration is reported even when nothing changed
            self._update_index(report)
        finally:
            for background in (self._warming, self._fetching_index):
                if background is not None:
                    background.wait()
        return report

    def _run(self, changed: list[str], report: PublishReport) -> None:
        for name in changed:
            head_loaded, head_err = read_card(self.head, name)
            base_loaded, base_err = read_card(self.base, name)
            result = ModelPublish(name=name, operation="none")
            try:
                if head_err or base_err:
                    raise head_err or base_err
                head_card = head_loaded.card if head_loaded else None
                base_card = base_loaded.card if base_loaded else None
                if (head_loaded and head_card is None) or (base_loaded and base_card is None):
                    bad = head_loaded if head_card is None and head_loaded else base_loaded
                    first = bad.findings[0] if bad.findings else None
                    raise CardError(
                        f"the card of {name} is not valid: "
                        f"{first.message if first else 'see registry check'}",
                        "fix it in a pull request; `registry check` says what is wrong",
                        path=f"{MODELS_DIR}/{name}/{CARD_FILE}",
                        line=first.line if first else None,
                    )
                change = classify(base_card, head_card)
                result.operation = change.operation.value
                if (
                    not change.allowed
                ):  # the bot refuses these; a merge that bypassed it fails here, loudly
                    raise CardError(
                        f"{name} was not published: the merge asks for a change the lifecycle "
                        f"does not allow ({change.reason})",
                        "this change should have been stopped by `registry check`; "
                        "fix the card's status in a new pull request",
                        path=f"{MODELS_DIR}/{name}/{CARD_FILE}",
                    )
                if publishes(change):
                    self._publish_version(name, head_card, result, report)
                elif change.operation is Operation.unpublish:
                    self._deprecate(name, base_card.version or head_card.version, result)
                elif change.operation is Operation.delete:
                    result.action = "deleted"
                    result.version = base_card.version if base_card else None
                    result.message = (
                        "removed from the default branch; storage and tags are kept "
                        "(`registry gc` lists objects no version references)"
                    )
                else:
                    result.message = f"{change.operation.value}: nothing to publish"
            except RegistryError as e:
                result.action = "failed"
                result.error = Failure(
                    message=str(e).split("\n  hint:")[0], hint=e.hint, exit_code=e.exit_code
                )
            report.models.append(result)
            if result.changed:
                report.changed = True
            if result.changelog_updated and result.changelog:
                report.changelog_files.append(result.changelog)

    def _update_index(self, report: PublishReport) -> None:
        """After the tags: the registry index brought up to date with them and pushed beside them
        (`registry.versions.index`). A failure is reported, never fatal: the tags are the truth and
        readers fall back to them, with a notice, until the index is repaired."""
        from registry.versions.index import publish_index

        opts = self.options
        fetched = False
        if self._fetching_index is not None:
            try:
                self._fetching_index.result()
                fetched = True
            except RegistryError:
                pass  # fetched again below, where its failure is reported
        try:
            result = publish_index(
                self.repo.root,
                self.head.rev,
                opts.remote_name if opts.push else None,
                fetched=fetched,
            )
        except RegistryError as e:
            report.index_error = Failure(
                message=str(e).split("\n  hint:")[0], hint=e.hint, exit_code=e.exit_code
            )
            return
        report.index = result.commit
        if result.changed:
            report.changed = True

    # -- publish / update

    def _publish_version(
        self, name: str, card: ModelCard, result: ModelPublish, report: PublishReport
    ) -> None:
        opts, root, head = self.options, self.repo.root, self.head.rev
        tag = card.tag
        result.version, result.tag = card.version, tag
        # the git remote is asked for the tag while the local checks run and the remotes open
        asking = (
            _Background(
                lambda: remote_tags(root, opts.remote_name, tag).get(tag), "registry-ls-remote"
            )
            if opts.push
            else None
        )
        try:
            local = local_tag_commit(root, tag)
            if local and local != head:
                raise GitError(
                    f"tag {tag} already exists on commit {local[:10]}, not on the merge "
                    f"{head[:10]}: a published version is never re-tagged",
                    f"publish a new version: raise `version` in models/{name}/model.yaml",
                )
            objects = version_objects(self.head, name, card)
            src, dst = self.storage.remote(opts.source), self.storage.remote(opts.target)
        finally:
            if asking is not None:
                asking.wait()
        on_remote = asking.result() if asking else None
        if on_remote and on_remote != head:
            raise GitError(
                f"tag {tag} already exists on git remote '{opts.remote_name}' at commit "
                f"{on_remote[:10]}, not at the merge {head[:10]}: a published version is never "
                f"re-tagged",
                f"publish a new version: raise `version` in models/{name}/model.yaml",
            )
        done = on_remote == head if opts.push else local == head

        # 1. objects: copy what public lacks, in a thread that spends its time in the kernel and
        # in hashlib with the GIL released; 2. the release notes meanwhile (this version against
        # the highest published version below it). Between local folders the copy is verified as
        # it lands and the notes read the new weights where they lie on the source remote;
        # elsewhere the notes wait for the copy (which leaves the object in the DVC cache they
        # read from) and what still needs reading back from the remote is read while they are
        # written.
        if self._warming is None:
            self._warming = _warm_imports()
        if self._fetching_index is None and opts.push:
            # the remote's registry index, fetched while the objects copy: the index update after
            # the tags then starts from it (a push that finds it outdated fetches again)
            from registry.versions.index import fetch as fetch_index

            self._fetching_index = _Background(
                lambda: fetch_index(root, opts.remote_name, remember=False), "registry-fetch-index"
            )
        side_by_side = src.is_local and dst.is_local
        copying = _Background(
            lambda: self._place_objects(objects, src, dst, done, verify=side_by_side),
            "registry-copy-objects",
        )
        verifying: _Background | None = None
        try:
            if not side_by_side:
                unchecked = copying.result()[1]
                verifying = _Background(
                    lambda: [verify_object(dst, o.md5, o.size) for o in unchecked],
                    "registry-verify",
                )
            result.notes = self._notes(name, card, opts.source if side_by_side else opts.target)
        finally:  # never left running behind an error of the notes
            copying.wait()
            if verifying is not None:
                verifying.wait()
        # a copy or verification failure stops the publish here, before any tag
        result.objects = copying.result()[0]
        if verifying is not None:
            verifying.result()

        # 3. the tag, on the merge commit
        if local is None and on_remote == head:
            # published from this commit already (another clone): take that very tag, make no new
            # one
            run_git(root, "fetch", "-q", opts.remote_name, f"refs/tags/{tag}:refs/tags/{tag}")
        elif local is None:
            create_tag(root, tag, head, result.notes)
            result.tag_created = True

        # 4. push: the tag becomes public only while its objects are on the public remote
        if opts.push and on_remote is None:
            for obj in result.objects:
                if dst.object_size(obj.md5) is None:
                    raise StorageError(
                        f"object {obj.md5} ({obj.path}) disappeared from remote '{dst.name}' "
                        f"before {tag} was pushed",
                        "re-run `registry publish`",
                    )
            result.tag_pushed = push_tag(
                root, opts.remote_name, tag, head, created_here=result.tag_created
            )

        # 5. changelog and release notes for the workflow
        if opts.changelog and (root / MODELS_DIR / name).is_dir():
            from registry.publishing.changelog import FILE, add_entry

            rel = f"{MODELS_DIR}/{name}/{FILE}"
            result.changelog = rel
            result.changelog_updated = add_entry(root / rel, name, card.version, result.notes)
        if opts.notes_dir:
            opts.notes_dir.mkdir(parents=True, exist_ok=True)
            from registry.core.files import write_regular

            write_regular(opts.notes_dir / f"{tag}.md", result.notes.encode("utf-8"))
        result.action = "already-published" if not result.changed else "published"
        result.message = (
            f"{tag} was already published; nothing to do"
            if not result.changed
            else f"published {tag}"
        )
        report.releases.append(
            {"tag": tag, "name": name, "version": card.version, "notes": result.notes}
        )

    def _place_objects(
        self,
        objects: list[tuple[str, Pointer]],
        src: Remote,
        dst: Remote,
        done: bool,
        *,
        verify: bool,
    ) -> tuple[list[ObjectCopy], list[ObjectCopy]]:
        """Copy the objects `dst` lacks from `src`: (every object, those still to be read back
        from `dst`). A copy between local folders is verified as it lands, one to S3 by the store;
        a present object is read back unless the version is already out (`done`). With `verify`
        the objects still to be read back are read back here (none are left).

        Raises:
            StorageError: an object is missing, refused, of another size or content on `dst`.
        """
        placed: list[ObjectCopy] = []
        unchecked: list[ObjectCopy] = []  # copied or present, not yet read back
        for path, ptr in objects:
            try:
                have = dst.object_size(ptr.md5)
            except PermissionError as e:
                raise StorageError(
                    f"remote '{dst.name}' ({dst.url}) refused access while looking up {ptr.md5} "
                    f"({path}): {e}",
                    f"check the credentials and permissions of remote '{dst.name}'",
                ) from None
            action, checked = "present", False
            if have is not None and ptr.size is not None and have != ptr.size:
                # never overwritten: it may be another version's object, and it is not ours to
                # replace
                raise StorageError(
                    f"remote '{dst.name}' already holds {have:,} bytes for object {ptr.md5} "
                    f"({path}), but the pointer records {ptr.size:,} bytes; publish never "
                    "overwrites or removes an object it did not write",
                    f"a maintainer must inspect {dst.object_path(ptr.md5)} on remote "
                    f"'{dst.name}' (compare its md5 with the pointer) before publishing again",
                )
            if have is None:
                dst.remove_partial(ptr.md5)  # what a killed copy of an earlier run left
                checked = copy_object(self.storage, src, dst, ptr.md5, path, ptr.size)
                action = "copied"
            verified = "size" if done and action == "present" else "md5+size"
            placed.append(
                ObjectCopy(path=path, md5=ptr.md5, size=ptr.size, action=action, verified=verified)
            )
            if verified == "md5+size" and not checked:
                unchecked.append(placed[-1])
        if verify:
            for obj in unchecked:
                verify_object(dst, obj.md5, obj.size)
            unchecked = []
        return placed, unchecked

    def _notes(self, name: str, card: ModelCard, weights_remote: str) -> str:
        """The release notes of `card`'s version, its weights read from `weights_remote`."""
        from registry.publishing.notes import (
            ModelVersion,
            build_notes,
            previous_version,
            render_notes,
            tagged_version,
        )

        versions = {
            v: c for v, c in tagged_commits(self.repo).get(name, {}).items() if v != card.version
        }
        prev = previous_version(versions, card.version)
        old = tagged_version(self.repo, name, prev) if prev else None
        notes = build_notes(
            ModelVersion(card=card, snapshot=self.head, remote=weights_remote), old, self.storage
        )
        return render_notes(notes)

    # -- unpublish

    def _deprecate(self, name: str, version: str | None, result: ModelPublish) -> None:
        """Withdraw every published version: GTO's deregistration tag on each one that has none yet,
        so that `gto show` and `registry show` agree no version of an offline model is current."""

        result.version = version
        versions = tagged_commits(self.repo).get(name, {})
        if version is None or version not in versions:
            raise GitError(
                f"{name} asks to be unpublished, but version {version} "
                f"has no tag {name}@v{version}",
                "only a published (tagged) version can be withdrawn; check `git tag -l`",
            )
        done, kept = [], []
        for v in sorted(versions, key=semver_key):
            tag, created, pushed = self._withdraw(name, v, versions[v])
            result.withdrawn.append(tag)
            result.tag_created |= created
            result.tag_pushed |= pushed
            (done if created or pushed else kept).append(f"v{v}")
            if v == version:
                result.tag = tag
        shown = ", ".join(f"v{v}" for v in sorted(versions, key=semver_key))
        if not done:
            result.action = "already-deprecated"
            result.message = f"{name} {shown} were already withdrawn; public objects kept"
            return
        result.action = "deprecated"
        result.message = (
            f"withdrew {name} {', '.join(done)} ({', '.join(result.withdrawn)}); "
            "its public objects are kept for pinned consumers"
        )

    def _withdraw(self, name: str, version: str, commit: str) -> tuple[str, bool, bool]:
        """The deregistration tag of one version, created and pushed when missing: (tag, created,
        pushed)."""
        opts, root = self.options, self.repo.root
        pattern = f"{name}@v{version}!#*"
        existing = run_git(root, "tag", "-l", pattern).split()
        remote_existing = list(remote_tags(root, opts.remote_name, pattern)) if opts.push else []
        if remote_existing or (existing and not opts.push):
            return (remote_existing or existing)[0], False, False
        created = False
        if existing:
            tag = existing[0]
        else:
            tag = deregistration_tag(
                name, version, run_git(root, "tag", "-l", f"{name}@*", f"{name}#*").split()
            )
            create_tag(
                root,
                tag,
                commit,
                f"Unpublish {name} v{version}: status set to offline in "
                f"{self.head.rev[:10]}. The version's files stay available.\n",
            )
            created = True
        pushed = (
            push_tag(root, opts.remote_name, tag, commit, created_here=created)
            if opts.push
            else False
        )
        return tag, created, pushed


def publish(
    repo: RegistryRepo, options: PublishOptions, storage: Storage | None = None
) -> PublishReport:
    """Publish what the merge `options.base..options.head` asks for. See `Publisher`."""
    return Publisher(repo, options, storage).run()


def render_report(report: PublishReport) -> str:
    """The report for people: one line per model, then its objects."""
    lines = []
    for m in report.models:
        if m.error:
            lines.append(f"FAILED {m.name}: {m.error.message}")
            if m.error.hint:
                lines.append(f"  hint: {m.error.hint}")
            continue
        lines.append(f"{m.name}: {m.message}")
        for o in m.objects:
            lines.append(f"  {o.action:8} {o.path} ({o.md5}, verified {o.verified})")
        if m.tag_created or m.tag_pushed:
            lines.append(
                f"  tag {m.tag}: "
                + ", ".join(
                    x for x, y in (("created", m.tag_created), ("pushed", m.tag_pushed)) if y
                )
            )
        if m.changelog_updated:
            lines.append(f"  updated {m.changelog}")
    if report.index_error:
        lines.append(f"registry index not updated: {report.index_error.message}")
        if report.index_error.hint:
            lines.append(f"  hint: {report.index_error.hint}")
    if not report.models:
        lines.append("no models changed between these revisions")
    elif not report.changed and not report.failed:
        lines.append("nothing changed: everything this merge asks for was already done")
    return "\n".join(lines) + "\n"
