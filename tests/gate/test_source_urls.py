"""source.repo: the bot's own machine and network are not a source, and credentials never show."""

from __future__ import annotations

import pytest

from factories import example_card
from registry.checks.source_repo import is_local_address, judge_url, redact

CARD = "models/tiny/model.yaml"


def source_findings(report):
    return [f for m in report.models for f in m.findings if f.check == "source-repo"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/train.git",
        "https://localhost/train.git",
        "http://169.254.169.254/latest/meta-data",
        "git://10.1.2.3/train.git",
        "ssh://git@192.168.0.7/train.git",
        "git@172.16.0.1:org/train.git",
        "http://[::1]/train.git",
        "http://[::ffff:127.0.0.1]/x.git",
        "http://2130706433/x.git",
        "http://0.0.0.0/x.git",
        "file:///etc",
        "/etc/passwd",
        "../../.git",
    ],
)
def test_local_and_private_addresses_are_refused_by_default(registry_repo, check_models, url):
    registry_repo.commit(
        {CARD: example_card("tiny", source_repo=url), "models/tiny/config.yaml": "a: 1\n"}
    )
    [f] = source_findings(check_models(registry_repo, "tiny", only=["source-repo"], offline=True))
    assert f.severity.value == "error" and "is refused" in f.message and "not allowed" in f.message
    assert f.line == 6


def test_public_hosts_are_network_urls():
    assert judge_url("https://github.com/org/train.git", False).kind is not None
    assert not is_local_address("github.com") and not is_local_address("8.8.8.8")


def test_credentials_in_the_url_are_redacted_in_every_finding(registry_repo, check_models):
    url = "https://build-bot:ghp_SECRET123@example.invalid/org/train.git"
    registry_repo.commit(
        {CARD: example_card("tiny", source_repo=url), "models/tiny/config.yaml": "a: 1\n"}
    )
    report = check_models(registry_repo, "tiny", only=["source-repo"], timeout=2)
    [f] = source_findings(report)
    assert "ghp_SECRET123" not in f.message + (f.hint or "")
    assert "https://***@example.invalid/org/train.git" in f.message
    assert redact("see http://u:p@h/x and ssh://k@h2/y") == "see http://***@h/x and ssh://***@h2/y"


def test_a_host_name_that_resolves_to_the_bots_network_is_refused(registry_repo, check_models):
    registry_repo.commit(
        {
            CARD: example_card("tiny", source_repo="http://localtest.localhost/train.git"),
            "models/tiny/config.yaml": "a: 1\n",
        }
    )
    [f] = source_findings(check_models(registry_repo, "tiny", only=["source-repo"]))
    assert "is refused" in f.message
