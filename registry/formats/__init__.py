"""Model file formats, read safely: ONNX (`onnx_wire`: the protobuf wire format without
onnx's parser; `graph`: loading, summaries, one bounded run, the SVG picture) and PyTorch
exported programs (`pt2`: the archive read without unpickling).

May import: `registry.core`. Must not import cards, versions or any capability.
"""
