"""Device packages: from a published version to a verified, optionally encrypted archive
per target.

Owns the build (`build`), the package index on a remote (`index`), the conversion targets
(`targets/`), converters (`converters/`) and runtimes (`engines/`), numerical verification
(`verify`), engine benchmarks (`benchmark`), pre/post-processing merged into graphs
(`processing`), quantization, offline graph optimisation (`acceleration`), the package protocol
(`protocol`) and encryption (`encryption`).

May import: `registry.core`, `registry.formats`, `registry.cards`, `registry.versions`. Must not
import compression (its peer), publishing, consuming, checks, training or the catalog.
"""
