"""Published versions: the tag grammar (GTO's), reading every version from tags in one
git call, withdrawal, `NAME@latest`, the listings of `registry list` and `registry show`, and
one published version's card and files.

Owns `tags` (the one owner of the tag grammar; SemVer order comes from `registry.core.semver`),
`index` (the registry index on `refs/registry/index`: a cache of every published version that the
readers check against the tags), `tag_digest` (the digest of every tag ref, kept between reads
while the files holding the refs do not change), `listing` (`registry list`), `details`
(`registry show`), `plainshow` (`registry show` as text without the card schema, when the index
vouches for the card), and `resolve` (the one path from `NAME@VERSION` to the card at its tag and
its files fetched into a folder, which pull, package and compress take).

May import: `registry.core`, `registry.formats`, `registry.cards`. Must not import any capability
(packaging, compression, publishing, consuming, checks, training, catalog).
"""
