"""Model file formats, read safely: weights files (`weights`: the format told by magic bytes,
pickles refused, ONNX loaded with its external data confined; `summary`: what a file holds, as
plain data and text; `onnx_run`: one run of an ONNX model in a sandboxed child; `svg`: the
graph's picture), the ONNX wire format read without onnx's parser (`onnx_wire`) and PyTorch
exported programs (`pt2`: the archive read without unpickling).

May import: `registry.core`. Must not import cards, versions or any capability.
"""
