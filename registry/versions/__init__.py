"""Published versions: the tag grammar (GTO's), reading every version from tags in one
git call, withdrawal, `NAME@latest`, and the listings of `registry list` and `registry show`.

Owns `tags` (the one owner of the tag grammar; SemVer order comes from `registry.core.semver`) and
`listing`.

May import: `registry.core`, `registry.formats`, `registry.cards`. Must not import any capability
(packaging, compression, publishing, consuming, checks, training, catalog).
"""
