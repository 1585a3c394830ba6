"""Consumers fetching an exact version: `registry pull NAME@VERSION` (weights or a device
package), verified, written atomically.

May import: `registry.core`, `registry.formats`, `registry.cards`, `registry.versions`,
`registry.packaging` (the package index). Must not import publishing (its peer), checks, training
or the catalog.
"""
