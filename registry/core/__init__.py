"""The core: what every capability stands on, knowing nothing of models, cards or versions.

Owns errors and exit-code families (`errors`), the plug-in tables (`plugins`), the repository
layout (`layout`), git (`git`: the one wrapper, bulk object reads, tags; `repo`: snapshots of the
working tree or a revision, diffs), DVC remotes and pointers (`storage`) and verified copies
between them (`transfer`), SemVer (`semver`), bounded parsing of untrusted files (`bounded`),
untrusted work in a child process with a memory cap and a deadline (`sandbox`), atomic and
link-refusing file writes (`files`), the console (`console`) and what to install when an
optional package is missing (`dependencies`).

May import: nothing else of the registry. Must not import any other subpackage.
"""
