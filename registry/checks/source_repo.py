"""Standard: the training code's `source.repo` is a git URL of an allowed kind that answers.

The URL is judged before anything runs: only https, http, ssh, git and scp-like `user@host:path`
addresses are accepted (plus `file://` and local paths when the run allows local URLs). Transport
helpers such as `ext::` or `fd::` would let a card run commands on the bot's machine, so they are
refused without calling git. An accepted URL is then probed with `git ls-remote` under a short
timeout, with every way git could stop to ask for credentials turned off. Each URL is probed once
per run, however many models name it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from registry.checks import Check, Finding, ModelContext, Severity, register

NETWORK_SCHEMES = ("https", "http", "ssh", "git")
LOCAL_SCHEMES = ("file",)
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HELPER_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)::")
_SCP_RE = re.compile(r"^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:(?!//)")


class UrlKind(str, Enum):
    network = "network"
    local = "local"


@dataclass(frozen=True)
class UrlVerdict:
    """Whether a source URL may be probed: its kind, or the reason it is refused."""

    kind: UrlKind | None
    refused: str = ""
    hint: str = ""


def judge_url(url: str, allow_local: bool) -> UrlVerdict:
    """Classify a `source.repo` URL without contacting it.

    Args:
        url: the card's `source.repo`.
        allow_local: whether `file://` URLs and local paths are accepted.

    Returns:
        the URL's kind, or `refused` set to why it may not be used.
    """
    allowed = ", ".join(f"{s}://" for s in NETWORK_SCHEMES) + ", git@host:path"
    if url.startswith("-"):
        return UrlVerdict(
            None,
            "it starts with '-', which git would read as an option",
            f"write a git URL ({allowed})",
        )
    if any(c in url for c in "\0\n\r") or url != url.strip():
        return UrlVerdict(
            None,
            "it contains control characters or surrounding blanks",
            f"write a plain git URL ({allowed})",
        )
    helper = _HELPER_RE.match(url)
    if helper:
        return UrlVerdict(
            None,
            f"the '{helper[1]}::' transport runs commands and is never allowed",
            f"write a git URL ({allowed})",
        )
    scheme = _SCHEME_RE.match(url)
    if scheme:
        name = scheme[1].lower()
        if name in NETWORK_SCHEMES:
            return _network_verdict(url, allow_local)
        if name in LOCAL_SCHEMES:
            if allow_local:
                return UrlVerdict(UrlKind.local)
            return UrlVerdict(
                None,
                "local URLs (file://) are not allowed in this registry's checks",
                f"point source.repo at the hosted training code ({allowed})",
            )
        return UrlVerdict(None, f"the scheme '{name}://' is not allowed", f"use one of {allowed}")
    if _SCP_RE.match(url):
        return _network_verdict(url, allow_local)
    if allow_local:
        return UrlVerdict(UrlKind.local)
    return UrlVerdict(
        None,
        "it is a local path, and local URLs are not allowed in this registry's checks",
        f"point source.repo at the hosted training code ({allowed})",
    )


# -- the bot's own network: loopback, link-local and private addresses are local too

_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_CREDENTIALS_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]*)@")


def url_host(url: str) -> str | None:
    """The host name or address a network git URL names (scheme URLs and scp-like
    `user@host:path`)."""
    from urllib.parse import urlsplit

    if _SCHEME_RE.match(url):
        try:
            return urlsplit(url).hostname
        except ValueError:
            return None
    scp = re.match(r"^[^@]+@(?P<host>[^:]+):", url)
    return scp["host"].lower() if scp else None


def is_local_address(host: str) -> bool:
    """Whether a host is the bot's own machine or network: a loopback, link-local, private, reserved
    or unspecified address (IPv4 or IPv6, also IPv4 written in IPv6 or as one number) or a
    localhost name."""
    import ipaddress

    name = host.strip("[]").lower().rstrip(".")
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        addr = ipaddress.ip_address(
            int(name, 0) if name.isdigit() or name.startswith("0x") else name
        )
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    addr = mapped or addr
    return (
        addr.is_loopback
        or addr.is_link_local
        or addr.is_private
        or addr.is_reserved
        or addr.is_unspecified
        or addr.is_multicast
    )


def resolves_locally(host: str, timeout: float = 5.0) -> bool:
    """Whether a host name resolves to a local address (see `is_local_address`); False when it does
    not resolve (git then reports the name)."""
    import concurrent.futures
    import socket

    def lookup() -> list[str]:
        return [info[4][0] for info in socket.getaddrinfo(host, None)]

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        addresses = pool.submit(lookup).result(timeout=timeout)
    except (OSError, UnicodeError, concurrent.futures.TimeoutError):
        return False
    finally:
        pool.shutdown(wait=False)
    return any(is_local_address(a.split("%")[0]) for a in addresses)


def redact(text: str) -> str:
    """`text` with the credentials of any URL in it replaced by `***` (`https://***@host/…`)."""
    return _CREDENTIALS_RE.sub(lambda m: f"{m['scheme']}***@", text)


def _network_verdict(url: str, allow_local: bool) -> UrlVerdict:
    host = url_host(url)
    if not allow_local and host and is_local_address(host):
        return UrlVerdict(
            None,
            f"'{host}' is the bot's own machine or network (loopback, link-local or "
            "private address), and local URLs are not allowed in this registry's checks",
            "point source.repo at the hosted training code (a public host name)",
        )
    return UrlVerdict(UrlKind.network)


class ProbeOutcome(str, Enum):
    ok = "ok"
    missing = "missing"  # git answered: no such repository, or no access
    timeout = "timeout"  # no answer in time
    failed = "failed"  # git could not run at all
    refused = "refused"  # not probed: the host name resolves to the bot's own network


@dataclass(frozen=True)
class Probe:
    """The result of `git ls-remote` on one URL."""

    outcome: ProbeOutcome
    detail: str = ""
    seconds: float = 0.0


def probe(
    url: str, timeout: float, cwd: str | os.PathLike | None = None, allow_local: bool = True
) -> Probe:
    """Ask a git URL for its refs with `git ls-remote`, never waiting longer than `timeout`.

    Prompts are off (GIT_TERMINAL_PROMPT=0, an askpass that answers nothing, ssh in batch mode,
    no credential helpers), and git's own protocol policy refuses helper transports as a second
    line behind `judge_url`. The whole process group is killed on timeout, so a git-remote-https
    child cannot outlive the check.
    """
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "true",
        "SSH_ASKPASS": "true",
        "GCM_INTERACTIVE": "never",
        "GIT_SSH_COMMAND": f"ssh -o BatchMode=yes -o ConnectTimeout={max(1, int(timeout))}",
    }
    cmd = [
        "git",
        "-c",
        "credential.helper=",
        "-c",
        "core.askPass=true",
        "-c",
        "protocol.ext.allow=never",
        "-c",
        "protocol.fd.allow=never",
        "-c",
        f"protocol.file.allow={'always' if allow_local else 'never'}",
        "ls-remote",
        "--heads",
        "--",
        url,
    ]
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as e:
        return Probe(ProbeOutcome.failed, f"git could not be started: {e}")
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        return Probe(
            ProbeOutcome.timeout, f"no answer within {timeout:g}s", time.monotonic() - start
        )
    took = time.monotonic() - start
    if proc.returncode == 0:
        return Probe(ProbeOutcome.ok, seconds=took)
    lines = [ln.strip() for ln in (err or "").splitlines() if ln.strip()]
    # git's first 'fatal:' line names the cause; the rest is boilerplate about access rights
    fatal = next((ln for ln in lines if ln.startswith("fatal:")), lines[0] if lines else "")
    return Probe(
        ProbeOutcome.missing,
        fatal.removeprefix("fatal:").strip() or f"git exited {proc.returncode}",
        took,
    )


@register
class SourceRepo(Check):
    """`source.repo` is an allowed git URL and answers `git ls-remote` within the timeout."""

    name = "source-repo"
    description = (
        "source.repo is a git URL of an allowed kind (https, http, ssh, git, git@host:path; "
        "file://, local paths and loopback/link-local/private hosts only with --allow-local-urls; "
        "never ext:: or fd::) and "
        "answers `git ls-remote` within --timeout; with --offline it is not contacted "
        "and a warning says so"
    )
    order = 20

    def run(self, ctx: ModelContext) -> Iterable[Finding]:
        if ctx.card.source.is_self:
            yield from self._confirm_in_registry(ctx)
            return
        real_url = ctx.card.source.repo
        # judged once per run (many models name the same training repository)
        judged = ("source-url", real_url, ctx.options.allow_local_urls)
        if judged not in ctx.cache:
            # what every message shows (never a token), and whether the URL may be probed
            ctx.cache[judged] = redact(real_url), judge_url(real_url, ctx.options.allow_local_urls)
        url, verdict = ctx.cache[judged]
        path, line = ctx.card_path, ctx.line("source", "repo")
        if verdict.kind is None:
            yield self.finding(
                f"source.repo '{url}' is refused: {verdict.refused}",
                verdict.hint,
                path=path,
                line=line,
            )
            return
        if ctx.options.offline:
            yield self.finding(
                f"source.repo '{url}' was not checked (--offline)",
                "run `registry check` without --offline to confirm it is reachable",
                path=path,
                line=line,
                severity=Severity.warning,
            )
            return
        key = ("source-repo", real_url)
        if key not in ctx.cache:
            host = url_host(real_url) if verdict.kind is UrlKind.network else None
            if (
                host
                and not ctx.options.allow_local_urls
                and resolves_locally(host, ctx.options.timeout)
            ):
                ctx.cache[key] = Probe(
                    ProbeOutcome.refused,
                    f"'{host}' resolves to a loopback, link-local or private address",
                )
            else:
                cwd = ctx.repo.root if ctx.repo else None
                ctx.cache[key] = probe(
                    real_url, ctx.options.timeout, cwd, ctx.options.allow_local_urls
                )
        result: Probe = ctx.cache[key]
        if result.outcome is ProbeOutcome.timeout:
            yield self.finding(
                f"source.repo '{url}' did not answer within {ctx.options.timeout:g}s",
                "check the host name and that the server is up; raise --timeout if it is just slow",
                path=path,
                line=line,
            )
        elif result.outcome is ProbeOutcome.refused:
            yield self.finding(
                f"source.repo '{url}' is refused: {result.detail}, and local URLs are not "
                "allowed in this registry's checks",
                "point source.repo at the hosted training code",
                path=path,
                line=line,
            )
        elif result.outcome is ProbeOutcome.missing:
            detail = (
                redact(result.detail)
                if verdict.kind is UrlKind.network
                else "git could not read it as a repository"
            )  # git's text would name the bot's own files
            yield self.finding(
                f"source.repo '{url}' cannot be read: {detail}",
                "make sure the repository exists and is readable without credentials, "
                "and that the URL is spelled right",
                path=path,
                line=line,
            )
        elif result.outcome is ProbeOutcome.failed:
            yield self.finding(
                f"source.repo '{url}' could not be checked: {result.detail}",
                "install git on the machine that runs the checks",
                path=path,
                line=line,
            )

    def _confirm_in_registry(self, ctx: ModelContext) -> Iterable[Finding]:
        """`repo: self`: the commit is in the checked revision's history and holds `source.path`.

        Needs no network: the registry's own clone is the evidence. A clone that lacks the commit
        because it is shallow gets a warning (it cannot tell), never a failure.
        """
        source = ctx.card.source
        path, line = ctx.card_path, ctx.line("source", "commit")
        if ctx.repo is None:
            yield self.finding(
                "source 'self' was not confirmed: the check is not running in a clone "
                "of the registry",
                "run `registry check` inside the registry's clone",
                path=path,
                line=line,
                severity=Severity.warning,
            )
            return
        root = ctx.repo.root
        found = _git(root, "rev-parse", "--verify", "--quiet", f"{source.commit}^{{commit}}")
        if found.returncode != 0:
            shallow = _git(root, "rev-parse", "--is-shallow-repository").stdout.strip()
            if shallow == "true":
                yield self.finding(
                    f"source.commit {source.commit} was not confirmed: this clone is shallow and "
                    f"does "
                    "not hold it",
                    "fetch the full history (git fetch --unshallow; in Actions, "
                    "actions/checkout with fetch-depth: 0) to confirm it",
                    path=path,
                    line=line,
                    severity=Severity.warning,
                )
            else:
                yield self.finding(
                    f"source.commit {source.commit} is not a commit of this registry's repository",
                    f"set it to the commit that holds {source.path} "
                    f"(git log -1 --format=%H -- {source.path})",
                    path=path,
                    line=line,
                )
            return
        full = found.stdout.strip()
        head = ctx.head.rev or "HEAD"
        if _git(root, "merge-base", "--is-ancestor", full, head).returncode != 0:
            yield self.finding(
                f"source.commit {source.commit} is not in the history of {ctx.head.label or head}",
                "name a commit of this branch's history, where the training code was committed",
                path=path,
                line=line,
            )
            return
        if _git(root, "cat-file", "-e", f"{full}:{source.path}").returncode != 0:
            yield self.finding(
                f"source.path '{source.path}' does not exist at commit {source.commit}",
                "write the path, relative to the repository's root, of the training "
                "code as it is at that commit",
                path=path,
                line=ctx.line("source", "path"),
            )


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    """A local git query in the registry's clone; its exit code is the answer."""
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
