"""What `registry pull` wrote (its `--format json` output)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from registry.versions.resolve import FetchedFile


class PulledFile(FetchedFile):
    """One file written by a pull: a file of the version, or a device package."""

    target: str | None = Field(None, description="the device target, for a package")
    sha256: str | None = Field(
        None, description="SHA-256 of a package (as in the release's SHA256SUMS)"
    )


class PullResult(BaseModel):
    """What `registry pull` fetched (its `--format json` output)."""

    name: str
    version: str
    tag: str
    commit: str
    out_dir: str
    remote: str = Field(description="URL of the public remote the weights came from")
    files: list[PulledFile] = Field(default_factory=list)
    withdrawn: bool = False
    warning: str | None = None
