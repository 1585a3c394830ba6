"""Headless Chromium for the catalog's browser test and benchmark: Debian's chromium, driven by
Playwright (no browser download), and the built site served on 127.0.0.1."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

INSTALL_HINT = "apt-get install -y chromium chromium-driver && pip install playwright"


def chromium_path() -> str | None:
    """Debian's Chromium, when it is installed."""
    for name in (
        "/usr/bin/chromium",
        shutil.which("chromium") or "",
        shutil.which("chromium-browser") or "",
    ):
        if name and Path(name).is_file():
            return name
    return None


def chromium_args() -> list[str]:
    """Flags for a quiet headless run that makes no request of its own."""
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
    ]


@contextlib.contextmanager
def serve_site(site: Path) -> Iterator[str]:
    """Serve a built site on 127.0.0.1 (a free port) with the catalog's own preview server."""
    from registry.catalog.serve import make_server

    server = make_server(site, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
