"""GitHub Actions output of a check run: annotations, step summary, step outputs, comment body.

The one GitHub-specific module. Workflow commands follow GitHub's escaping rules: in the message
`%`, `\\r` and `\\n` are percent-encoded; in properties (`file=`, `title=`…) `:` and `,` are too.
Every value in a command comes from the pull request's card, so escaping is what stops a card
from writing commands of its own (`::add-mask::`, a fake `::error`) into the log.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from registry.checks.report import render_markdown, write_pictures
from registry.core.files import write_atomic

if TYPE_CHECKING:
    from registry.checks import CheckReport, Finding


def escape_data(text: str) -> str:
    """Escape a workflow command's message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value (file, title)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(finding: Finding, model: str) -> str:
    """The `::error`/`::warning`/`::notice` command that marks a finding on its file and line."""
    props = []
    if finding.path:
        props.append(f"file={escape_property(finding.path)}")
        if finding.line:
            props.append(f"line={finding.line}")
    props.append(f"title={escape_property(f'{finding.check} ({model})')}")
    message = finding.message + (f"\nfix: {finding.hint}" if finding.hint else "")
    return f"::{finding.severity.value} {','.join(props)}::{escape_data(message)}"


def annotations(report: CheckReport) -> list[str]:
    """One workflow command per finding of the report."""
    return [annotation(f, m.name) for m in report.models for f in m.findings]


def inert_block(text: str) -> str:
    """`text` for the log with workflow commands switched off around it (`::stop-commands::`).

    The text report quotes card values and graph summaries from the pull request; between the two
    markers the runner treats no line as a command, whatever it starts with.
    """
    token = secrets.token_hex(16)
    return (
        f"::stop-commands::{token}\n{text}{'' if text.endswith(chr(10)) else chr(10)}::{token}::\n"
    )


def line_link(head_sha: str | None) -> Callable[[str, int | None], str | None]:
    """A (path, line) → URL function for files at the head commit, from the runner's environment."""
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
    repository = os.environ.get("GITHUB_REPOSITORY")
    sha = head_sha or os.environ.get("GITHUB_SHA")

    def link(path: str, line: int | None) -> str | None:
        if not (repository and sha and path):
            return None
        return f"{server}/{repository}/blob/{sha}/{path}" + (f"#L{line}" if line else "")

    return link


def artifacts_url() -> str | None:
    """The page of the current workflow run, where its uploaded artifacts are listed."""
    repository, run_id = os.environ.get("GITHUB_REPOSITORY"), os.environ.get("GITHUB_RUN_ID")
    if not (repository and run_id):
        return None
    return f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com')}/{repository}/actions/runs/{run_id}"


def write_comment(report: CheckReport, path: Path, artifacts_dir: Path | None = None) -> None:
    """Write the pull-request comment body (Markdown, hidden marker first) and the graph pictures.

    Args:
        path: the comment body file the workflow posts (or updates in place).
        artifacts_dir: where to write `<model>.svg` for upload as a run artifact.
    """
    pictures = write_pictures(report, artifacts_dir) if artifacts_dir else {}
    body = render_markdown(
        report,
        comment=True,
        link=line_link(report.head_commit),
        pictures=pictures,
        artifacts_url=artifacts_url(),
    )
    write_atomic(path, body)


def publish(
    report: CheckReport, comment_file: Path | None = None, artifacts_dir: Path | None = None
) -> str:
    """Everything the github format produces; returns the annotation lines for standard output.

    Appends the Markdown report to `$GITHUB_STEP_SUMMARY` and `passed=true|false` to
    `$GITHUB_OUTPUT` when those are set (as they are on a runner).
    """
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(render_markdown(report, link=line_link(report.head_commit)))
    outputs = os.environ.get("GITHUB_OUTPUT")
    if outputs:
        with open(outputs, "a", encoding="utf-8") as f:
            f.write(f"passed={'true' if report.passed else 'false'}\n")
    if comment_file:
        write_comment(report, comment_file, artifacts_dir)
    return "".join(line + "\n" for line in annotations(report))
