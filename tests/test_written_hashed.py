"""`written_hashed`: a download's md5 taken while it lands, always the md5 of the file as it
stands, whatever order the writer wrote in and however it ends."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from registry.core.storage import written_hashed

DATA = os.urandom(3 * (1 << 23) + 12345)  # a few of the hasher's blocks and a ragged end
MD5 = hashlib.md5(DATA).hexdigest()


@pytest.fixture
def rehashed(monkeypatch):
    """The files hashed again whole after the download (`written_hashed`'s fallback)."""
    import registry.core.storage as storage

    calls = []
    real = storage.file_md5
    monkeypatch.setattr(storage, "file_md5", lambda p: calls.append(p) or real(p))
    return calls


def test_a_file_written_in_order_with_pauses_hashes_to_its_md5(tmp_path, rehashed):
    path = tmp_path / "object.part"

    def write():
        with open(path, "wb") as f:
            for i in range(0, len(DATA), 1 << 20):
                f.write(DATA[i : i + (1 << 20)])
                f.flush()
                time.sleep(0.002)  # the hasher catches up and waits for more

    assert written_hashed(path, write, MD5) == MD5
    assert rehashed == []  # hashed as it landed: no second pass


def test_a_file_filled_out_of_order_is_hashed_again_whole(tmp_path, rehashed):
    """Parts written side by side (the file's size set first, its end written before its start):
    what landed first is not the file, and the answer is still the file's md5."""
    path = tmp_path / "object.part"

    def write():
        with open(path, "wb") as f:
            f.truncate(len(DATA))
            half = len(DATA) // 2
            f.seek(half)
            f.write(DATA[half:])
            f.flush()
            time.sleep(0.05)
            f.seek(0)
            f.write(DATA[:half])

    assert written_hashed(path, write, MD5) == MD5
    assert rehashed == [path]  # what landed first was not the file


def test_a_corrupt_download_hashes_to_what_it_holds(tmp_path):
    path = tmp_path / "object.part"
    bad = DATA[:-1] + b"\0"
    got = written_hashed(path, lambda: path.write_bytes(bad), MD5)
    assert got == hashlib.md5(bad).hexdigest() != MD5


def test_a_failed_download_raises_its_error_and_stops_the_hasher(tmp_path):
    path = tmp_path / "object.part"

    def write():
        path.write_bytes(DATA[:1000])
        path.unlink()
        raise ConnectionError("the store went away")

    with pytest.raises(ConnectionError, match="went away"):
        written_hashed(path, write, MD5)
    with pytest.raises(ConnectionError):  # nothing written at all
        written_hashed(path, lambda: (_ for _ in ()).throw(ConnectionError("refused")), MD5)
