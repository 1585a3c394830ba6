"""Versions from tags: one for-each-ref, SemVer order, GTO withdrawal tags, `latest`."""

import subprocess

import pytest

from factories import publish_version, withdraw_version
from registry.core.errors import UnavailableError, UsageError
from registry.core.semver import semver_key
from registry.versions.tags import (
    deregistration_tag,
    latest,
    parse_version_spec,
    read_versions,
    resolve,
    tagged_commits,
    withdraw_offline,
)


def test_semver_order_puts_prereleases_first_and_compares_numbers():
    versions = [
        "1.10.0",
        "1.2.0",
        "1.2.0-rc.1",
        "1.2.0-alpha",
        "1.2.0-rc.10",
        "1.2.0-rc.2",
        "0.9.9",
        "1.2.0+build.5",
    ]
    ordered = sorted(versions, key=semver_key)
    assert ordered[0] == "0.9.9"
    assert ordered[1:5] == ["1.2.0-alpha", "1.2.0-rc.1", "1.2.0-rc.2", "1.2.0-rc.10"]
    assert ordered[-1] == "1.10.0"


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("digits@1.2.0", ("digits", "1.2.0")),
        ("digits@v1.2.0", ("digits", "1.2.0")),
        ("digits@latest", ("digits", "latest")),
        ("digits", ("digits", "latest")),
    ],
)
def test_version_specs(spec, expected):
    assert parse_version_spec(spec) == expected


@pytest.mark.parametrize("spec", ["digits@1.2", "Digits@1.0.0", "digits@v1.0.0!"])
def test_bad_specs_are_refused_with_a_hint(spec):
    with pytest.raises(UsageError) as e:
        parse_version_spec(spec)
    assert e.value.hint


def test_versions_come_from_annotated_tags_with_dates_and_commits(published_registry):
    reg = published_registry
    reg.git("tag", "digits@v9.9.9")  # lightweight: not a registry version (GTO ignores it too)
    reg.git("tag", "-a", "unrelated-v1", "-m", "x")
    table = read_versions(reg.root)
    assert list(table) == ["digits"]
    got = table["digits"]
    assert [v.version for v in got] == ["1.0.0", "1.1.0"]
    assert got[0].tag == "digits@v1.0.0"
    assert got[0].commit == reg.git("rev-parse", "digits@v1.0.0^{commit}")
    assert got[0].date.isoformat() == "2026-01-01T10:00:00+00:00"
    assert not any(v.withdrawn for v in got)
    assert resolve(table, "digits", "latest").version == "1.1.0"


def test_gto_deregistration_withdraws_one_version_and_latest_skips_it(published_registry):
    reg = published_registry
    tag = withdraw_version(reg, "digits", "1.1.0")
    table = read_versions(reg.root)
    v10, v11 = table["digits"]
    assert v11.withdrawn and v11.withdrawn_by == tag
    assert not v10.withdrawn
    assert resolve(table, "digits", "latest").version == "1.0.0"
    assert resolve(table, "digits", "1.1.0").withdrawn  # still resolvable when pinned


def test_gto_deprecation_withdraws_every_earlier_version(published_registry):
    reg = published_registry
    reg.git("tag", "-a", "digits@deprecated#3", "-m", "model retired")
    table = read_versions(reg.root)
    assert all(v.withdrawn for v in table["digits"])
    with pytest.raises(UnavailableError, match="every version of 'digits' is withdrawn") as e:
        resolve(table, "digits", "latest")
    assert "digits@1.1.0" in e.value.hint


def test_offline_card_withdraws_all_versions():
    from datetime import datetime, timezone

    from registry.versions.tags import Version

    vs = [
        Version(
            name="m1",
            version="1.0.0",
            tag="m1@v1.0.0",
            commit="a" * 40,
            date=datetime.now(timezone.utc),
        )
    ]
    assert withdraw_offline(vs)[0].withdrawn
    assert latest(withdraw_offline(vs)) is None


def test_unknown_model_and_version_messages(published_registry):
    table = read_versions(published_registry.root)
    with pytest.raises(UsageError, match="'nope' has no published version"):
        resolve(table, "nope", "latest")
    with pytest.raises(UsageError, match="no version 3.0.0") as e:
        resolve(table, "digits", "3.0.0")
    assert "1.0.0, 1.1.0" in e.value.hint


def test_latest_prefers_releases_over_prereleases(published_registry):
    publish_version(published_registry, "digits", "2.0.0-rc.1")
    table = read_versions(published_registry.root)
    assert table["digits"][-1].version == "2.0.0-rc.1"
    assert resolve(table, "digits", "latest").version == "1.1.0"


def test_deregistration_tag_numbering_follows_gto():
    existing = ["m1@v1.0.0", "m1@v1.0.0!#2", "m2@deprecated#7", "m1#prod#4"]
    # GTO numbers every event of an artifact, stage assignments (`m1#prod#4`) included (gto/tag.py).
    assert deregistration_tag("m1", "1.1.0", existing) == "m1@v1.1.0!#5"
    assert deregistration_tag("m3", "1.0.0", existing) == "m3@v1.0.0!#1"


def test_one_git_process_reads_all_tags(published_registry, monkeypatch):
    calls = []
    real = subprocess.run

    def counting(cmd, *a, **kw):
        calls.append(cmd)
        return real(cmd, *a, **kw)

    monkeypatch.setattr(subprocess, "run", counting)
    read_versions(published_registry.root)
    assert [c[1] for c in calls] == ["for-each-ref"]


def test_tagged_commits_agree_with_the_version_table(published_registry):
    from registry.core.repo import RegistryRepo

    withdraw_version(published_registry, "digits", "1.0.0")
    published_registry.git("tag", "-a", "digits@deprecated#9", "-m", "retired")
    published_registry.git("tag", "digits@v9.9.9")  # lightweight: a version for neither reader
    assert sorted(tagged_commits(RegistryRepo(published_registry.root))["digits"]) == [
        "1.0.0",
        "1.1.0",
    ]
