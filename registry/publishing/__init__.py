"""What a merge does: publish (staging → public, version tags, GTO deregistration),
release notes from the diff (`notes`), CHANGELOG files (`changelog`), the lifecycle requests that
open pull requests (`lifecycle_ops`) and garbage collection of remote objects (`gc`).

May import: `registry.core`, `registry.formats`, `registry.cards`, `registry.versions`,
`registry.packaging` (package indexes, for gc). Must not import consuming (its peer), checks,
training or the catalog.
"""
