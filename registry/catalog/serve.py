"""A local preview of a built catalog: a static file server on 127.0.0.1 only."""

from __future__ import annotations

import functools
import http.server
from pathlib import Path

from registry.core.errors import UsageError

HOST = "127.0.0.1"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site's files; logs one short line per request."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".json": "application/json",
        ".svg": "image/svg+xml",
        ".js": "text/javascript",
    }

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


def make_server(directory: str | Path, port: int = 8000) -> http.server.ThreadingHTTPServer:
    """A server for the site in `directory` on 127.0.0.1:`port` (0: any free port); not started.

    Raises:
        UsageError: the folder holds no built site, or the port is taken.
    """
    directory = Path(directory)
    if not (directory / "index.html").is_file():
        raise UsageError(
            f"{directory} holds no built catalog (no index.html)",
            f"build it first: registry catalog build -o {directory}",
        )
    handler = functools.partial(_QuietHandler, directory=str(directory))
    try:
        return http.server.ThreadingHTTPServer((HOST, port), handler)
    except OSError as e:
        raise UsageError(
            f"cannot listen on {HOST}:{port}: {e.strerror}", "choose another port with --port"
        ) from None
