"""The report renderers and the GitHub adapter, fed typed reports."""

from __future__ import annotations

import json

import pytest

from registry.checks import CheckReport, Finding, ModelReport, Severity, github
from registry.checks.report import COMMENT_MARKER, render_json, render_markdown, render_text

SVG = '<svg xmlns="http://www.w3.org/2000/svg"><text>graph</text></svg>'


@pytest.fixture
def report() -> CheckReport:
    bad = ModelReport(
        name="tiny",
        checks_run=["metrics", "source-repo"],
        findings=[
            Finding(
                check="metrics",
                message="metric 'accuracy' on 'test' is 120%, outside 0-100%",
                hint="a percentage lies between 0 and 100",
                path="models/tiny/model.yaml",
                line=12,
            ),
            Finding(
                check="source-repo",
                severity=Severity.warning,
                message="source.repo 'x' was not checked (--offline)",
                hint="run without --offline",
                path="models/tiny/model.yaml",
                line=6,
            ),
        ],
        artifacts={
            "graph_text": "inputs: input float[batch,8]\nops: Gemm×2 Relu×1",
            "graph_svg": SVG,
            "release_notes_draft": "## tiny 1.1.0\n\n- accuracy 0.91 → 0.93",
        },
    )
    good = ModelReport(name="digits-cnn", checks_run=["metrics"])
    return CheckReport(
        base="main (0123abcd)",
        head="HEAD (89abcdef)",
        head_commit="89abcdef" * 5,
        models=[good, bad],
    )


def test_text_groups_by_model_with_location_fix_graph_notes_and_counts(report):
    text = render_text(report)
    assert text.splitlines()[0] == "PASS digits-cnn"
    assert "FAIL tiny\n" in text
    assert (
        "  error: models/tiny/model.yaml:12: metric 'accuracy' on 'test' is 120%, outside 0-100% "
        "[metrics]\n"
        "    fix: a percentage lies between 0 and 100\n"
    ) in text
    assert (
        "  warning: models/tiny/model.yaml:6: source.repo 'x' was not checked (--offline)" in text
    )
    assert "  graph:\n    inputs: input float[batch,8]\n    ops: Gemm×2 Relu×1\n" in text
    assert "  release notes draft:\n    ## tiny 1.1.0\n\n    - accuracy 0.91 → 0.93\n" in text
    assert text.endswith("2 models checked: 1 passed, 1 failed; 1 error, 1 warning\n")
    assert "\x1b[" not in text


def test_text_colours_only_when_asked(report):
    coloured = render_text(report, color=True)
    assert "\x1b[32m" in coloured and "\x1b[31m" in coloured  # green PASS, red FAIL/error


def test_json_is_the_report_with_verdicts_and_counts(report):
    data = json.loads(render_json(report))
    assert data["passed"] is False
    assert data["counts"] == {"models": 2, "failed": 1, "error": 1, "warning": 1, "notice": 0}
    tiny = data["models"][1]
    assert tiny["passed"] is False
    assert tiny["findings"][0] == {
        "check": "metrics",
        "severity": "error",
        "message": "metric 'accuracy' on 'test' is 120%, outside 0-100%",
        "hint": "a percentage lies between 0 and 100",
        "path": "models/tiny/model.yaml",
        "line": 12,
    }
    assert CheckReport.model_validate(data).models[1].findings[0].line == 12


def test_markdown_comment_starts_with_the_marker_and_links_lines(report):
    link = github.line_link(report.head_commit)
    body = render_markdown(report, comment=True, link=link, pictures={"tiny": "tiny.svg"})
    assert body.splitlines()[0] == COMMENT_MARKER
    assert "## Registry check: ❌ failed" in body
    assert "| `tiny` | ❌ fail | 1 | 1 |" in body
    assert "| `digits-cnn` | ✅ pass | 0 | 0 |" in body
    assert "Graph picture: `tiny.svg` in this run's artifacts." in body
    assert "```text\ninputs: input float[batch,8]" in body
    assert "## tiny 1.1.0" in body
    summary = render_markdown(report)
    assert COMMENT_MARKER not in summary


def test_markdown_links_with_the_runner_environment(report, monkeypatch):
    monkeypatch.setenv("GITHUB_REPOSITORY", "org/models")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    body = render_markdown(report, link=github.line_link(report.head_commit))
    assert (
        f"[`models/tiny/model.yaml:12`](https://github.com/org/models/blob/{report.head_commit}"
        "/models/tiny/model.yaml#L12)"
    ) in body


def test_markdown_makes_card_text_inert(report):
    report.models[1].findings[
        0
    ].message = "name '<img src=x onerror=alert(1)>|x' ![p](http://evil) <!-- registry-check -->"
    body = render_markdown(report, comment=True)
    assert "<img" not in body and "![p](" not in body
    assert body.count(COMMENT_MARKER) == 1
    assert "&lt;img src=x onerror=alert(1)&gt;\\|x" in body


def test_annotations_sit_on_the_line_and_escape_workflow_commands():
    f = Finding(
        check="metrics",
        message="100% wrong\r\nnext ::add-mask::secret",
        hint="fix it",
        path="models/a,b/model:x.yaml",
        line=3,
    )
    line = github.annotation(f, "a,b")
    assert line == (
        "::error file=models/a%2Cb/model%3Ax.yaml,line=3,title=metrics (a%2Cb)::"
        "100%25 wrong%0D%0Anext ::add-mask::secret%0Afix: fix it"
    )
    assert "\n" not in line
    warning = github.annotation(
        Finding(check="source-repo", severity=Severity.warning, message="m"), "a"
    )
    assert warning == "::warning title=source-repo (a)::m"


def test_publish_writes_summary_outputs_comment_and_pictures(report, tmp_path, monkeypatch):
    summary, outputs = tmp_path / "summary.md", tmp_path / "output"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_REPOSITORY", "org/models")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    out = github.publish(report, tmp_path / "comment.md", tmp_path / "artifacts")
    assert out.splitlines() == [
        "::error file=models/tiny/model.yaml,line=12,title=metrics (tiny)::metric 'accuracy' on "
        "'test' is "
        "120%25, outside 0-100%25%0Afix: a percentage lies between 0 and 100",
        "::warning file=models/tiny/model.yaml,line=6,title=source-repo (tiny)::source.repo 'x' "
        "was not "
        "checked (--offline)%0Afix: run without --offline",
    ]
    assert summary.read_text().startswith("earlier step\n## Registry check: ❌ failed")
    assert outputs.read_text() == "passed=false\n"
    comment = (tmp_path / "comment.md").read_text()
    assert comment.startswith(COMMENT_MARKER + "\n")
    assert (
        "Graph picture: `tiny.svg` in [this run's artifacts]"
        "(https://github.com/org/models/actions/runs/42)."
    ) in comment
    assert (tmp_path / "artifacts" / "tiny.svg").read_text() == SVG
    assert not (tmp_path / "artifacts" / "digits-cnn.svg").exists()


def test_text_keeps_each_finding_on_one_line(report):
    report.models[1].findings[0].message = "metric 'acc\n::error::forged' is bad"
    text = render_text(report)
    assert "metric 'acc\\n::error::forged' is bad [metrics]" in text
    assert not any(line.startswith("::") for line in text.splitlines())


def test_the_log_copy_of_the_report_cannot_issue_workflow_commands():
    block = github.inert_block("graph:\n::error::forged\n")
    first, *body, last = block.splitlines()
    assert first.startswith("::stop-commands::") and len(first) > len("::stop-commands::") + 16
    assert last == f"::{first.removeprefix('::stop-commands::')}::"
    assert body == ["graph:", "::error::forged"]
    assert github.inert_block("x\n") != github.inert_block("x\n")  # a fresh token each time


def _varied_models(count: int) -> list[ModelReport]:
    """Models with every shape the text report shows: errors, warnings and notices, findings with
    and without a file, line or fix, skipped checks, pictures and drafts, odd characters."""
    shapes = [
        ModelReport(name="clean", checks_run=["metrics"]),
        ModelReport(
            name="skipped",
            checks_skipped={"graph": "content checks turned off (--no-content)"},
            findings=[Finding(check="card-fields", message="no task", path="models/s/model.yaml")],
        ),
        ModelReport(
            name="ünïcode-模型",
            findings=[
                Finding(
                    check="metrics",
                    severity=Severity.notice,
                    message="précision → 0.93 ✓",
                    hint="garder «ça»",
                    path="models/ünïcode-模型/model.yaml",
                    line=3,
                ),
                Finding(check="graph", severity=Severity.warning, message="no file", line=4),
                Finding(check="metrics", message="line zero", path="p.yaml", line=0, hint=""),
            ],
        ),
        ModelReport(
            name="odd\nname\x1b[31m",
            findings=[
                Finding(
                    check="source-repo",
                    severity=Severity.warning,
                    message="two\nlines\tand\r\x00",
                    hint="fix\nit",
                    path="models/odd\nname/model.yaml",
                    line=7,
                )
            ],
            artifacts={
                "graph_text": "inputs: x\n\n  ops: Gemm×2\n\n",
                "release_notes_draft": "## 1.1.0\n\n- better",
                "graph_svg": SVG,
            },
        ),
        ModelReport(
            name="empty-artifacts", artifacts={"graph_text": "", "release_notes_draft": None}
        ),
    ]
    return [shapes[i % len(shapes)] for i in range(count)]


@pytest.mark.parametrize("count", [0, 1, 5, 250])
@pytest.mark.parametrize("color", [False, True], ids=["plain", "colour"])
def test_a_large_text_report_reads_as_the_template_writes_it(count, color):
    from registry.checks.report import _environment, _plain_text

    report = CheckReport(head="working tree", models=_varied_models(count))

    def style(text, key=None):  # the CLI's colours, recorded by the template's own rendering
        from click import style as click_style

        colours = {"PASS": "green", "FAIL": "red", "error": "red", "warning": "yellow"}
        colour = colours.get(key or text, "cyan")
        return click_style(text, fg=colour, bold=True) if color else text

    templated = (
        _environment().get_template("check_report.txt.j2").render(report=report, style=style)
    )
    assert _plain_text(report, style) == templated
    assert render_text(report, color=color) == templated
    if count == 1:
        assert templated.endswith("1 model checked: 1 passed, 0 failed; 0 errors, 0 warnings\n")
