"""Test-only driver: `registry publish` killed at one point of its run, as a kill would do it
(`os._exit`).

    python tests/publish_killed.py POINT [registry publish options…]

POINT is one of `POINTS`: after-copy (the objects copied and verified, no tag yet), after-tag (the
local tag made), before-push (the tag not pushed yet) and after-push (the tag pushed, the
changelog not written). The driver wraps the publish module's tag functions to end the process
there; the registry itself has no hook for it.
"""

from __future__ import annotations

import os
import sys

import registry.publishing.publish as publishing
from registry.cli import main

KILLED = 86  # the exit status of a run stopped at its point
# point: (the function of the publish module it is at, whether before or after that call)
POINTS = {
    "after-copy": ("create_tag", "before"),
    "after-tag": ("create_tag", "after"),
    "before-push": ("push_tag", "before"),
    "after-push": ("push_tag", "after"),
}


def stop_at(point: str) -> None:
    """Make the publish module end the process at `point`."""
    name, when = POINTS[point]
    call = getattr(publishing, name)

    def killed(*args, **kwargs):
        if when == "after":
            call(*args, **kwargs)
        sys.stderr.write(f"killed at {point}\n")
        sys.stderr.flush()
        os._exit(KILLED)

    setattr(publishing, name, killed)


if __name__ == "__main__":
    stop_at(sys.argv[1])
    main(["publish", *sys.argv[2:]])
