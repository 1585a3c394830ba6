"""Lightweighting with automatic fallback: `registry compress` tries methods, cheapest
first, until one meets the card's size / metric / latency target.

Owns the chain (`chain`), the job a method works on with its target and measurements (`job`),
evaluation of a candidate on the card's data (`evaluation`), ONNX file compaction (`onnx_files`)
and the methods (`methods/`, one plug-in each).

May import: `registry.core`, `registry.formats`, `registry.cards`, `registry.versions`. Must not
import packaging (its peer), publishing, consuming, checks, training or the catalog.
"""
