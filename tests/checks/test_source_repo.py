"""source-repo: allowed URL kinds, real reachability against local repos and a silent TCP server."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from factories import example_card, run
from registry.checks.source_repo import UrlKind, judge_url

CARD = "models/tiny/model.yaml"
REPO_LINE = 6  # `  repo:` in example_card


def card_with(reg, url: str, name: str = "tiny") -> None:
    reg.commit(
        {
            f"models/{name}/model.yaml": example_card(name, source_repo=url),
            f"models/{name}/config.yaml": "epochs: 3\n",
        },
        f"add {name}",
    )


def source_findings(report):
    return [f for m in report.models for f in m.findings if f.check == "source-repo"]


@pytest.fixture
def training_repo(tmp_path):
    """A real git repository standing in for the training code."""
    root = tmp_path / "train"
    root.mkdir()
    run(["git", "init", "-q", "-b", "main"], root)
    (root / "train.py").write_text("print('training')\n")
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-q", "-m", "training code"], root)
    return root


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never says a word."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self.held.append(conn)

    def close(self):
        self.stopping.set()
        self.thread.join(timeout=2)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


def test_file_url_and_local_path_of_a_real_repo_pass(registry_repo, training_repo, check_models):
    card_with(registry_repo, training_repo.as_uri(), "by-url")
    card_with(registry_repo, str(training_repo), "by-path")
    report = check_models(
        registry_repo, "by-url", "by-path", only=["source-repo"], allow_local_urls=True
    )
    assert source_findings(report) == []
    assert report.passed


def test_a_repo_that_does_not_exist_is_a_finding_on_the_repo_line(
    registry_repo, tmp_path, check_models
):
    missing = tmp_path / "nowhere" / "train.git"
    card_with(registry_repo, missing.as_uri())
    report = check_models(registry_repo, "tiny", only=["source-repo"], allow_local_urls=True)
    [f] = source_findings(report)
    assert f.severity.value == "error"
    # git's own text would name the bot's files; for a local URL it is not echoed
    assert (
        f.message
        == f"source.repo '{missing.as_uri()}' cannot be read: git could not read it as a repository"
    )
    assert "exists and is readable" in f.hint
    assert (f.path, f.line) == (CARD, REPO_LINE)


def test_a_server_that_never_answers_times_out_quickly(registry_repo, silent_server, check_models):
    url = f"git://127.0.0.1:{silent_server.port}/train.git"
    card_with(registry_repo, url)
    start = time.monotonic()
    report = check_models(
        registry_repo, "tiny", only=["source-repo"], allow_local_urls=True, timeout=1.0
    )
    took = time.monotonic() - start
    [f] = source_findings(report)
    assert f.message == f"source.repo '{url}' did not answer within 1s"
    assert "--timeout" in f.hint
    assert (f.path, f.line) == (CARD, REPO_LINE)
    assert silent_server.accepted == 1, "git really connected to the server"
    assert took < 30  # a hang guard: the message above already shows the 1 s timeout fired


def test_each_url_is_probed_once_per_run(registry_repo, silent_server, check_models):
    url = f"git://127.0.0.1:{silent_server.port}/shared.git"
    card_with(registry_repo, url, "first")
    card_with(registry_repo, url, "second")
    report = check_models(
        registry_repo, "first", "second", only=["source-repo"], allow_local_urls=True, timeout=0.5
    )
    assert [m.name for m in report.models if not m.passed] == ["first", "second"]
    assert silent_server.accepted == 1


@pytest.mark.parametrize(
    "url, refused",
    [
        ("ext::sh -c touch% {marker}", "the 'ext::' transport runs commands and is never allowed"),
        ("fd::3", "the 'fd::' transport runs commands and is never allowed"),
        ("ftp://example.com/train.git", "the scheme 'ftp://' is not allowed"),
        ("--upload-pack=touch {marker}", "it starts with '-', which git would read as an option"),
    ],
)
def test_disallowed_urls_are_refused_without_running_git(
    registry_repo, tmp_path, check_models, url, refused
):
    marker = tmp_path / "ran"
    url = url.format(marker=marker)
    card_with(registry_repo, url)
    report = check_models(registry_repo, "tiny", only=["source-repo"])
    [f] = source_findings(report)
    assert f.message == f"source.repo '{url}' is refused: {refused}"
    assert (f.path, f.line) == (CARD, REPO_LINE)
    assert not marker.exists()


def test_local_urls_are_refused_when_the_registry_forbids_them(
    registry_repo, training_repo, check_models
):
    card_with(registry_repo, training_repo.as_uri())
    report = check_models(registry_repo, "tiny", only=["source-repo"], allow_local_urls=False)
    [f] = source_findings(report)
    assert "local URLs (file://) are not allowed" in f.message
    assert (f.path, f.line) == (CARD, REPO_LINE)


def test_offline_is_a_warning_never_a_silent_pass(registry_repo, tmp_path, check_models):
    card_with(registry_repo, (tmp_path / "nowhere").as_uri())
    report = check_models(
        registry_repo, "tiny", only=["source-repo"], allow_local_urls=True, offline=True
    )
    [f] = source_findings(report)
    assert f.severity.value == "warning"
    assert "was not checked (--offline)" in f.message
    assert report.passed  # a warning alone passes


def test_offline_still_refuses_a_disallowed_scheme(registry_repo, check_models):
    card_with(registry_repo, "ext::sh -c id")
    report = check_models(registry_repo, "tiny", only=["source-repo"], offline=True)
    [f] = source_findings(report)
    assert f.severity.value == "error" and "is refused" in f.message


@pytest.mark.parametrize(
    "url, allow_local, kind",
    [
        ("https://github.com/org/train.git", False, UrlKind.network),
        ("http://git.example.com/train", False, UrlKind.network),
        ("ssh://git@example.com:2222/org/train.git", False, UrlKind.network),
        ("git://example.com/train.git", False, UrlKind.network),
        ("git@github.com:org/train.git", False, UrlKind.network),
        ("file:///srv/train.git", True, UrlKind.local),
        ("../train", True, UrlKind.local),
        ("file:///srv/train.git", False, None),
        ("/srv/train.git", False, None),
        ("EXT::sh", True, None),
        ("gopher://x/y", True, None),
    ],
)
def test_url_kinds(url, allow_local, kind):
    assert judge_url(url, allow_local).kind is kind


# ------------------------------------------------- training code kept in the registry (repo: self)


def self_card(reg, commit: str, path: str = "training/train.py", name: str = "tiny") -> None:
    card = example_card(name).replace(
        "  repo: https://github.com/example/train.git",
        f"  repo: self\n  commit: {commit}\n  path: {path}",
    )
    reg.commit(
        {f"models/{name}/model.yaml": card, f"models/{name}/config.yaml": "epochs: 3\n"},
        f"add {name}",
    )


def test_self_source_in_the_registry_history_is_confirmed_without_the_network(
    registry_repo, check_models
):
    commit = registry_repo.commit({"training/train.py": "print('training')\n"}, "training code")
    self_card(registry_repo, commit)
    report = check_models(
        registry_repo, "tiny", only=["source-repo"], allow_local_urls=False, timeout=0.01
    )
    assert source_findings(report) == [] and report.passed
    # the check ran offline too, with the same verdict: nothing is contacted
    assert check_models(registry_repo, "tiny", only=["source-repo"], offline=True).passed


def test_self_source_needs_commit_and_path(registry_repo, check_models):
    card = example_card("tiny").replace(
        "  repo: https://github.com/example/train.git", "  repo: self"
    )
    registry_repo.commit(
        {"models/tiny/model.yaml": card, "models/tiny/config.yaml": "epochs: 3\n"}, "add"
    )
    report = check_models(registry_repo, "tiny")
    messages = [f.message for m in report.models for f in m.findings]
    assert any("repo 'self' needs both commit" in m for m in messages), messages


def test_self_source_with_an_unknown_commit_is_an_error(registry_repo, check_models):
    self_card(registry_repo, "0123456789abcdef0123456789abcdef01234567")
    [f] = source_findings(check_models(registry_repo, "tiny", only=["source-repo"]))
    assert f.severity.value == "error"
    assert f.message == (
        "source.commit 0123456789abcdef0123456789abcdef01234567 is not a commit of this "
        "registry's repository"
    )
    assert "git log -1 --format=%H -- training/train.py" in f.hint
    assert (f.path, f.line) == (CARD, REPO_LINE + 1)


def test_self_source_path_missing_at_the_commit_is_an_error(registry_repo, check_models):
    commit = registry_repo.commit({"training/other.py": "pass\n"}, "other code")
    self_card(registry_repo, commit)
    [f] = source_findings(check_models(registry_repo, "tiny", only=["source-repo"]))
    assert f.message == f"source.path 'training/train.py' does not exist at commit {commit}"
    assert (f.path, f.line) == (CARD, REPO_LINE + 2)


def test_self_source_commit_outside_the_checked_history_is_an_error(registry_repo, check_models):
    """A commit that exists in the clone but not in the checked revision's history (another branch)
    is not this registry's training code."""
    registry_repo.git("checkout", "-q", "-b", "elsewhere")
    commit = registry_repo.commit({"training/train.py": "print('elsewhere')\n"}, "side branch")
    registry_repo.git("checkout", "-q", "main")
    self_card(registry_repo, commit)
    head = registry_repo.git("rev-parse", "HEAD").strip()
    [f] = source_findings(check_models(registry_repo, "tiny", head=head, only=["source-repo"]))
    assert f.message.startswith(f"source.commit {commit} is not in the history of")


def test_self_source_in_a_shallow_clone_is_a_warning_not_a_failure(
    registry_repo, tmp_path, check_models
):
    commit = registry_repo.commit({"training/train.py": "print('training')\n"}, "training code")
    self_card(registry_repo, commit)
    registry_repo.commit({"models/tiny/config.yaml": "epochs: 4\n"}, "later")
    shallow = tmp_path / "shallow"
    run(["git", "clone", "-q", "--depth", "1", registry_repo.root.as_uri(), str(shallow)], tmp_path)
    from factories import Registry

    report = check_models(Registry(shallow, registry_repo.storage), "tiny", only=["source-repo"])
    [f] = source_findings(report)
    assert f.severity.value == "warning" and report.passed
    assert (
        f.message
        == f"source.commit {commit} was not confirmed: this clone is shallow and does not hold it"
    )
    assert "fetch-depth: 0" in f.hint
