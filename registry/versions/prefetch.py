"""The weights of a published version, downloading while the rest of a pull gets ready.

`registry pull` spends its first few tenths of a second loading the card schema and checking the
version's card and model folder, while the download of the weights (about the time of an md5 of
them) is what the user waits for. `Prefetch.start` finds the weights' object from what the
registry index and two git reads say, with no card schema (the plain path of
`versions.plainresolve` and `cards.plaincard`), and starts its download in a thread; the pull
then goes through every check as before, and `versions.resolve.fetch_files` takes the download
over only when the object and the place it plans are the ones started. The download lands under
the temporary name `download_name` gives and is verified (md5, then size) before the rename, as
every download of `fetch_files` is; nothing the checks would refuse is ever renamed into place.

Only a local-folder `public` remote read from a plain DVC config is prefetched (anything else
would load more than it saves); whenever the plain path cannot vouch for the object, nothing
starts and the pull downloads as it always did.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path

from registry.core.errors import RegistryError
from registry.core.files import make_folders, remove_empty_folders
from registry.core.git import cat_files
from registry.core.layout import CARD_FILE, MODELS_DIR
from registry.core.storage import (
    PUBLIC,
    PointerError,
    Remote,
    Storage,
    parse_pointer,
    plain_remotes,
)

# a weights path the prefetch takes as it is: plain names, none of them '.' or '..'
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*")


def download_name(target: Path) -> Path:
    """The temporary name a file fetched into `target` is written under until it is verified."""
    return target.with_name(f".{target.name}.{os.getpid()}.download")


class Prefetch:
    """One object downloading in a thread to `download_name(target)`.

    Args:
        remote: the local-folder remote it comes from.
        md5: the object.
        target: where the file will land once the pull's checks pass.
        made: folders made for it (removed again, when empty, if the download is not used).
    """

    def __init__(self, remote: Remote, md5: str, target: Path, made: list[Path]):
        self.remote, self.md5, self.target, self.tmp = remote, md5, target, download_name(target)
        self._made = made
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._taken = False
        self._thread = threading.Thread(target=self._run, name="registry-prefetch")
        self._thread.start()

    def _run(self) -> None:
        try:
            self.remote.download(self.md5, self.tmp, self._stop)
        except BaseException as e:  # handed to the pull by `wait`
            self._error = e

    @classmethod
    def start(
        cls, gitdir: str | Path, conf_root: Path, spec: str, out_dir: str | Path | None
    ) -> Prefetch | None:
        """Start downloading the weights of the version `spec` names into `out_dir` (default:
        `./NAME-VERSION`), or return None where the plain path cannot say which object they are.

        Never raises for the registry's content: anything wrong is left for the pull's own checks
        to report.
        """
        from registry.versions.plainresolve import locate

        try:
            located = locate(gitdir, spec, check_card=False)
            if located is None or plain_remotes(conf_root / ".dvc") is None:
                return None
            folder = f"{MODELS_DIR}/{located.name}"
            (card,) = cat_files(gitdir, [f"{located.commit}:{folder}/{CARD_FILE}"])
            weights = _plain_weights(card)
            if weights is None:
                return None
            (text,) = cat_files(gitdir, [f"{located.commit}:{folder}/{weights}.dvc"])
            pointer = parse_pointer(text) if text is not None else None
            if (
                pointer is None
                or pointer.is_dir
                or pointer.size is None
                or pointer.path != weights.rpartition("/")[2]
            ):
                return None
            remote = Storage(conf_root).remote(PUBLIC)
        except (RegistryError, PointerError, OSError):
            return None  # the pull's own path reports it
        if not remote.is_local:
            return None
        dest = Path(out_dir) if out_dir else Path.cwd() / f"{located.name}-{located.version}"
        target = dest / weights
        if os.path.lexists(target) or (dest.exists() and not dest.is_dir()):
            return None  # a file already there is the pull's to check; a bad -o its to refuse
        made: list[Path] = []
        try:
            make_folders(target.parent, made)
        except OSError:
            remove_empty_folders(made)
            return None
        if not os.path.realpath(target).startswith(os.path.realpath(dest) + os.sep):
            remove_empty_folders(made)
            return None  # a link on the way: the pull refuses it
        return cls(remote, pointer.md5, target, made)

    def take(self, remote: Remote, md5: str, tmp: Path) -> bool:
        """Whether this download is the one the pull plans (same remote, object and temporary
        file); once taken, the pull waits for it (`wait`) and owns its file."""
        if self._taken or remote.root != self.remote.root or md5 != self.md5 or tmp != self.tmp:
            return False
        self._taken = True
        return True

    def wait(self) -> Path:
        """The verified file at `tmp`, once the download is over.

        Raises:
            StorageError: what `Remote.download` raised (missing, corrupt, unreachable).
        """
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.tmp

    def close(self, failed: bool) -> None:
        """Stop the download if it still runs; when the pull failed or did not take it, remove
        its file and the folders made for it (when still empty)."""
        self._stop.set()
        self._thread.join()
        if self._taken and not failed:
            return  # renamed into place by the pull
        for path in (self.tmp, self.tmp.with_name(self.tmp.name + ".part")):
            path.unlink(missing_ok=True)
        remove_empty_folders(self._made)


@contextlib.contextmanager
def prefetching(gitdir: str | Path, conf_root: Path, spec: str, out_dir: str | Path | None):
    """`Prefetch.start` for the duration of a pull; an unused or failed prefetch is removed on the
    way out (a taken one is the pull's: renamed into place, or removed by its own clean-up)."""
    early = Prefetch.start(gitdir, conf_root, spec, out_dir)
    failed = True
    try:
        yield early
        failed = False
    finally:
        if early is not None:
            early.close(failed)


def _plain_weights(card: bytes | None) -> str | None:
    """The card's `weights` when the card is in the plain shape and the path is plain."""
    if card is None:
        return None
    from registry.cards.plaincard import read_plain

    doc = read_plain(card)
    weights = doc.get("weights") if isinstance(doc, dict) else None
    if not isinstance(weights, str) or _PLAIN_PATH.fullmatch(weights) is None:
        return None
    return weights
