"""Encrypted packages: round trip, and a clear error for a wrong key, altered bytes, a cut-off
file."""

from __future__ import annotations

import os

import numpy as np
import pytest

from factories import FAST, mlp_onnx, write_package_source
from registry.packaging.archive import open_package
from registry.packaging.build import build_package
from registry.packaging.encryption import (
    MAGIC,
    PackageIntegrityError,
    PackageKeyError,
    decrypt,
    encrypt,
    key_id,
    load_key,
)
from registry.packaging.run import run_package
from registry.packaging.source import source_from_files

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


@pytest.fixture(scope="module")
def encrypted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("enc")
    model, card = write_package_source(tmp / "src", mlp_onnx(), "  - linux-aarch64\n")
    return build_package(
        source_from_files(model, card), "linux-aarch64", tmp / "dist", overrides=FAST, key=KEY
    )


def test_encrypted_package_runs_with_the_right_key(encrypted):
    assert encrypted.path.name.endswith(".tar.gz.enc")
    data = encrypted.path.read_bytes()
    assert data.startswith(MAGIC) and b"manifest.json" not in data
    out = run_package(encrypted.path, {"input": np.ones((1, 8), np.float32)}, key=KEY)
    assert out["probabilities"].shape == (1, 3)


def test_wrong_key_names_both_key_ids(encrypted):
    with pytest.raises(PackageKeyError) as e:
        open_package(encrypted.path, OTHER)
    assert key_id(KEY) in e.value.message and key_id(OTHER) in e.value.message


def test_missing_key_is_reported(encrypted):
    with pytest.raises(PackageKeyError, match="is encrypted"):
        open_package(encrypted.path, None)


@pytest.mark.parametrize("where", ["body", "header"])
def test_flipped_byte_is_detected(encrypted, tmp_path, where):
    data = bytearray(encrypted.path.read_bytes())
    pos = len(data) - 40 if where == "body" else data.index(b'"nonce"') + 12
    data[pos] ^= 0x01
    bad = tmp_path / "bad.tar.gz.enc"
    bad.write_bytes(bytes(data))
    with pytest.raises(PackageIntegrityError, match="altered|damaged"):
        open_package(bad, KEY)


def test_truncated_file_is_detected(encrypted, tmp_path):
    data = encrypted.path.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 6):
        bad = tmp_path / f"cut{cut}.enc"
        bad.write_bytes(data[:cut])
        with pytest.raises(PackageIntegrityError, match="truncated"):
            open_package(bad, KEY)


def test_encryption_is_deterministic_for_the_same_key_and_bytes():
    assert encrypt(b"payload", KEY) == encrypt(b"payload", KEY)
    assert encrypt(b"payload", KEY) != encrypt(b"payload", OTHER)
    assert decrypt(encrypt(b"payload", KEY), KEY, "x") == b"payload"


def test_keys_come_from_env_or_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PKG_KEY", KEY.hex())
    assert load_key("PKG_KEY") == KEY
    (tmp_path / "k").write_bytes(KEY)
    assert load_key(key_file=tmp_path / "k") == KEY
    monkeypatch.setenv("SHORT", "abcd")
    with pytest.raises(PackageKeyError, match="not a 256-bit key"):
        load_key("SHORT")
    monkeypatch.delenv("UNSET_KEY", raising=False)
    with pytest.raises(Exception, match="UNSET_KEY is not set"):
        load_key("UNSET_KEY")


def test_cli_run_with_wrong_key_exits_with_a_clear_message(encrypted, tmp_path):
    import subprocess
    import sys

    np.save(tmp_path / "x.npy", np.ones((1, 8), np.float32))
    env = {**os.environ, "PKG_KEY": OTHER.hex()}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "registry",
            "run",
            str(encrypted.path),
            "--key-env",
            "PKG_KEY",
            "--input",
            str(tmp_path / "x.npy"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 6
    assert "encrypted with key id" in proc.stderr and "Traceback" not in proc.stderr
    env["PKG_KEY"] = KEY.hex()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "registry",
            "run",
            str(encrypted.path),
            "--key-env",
            "PKG_KEY",
            "--input",
            str(tmp_path / "x.npy"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("probabilities float32 [1, 3]")
