"""The public catalog: a static web site (and static JSON) of every published model.

This package owns the site: what it knows about each model (`records`), how it reads the registry to
learn it (`collect`, with `registry.cards.plaincard` reading cards in their plain shape without the
YAML parser), the safe Markdown it renders card text with (`markdown`), the metric charts
(`charts`), the pages and the incremental build (`site`) and the local preview server (`serve`).
Templates and static assets ship as package data in `templates/` and `static/`.

It reads the registry only through the registry's reading modules (card, listing, versions,
package_index, storage, graph) and never imports packaging, compression or training: building the
catalog must stay cheap and safe to run after every publish.

May import: `registry.core`, `registry.formats`, `registry.cards`, `registry.versions`,
`registry.publishing` (release notes) and `registry.packaging.index` (package listings only).
Must not import training (its peer), the API or the CLI; a test checks that a build loads no
packaging, compression or training code.
"""

from __future__ import annotations

CATALOG_FORMAT = 1  # the version of the site's JSON (index.json, models/<name>/model.json)
