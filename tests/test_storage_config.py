"""The registry's DVC remotes read without DVC (`plain_remotes`) are exactly what DVC's own
`Config` gives, or DVC reads them: a plain configuration of local folders never loads DVC's config
machinery, and anything else (another store, credentials, interpolation, an unknown setting, a
user or system DVC config) is DVC's to read and judge."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from factories import REPO_ROOT
from registry.core.errors import UsageError
from registry.core.storage import Storage, plain_remotes

PLAIN = """\
[core]
    analytics = false
    remote = Public
['remote "staging"']
    url = ../storage/staging
['remote "Public"']
    url = /srv/registry/public
[ 'remote "home"' ]
    url = ~/models/store
"""

# (config, config.local, read here?): each is read the same by both, or left to DVC
CASES = [
    (PLAIN, None, True),
    (PLAIN, "['remote \"staging\"']\n    url = ../elsewhere\n", True),  # the local file wins
    ("[core]\n    autostage = TRUE\n    check_update = false\n", None, True),
    ("", None, True),
    (PLAIN.replace("../storage/staging", "s3://bucket/staging"), None, False),  # another store
    (PLAIN, "['remote \"staging\"']\n    access_key_id = AKIA\n", False),  # credentials
    (PLAIN.replace("/srv/registry/public", "%(here)s/public"), None, False),  # interpolation
    (PLAIN + "[cache]\n    type = symlink\n", None, False),  # a setting not read here
    ("[core]\n    analytics = maybe\n", None, False),  # a value DVC refuses
    ("[core]\n    remote\n", None, False),  # not a config at all
    ("['remote \"x\"']\n    jobs = 4\n", None, False),  # a remote without url
    (PLAIN + "# " + "x" * (1 << 20) + "\n", None, False),  # over the size read here
]


def dvc_remotes(dvc_dir) -> dict[str, str] | None:
    from dvc.config import Config, ConfigError

    try:
        conf = Config(dvc_dir=str(dvc_dir))
    except ConfigError:
        return None
    return {name: str(values["url"]) for name, values in conf["remote"].items()}


def read_both(tmp_path, monkeypatch, config: str, local: str | None) -> dict[str, str] | None:
    """`plain_remotes` of a registry with this configuration, checked against DVC's reading."""
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("DVC_SYSTEM_CONFIG_DIR", str(tmp_path / "system"))
    dvc_dir = tmp_path / "registry" / ".dvc"
    dvc_dir.mkdir(parents=True)
    (dvc_dir / "config").write_text(config)
    if local is not None:
        (dvc_dir / "config.local").write_text(local)
    plain = plain_remotes(dvc_dir)
    if plain is not None:
        assert plain == dvc_remotes(dvc_dir)
    return plain


@pytest.mark.parametrize("config, local, plain", CASES)
def test_read_as_dvc_reads_it_or_left_to_dvc(tmp_path, monkeypatch, config, local, plain):
    assert (read_both(tmp_path, monkeypatch, config, local) is not None) == plain


def test_relative_absolute_and_home_folders_are_resolved_as_dvc_resolves_them(
    tmp_path, monkeypatch
):
    assert read_both(tmp_path, monkeypatch, PLAIN, None) == {
        "staging": str(tmp_path / "registry" / "storage" / "staging"),
        "public": "/srv/registry/public",
        "home": os.path.expanduser("~/models/store"),
    }


def test_a_user_or_system_dvc_config_is_left_to_dvc(tmp_path, monkeypatch):
    dvc_dir = tmp_path / "registry" / ".dvc"
    dvc_dir.mkdir(parents=True)
    (dvc_dir / "config").write_text(PLAIN)
    for level in ("DVC_GLOBAL_CONFIG_DIR", "DVC_SYSTEM_CONFIG_DIR"):
        monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(tmp_path / "user"))
        monkeypatch.setenv("DVC_SYSTEM_CONFIG_DIR", str(tmp_path / "system"))
        assert plain_remotes(dvc_dir) is not None
        folder = tmp_path / level
        folder.mkdir()
        (folder / "config").write_text("[core]\n    remote = staging\n")
        monkeypatch.setenv(level, str(folder))
        assert plain_remotes(dvc_dir) is None


def test_a_config_dvc_refuses_is_still_refused_when_the_storage_opens(tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(tmp_path / "user"))
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    analytics = maybe\n")
    with pytest.raises(UsageError, match=r"\.dvc/config is invalid"):
        Storage(tmp_path)


def test_a_registry_of_local_folders_opens_its_remotes_without_dvc(registry_repo):
    code = (
        "import sys; from registry.core.storage import Storage; "
        "s = Storage(sys.argv[1]); r = s.remote('public'); "
        "print(r.is_local, 'dvc' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(registry_repo.root)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "False"]
