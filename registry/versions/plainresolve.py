"""`NAME@latest` (and `NAME@VERSION`) resolved without the card schema, when the index vouches.

`resolve.find_version` resolves a reference, then reads the card at the version's tag. The
resolution needs no card schema when the registry index answers it: `locate` gives the same
version as the full path, or steps aside (returns None) so that the full path answers, with its
errors:

- the reference is of the one grammar's plain form (`NAME@1.2.0`, `NAME@v1.2.0`, `NAME@latest`,
  `NAME`); anything the grammar would refuse steps aside, and the full path names the problem;
- the model's index entry agrees with its tag refs (`index.model_and_blobs`, which the full path
  reads too; its notices are the same and said once);
- the card on the default branch (whose `status: offline` withdraws every version) is in the plain
  shape (`cards.plaincard`) and does not ask for `offline`; an `offline` card steps aside, since
  only a card that validates withdraws;
- the version asked for exists and is not a stray tag (an unknown version, a stray tag asked for
  by name, or no live version for `latest` step aside: the full path raises);
- with `check_card`, the card at the version's commit is in this clone (a shallow clone may lack
  the commit). The index lists a version only when the card at its commit validated
  (`tags.confirm_versions`, run by the index's writer), so the card is not validated again here.

Reads: one `git for-each-ref` of the model's tags beside one `git cat-file --batch` (the index
entry and the card on the default branch), and with `check_card` one `git cat-file
--batch-check`.
"""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from registry.core.layout import CARD_FILE, MODELS_DIR
from registry.core.semver import SEMVER, semver_key
from registry.versions.index import model_and_blobs

LATEST = "latest"
# the model-name rule of the version grammar (`tags.parse_version_spec`), as written there
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}[a-z0-9]")


class Located:
    """A published version as the full path resolves it (the fields of `tags.Version`)."""

    __slots__ = ("name", "version", "tag", "commit", "date", "withdrawn", "withdrawn_by")

    def __init__(
        self,
        name: str,
        version: str,
        tag: str,
        commit: str,
        date: datetime,
        withdrawn_by: str | None,
    ):
        self.name, self.version, self.tag, self.commit = name, version, tag, commit
        self.date, self.withdrawn_by = date, withdrawn_by
        self.withdrawn = withdrawn_by is not None

    def fields(self) -> dict:
        """The fields, as `tags.Version` takes them."""
        return {k: getattr(self, k) for k in self.__slots__}


def locate(
    root: str | Path, spec: str, *, allow_latest: bool = True, check_card: bool = True
) -> Located | None:
    """The version `spec` names, withdrawal applied, as `resolve.find_version` resolves it; None
    when the index cannot vouch for the answer (then the full path must answer).

    Args:
        root: a clone (or bare clone) of the registry.
        spec: `NAME@VERSION`, `NAME@vVERSION`, `NAME@latest` or `NAME`.
        allow_latest: whether `latest` may be asked for (else it steps aside: the full path
            refuses it).
        check_card: also confirm that the card at the version's commit is in this clone.
    """
    name, _, version = spec.strip().partition("@")
    version = version or LATEST
    if version != LATEST:
        version = version.removeprefix("v")
        if re.fullmatch(SEMVER, version) is None:
            return None
    elif not allow_latest:
        return None
    if _NAME.fullmatch(name) is None:
        return None
    card = f"{MODELS_DIR}/{name}/{CARD_FILE}"
    entry, (on_branch,) = model_and_blobs(root, name, [f"{default_branch_ref(root)}:{card}"])
    if entry is None or _asks_offline(on_branch) is not False:
        return None
    versions = entry.versions
    if any(s.get("tag") == f"{name}@v{version}" for s in entry.stray):
        return None
    if version == LATEST:
        found = _latest([v for v in versions if v.get("withdrawn_by") is None])
    else:
        found = next((v for v in versions if v["version"] == version), None)
    if found is None:
        return None
    if check_card and not _has_blob(root, f"{found['commit']}:{card}"):
        return None
    return Located(
        name=name,
        version=found["version"],
        tag=found["tag"],
        commit=found["commit"],
        date=datetime.fromtimestamp(found["date"], tz=timezone.utc),
        withdrawn_by=found.get("withdrawn_by"),
    )


def _asks_offline(card: bytes | None) -> bool | None:
    """Whether the card on the default branch withdraws every version (`schema.says_offline`):
    False for no card or a plain card whose status is not `offline` (whether it validates or not,
    it does not withdraw); None (unknown) for any other card."""
    if card is None:
        return False
    if b"offline" not in card and b"\\" not in card:
        # the word is not there, nor an escape that could spell it (the loader reads UTF-8 only):
        # whatever the card holds, its status is not `offline`
        return False
    from registry.cards.plaincard import read_plain

    doc = read_plain(card)
    if not isinstance(doc, dict):
        return None
    return None if doc.get("status") == "offline" else False


def _latest(live: list[dict]) -> dict | None:
    """`tags.latest` on the live versions of an index entry: the highest release, else the
    highest pre-release (the first of equals, as `max` keeps it)."""
    releases = [v for v in live if "-" not in v["version"].split("+", 1)[0]]
    pool = releases or live
    return max(pool, key=lambda v: semver_key(v["version"])) if pool else None


def _has_blob(root: str | Path, spec: str) -> bool:
    proc = subprocess.run(
        ["git", "cat-file", "--batch-check"],
        cwd=root,
        input=spec.encode() + b"\n",
        capture_output=True,
    )
    parts = proc.stdout.split()
    return proc.returncode == 0 and len(parts) == 3 and parts[1] == b"blob"


def default_branch_ref(root: str | Path) -> str:
    """A name of the default branch that `git cat-file` resolves as `tags.default_branch` does
    (origin's HEAD when it is a symbolic ref, else HEAD), read from the ref's file without starting
    git where the refs are plain files."""
    from registry.versions.tag_digest import common_dir

    common = common_dir(root)
    if common is None:
        from registry.versions.tags import default_branch

        return default_branch(root)
    try:
        text = (common / "refs" / "remotes" / "origin" / "HEAD").read_text()
    except FileNotFoundError:
        return "HEAD"  # a symbolic ref is never packed: there is none
    except (OSError, UnicodeDecodeError):
        from registry.versions.tags import default_branch

        return default_branch(root)
    return "refs/remotes/origin/HEAD" if text.startswith("ref: ") else "HEAD"
