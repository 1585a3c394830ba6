"""`registry check`: bad cards, exit codes, output formats, and the help/docs of every check and
option."""

from __future__ import annotations

import json
import re

import click
import pytest

from factories import REPO_ROOT, example_card
from registry.checks import load_checks
from registry.cli import cli

CARD = "models/tiny/model.yaml"
GOOD = example_card("tiny")


def put_card(reg, text: str | bytes) -> None:
    reg.commit({CARD: text, "models/tiny/config.yaml": "epochs: 3\n"})


def only_finding(report):
    [model] = report.models
    [f] = model.findings
    return f


# ---- bad cards: one clear finding naming file and line, never a traceback


@pytest.mark.parametrize(
    "text, message, line",
    [
        (
            "name: tiny\ntask: [classification\nproject: x\n",
            "not valid YAML: did not find expected ',' or ']' (while parsing a flow sequence "
            "started at line 2)",
            3,
        ),
        (
            "name: tiny\na: &a [lol, lol, lol, lol]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, "
            "*b]\nd: [*c, *c, *c]\n",
            "YAML anchors and aliases are not allowed in a model card",
            2,
        ),
        (
            "- name: tiny\n- task: classification\n",
            "the card is a list, not a mapping of fields",
            1,
        ),
        ("", "the card is empty", 1),
        ("# only a comment\n", "the card is empty", 1),
        (
            GOOD.replace("project: demo", "project: [a, b]"),
            "'project': Input should be a valid string",
            4,
        ),
        (
            GOOD.replace("license: Apache-2.0", "licence: Apache-2.0"),
            "unknown field 'licence'",
            GOOD.count("\n"),
        ),
        (
            GOOD.replace("task: classification", "task: clasification"),
            "'task': 'clasification' is not a known task",
            3,
        ),
    ],
)
def test_bad_cards_get_one_finding_with_file_and_line(
    registry_repo, check_models, text, message, line
):
    put_card(registry_repo, text)
    f = only_finding(check_models(registry_repo, "tiny", offline=True, only=["card-fields"]))
    assert f.message == message
    assert (f.path, f.line) == (CARD, line)


def test_unknown_key_suggests_the_nearest(registry_repo, check_models):
    put_card(registry_repo, GOOD.replace("license: Apache-2.0", "licence: Apache-2.0"))
    assert (
        only_finding(check_models(registry_repo, "tiny", only=["card-fields"])).hint
        == "did you mean 'license'?"
    )


def test_a_50_mb_card_is_refused_without_parsing(registry_repo):
    # a YAML bomb of nested flow sequences would exhaust the parser if it were read: the only
    # finding is the size limit, so the card was never handed to YAML
    put_card(registry_repo, b"name: tiny\nx: " + b"[" * (50 * 1024 * 1024) + b"\n")
    proc = registry_repo.registry("check", "tiny", "--offline", "--no-content", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    findings = [f for m in json.loads(proc.stdout)["models"] for f in m["findings"]]
    assert [(f["check"], f["severity"]) for f in findings] == [("card-fields", "error")], findings
    text = registry_repo.registry("check", "tiny", "--offline", "--no-content")
    assert (
        f"  error: {CARD}: the card is 52,428,815 bytes, over the 262,144-byte limit "
        f"[card-fields]\n"
        "    fix: keep model.yaml to metadata; put long text in a README next to it\n"
    ) in text.stdout


# ---- exit codes and formats through the real command line


@pytest.fixture
def pr(registry_repo):
    """A pull request: base has a valid model, head adds one with a 120% accuracy."""
    registry_repo.commit(
        {"models/good/model.yaml": example_card("good"), "models/good/config.yaml": "a: 1\n"}
    )
    base = registry_repo.git("rev-parse", "HEAD")
    bad = example_card("tiny").replace("value: 0.93", "value: 120\n    unit: '%'")
    registry_repo.commit({CARD: bad, "models/tiny/config.yaml": "a: 1\n"}, "add tiny")
    return registry_repo, base


def test_a_finding_fails_with_exit_1_and_says_where_and_how(pr):
    reg, base = pr
    proc = reg.registry("check", "--base", base, "--head", "HEAD", "--offline", "--no-content")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("FAIL tiny\n")  # only the model the diff touches
    assert (
        f"  error: {CARD}:11: metric 'accuracy' on 'digits-test' is 120%, outside 0-100% "
        f"[metrics]\n"
        "    fix: a percentage lies between 0 and 100\n"
    ) in proc.stdout
    assert (
        f"  warning: {CARD}:6: source.repo 'https://github.com/example/train.git' was not checked"
        in proc.stdout
    )
    assert proc.stdout.endswith("1 model checked: 0 passed, 1 failed; 1 error, 1 warning\n")
    assert "\x1b[" not in proc.stdout  # no colour when not a terminal


def test_warnings_alone_pass_with_exit_0(pr):
    reg, _ = pr
    proc = reg.registry("check", "good", "--offline", "--no-content")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("PASS good\n  warning: ")


def test_json_format(pr):
    reg, base = pr
    proc = reg.registry(
        "check", "--base", base, "--head", "HEAD", "--offline", "--no-content", "--format", "json"
    )
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["passed"] is False and data["counts"]["error"] == 1
    assert data["head_commit"] == reg.git("rev-parse", "HEAD")
    [finding] = [f for f in data["models"][0]["findings"] if f["severity"] == "error"]
    assert (finding["check"], finding["path"], finding["line"]) == ("metrics", CARD, 11)


def test_github_format_annotates_summarises_and_writes_the_comment(pr, tmp_path):
    reg, base = pr
    summary, outputs, comment = (
        tmp_path / "summary.md",
        tmp_path / "outputs",
        tmp_path / "comment.md",
    )
    proc = reg.registry(
        "check",
        "--base",
        base,
        "--head",
        "HEAD",
        "--offline",
        "--no-content",
        "--format",
        "github",
        "--comment-file",
        str(comment),
        env={"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs)},
    )
    assert proc.returncode == 1
    assert (
        f"::error file={CARD},line=11,title=metrics (tiny)::metric 'accuracy' on 'digits-test' is "
        "120%25, outside 0-100%25%0Afix: a percentage lies between 0 and 100\n"
    ) in proc.stdout
    assert f"::warning file={CARD},line=6,title=source-repo (tiny)::" in proc.stdout
    log = proc.stdout.split("::stop-commands::", 1)[1]  # the text report, with commands off
    assert "\nFAIL tiny\n" in log and log.rstrip().endswith("::")
    assert "## Registry check: ❌ failed" in summary.read_text()
    assert outputs.read_text() == "passed=false\n"
    assert comment.read_text().startswith("<!-- registry-check -->\n## Registry check: ❌ failed")


def test_disallowed_and_forbidden_local_urls_from_the_command_line(registry_repo, tmp_path):
    registry_repo.commit(
        {
            "models/ext-model/model.yaml": example_card("ext-model", source_repo="ext::sh -c id"),
            "models/ext-model/config.yaml": "a: 1\n",
            "models/local-model/model.yaml": example_card(
                "local-model", source_repo=tmp_path.as_uri()
            ),
            "models/local-model/config.yaml": "a: 1\n",
        }
    )
    proc = registry_repo.registry(
        "check", "--all", "--no-content", "--forbid-local-urls", "--timeout", "2"
    )
    assert proc.returncode == 1
    assert (
        "models/ext-model/model.yaml:6: source.repo 'ext::sh -c id' is refused: the 'ext::' "
        "transport "
        "runs commands and is never allowed"
    ) in proc.stdout
    assert (
        f"models/local-model/model.yaml:6: source.repo '{tmp_path.as_uri()}' is refused: local "
        f"URLs "
        "(file://) are not allowed in this registry's checks"
    ) in proc.stdout


def test_deleting_a_published_model_fails_the_pull_request(registry_repo):
    registry_repo.commit(
        {
            CARD: example_card("tiny", version="1.0.0", status="published"),
            "models/tiny/config.yaml": "a: 1\n",
        }
    )
    registry_repo.git("tag", "-a", "tiny@v1.0.0", "-m", "tiny 1.0.0")
    registry_repo.git("checkout", "-q", "-b", "delete-tiny")
    registry_repo.git("rm", "-rq", "models/tiny")
    registry_repo.commit(message="delete tiny")
    proc = registry_repo.registry("check", "--base", "main", "--head", "delete-tiny", "--offline")
    assert proc.returncode == 1
    assert (
        f"  error: {CARD}:3: model 'tiny' is deleted but it was published (status 'published'; "
        "tags v1.0.0) [lifecycle]\n"
    ) in proc.stdout


@pytest.mark.parametrize(
    "args, code, message",
    [
        ((), 2, "error: say which models to check: NAME…, --all, or --base REV [--head REV]"),
        (("nosuch",), 2, "error: no model named nosuch in working tree"),
        (("--all", "--only", "nosuch"), 2, "error: no check named nosuch"),
        (("--all", "--format", "xml"), 2, "Invalid value for '--format'"),
        (("--base", "no-such-rev"), 4, "error: unknown git revision 'no-such-rev'"),
    ],
)
def test_usage_and_git_errors_have_their_exit_codes(registry_repo, args, code, message):
    proc = registry_repo.registry("check", *args)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


# ---- the registries document themselves


def test_every_check_has_a_name_a_description_and_a_docs_section():
    docs = (REPO_ROOT / "docs" / "checks.md").read_text()
    sections = set(re.findall(r"^### `([a-z0-9-]+)`", docs, re.M))
    checks = load_checks()
    assert {"source-repo", "metrics", "lifecycle", "unique-name", "card-fields"} <= set(checks)
    for name, cls in checks.items():
        assert cls.name == name and re.fullmatch(r"[a-z0-9-]+", name)
        assert cls.description and len(cls.description) > 20, name
        assert cls.__doc__, name
        assert name in sections, f"docs/checks.md has no '### `{name}`' section"


def test_every_command_and_option_has_help_text():
    def walk(command: click.Command, path: str):
        assert command.help, f"{path} has no help"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.opts[0]} has no help"
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")

    walk(cli, "registry")
