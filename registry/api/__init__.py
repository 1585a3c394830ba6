"""The registry's Python API: one function per command, for tests, workflow scripts and notebooks.

Each function takes ONE typed request (a frozen dataclass naming the repository root it works on,
never the current directory) and returns a typed result; problems are raised as the
`RegistryError` family of `registry.core.errors`, whose classes decide the CLI's exit codes. The
CLI (`registry.cli`) only parses flags into these requests and prints what comes back. Where a
capability already takes one typed request (`registry.compression.chain.CompressRequest`,
`registry.publishing.publish.PublishOptions`…), the API builds or passes it on rather than
repeating its fields.

Modules by command group: `models` (new, check, list, show, pull, schema, sync-artifacts,
codeowners), `lifecycle` (publish-request, unpublish, delete, edit), `publishing` (publish, notes,
verify-tag, gc), `packages` (package, run, verify, push-packages), `compress`, `train`, `catalog`.
Domain modules are imported inside the functions that use them, so that a command loads only what
it needs.

May import: every other subpackage (core, formats, cards, versions, packaging, compression,
publishing, consuming, checks, training, catalog). Must not import the CLI.
"""
