"""Device packages: from a published version to a verified, optionally encrypted archive
per target.

Owns what a card asks to build (`plan`), the model a build starts from (`source`), the source
ONNX made ready for conversion (`prepare`), the build (`build`), the package archive and its
manifest (`archive`), running and verifying a package on this machine (`run`), the package index
on a remote (`index`), the conversion targets (`targets/`), converters (`converters/`, each also
owning how its format carries the description block) and runtimes (`engines/`), numerical
verification (`verify`), engine benchmarks (`benchmark`), pre/post-processing merged into graphs
(`processing`), quantization, offline graph optimisation (`acceleration`), the package protocol
(`protocol`) and encryption (`encryption`).

May import: `registry.core`, `registry.formats`, `registry.cards`, `registry.versions`. Must not
import compression (its peer), publishing, consuming, checks, training or the catalog.
"""
