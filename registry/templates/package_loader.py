"""Minimal loader of a registry device package (unpacked, not encrypted). Needs numpy and the runtime.

    python loader.py input.npy            # run on one input, print the outputs
    from loader import load; run = load(); outputs = run({"input": array})

It checks every file against manifest.json, refuses a runtime older than the description block's
minimum, and opens the model with the engine setting the manifest names.
"""

import hashlib
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _version(text):
    return tuple(int(re.match(r"\d+", p).group()) for p in text.split("+")[0].split(".")
                 if re.match(r"\d+", p))


def load(folder=HERE):
    """Check the package in `folder` and return a function from named inputs to named outputs."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    for name, digest in manifest["files"].items():
        if not (folder / name).is_file() or hashlib.sha256((folder / name).read_bytes()).hexdigest() != digest:
            raise SystemExit(f"{name} does not match manifest.json: the package was altered")
    block, setting = manifest["description"], manifest["engine"]
    need = block["min_runtime_version"]
    model = folder / manifest["model_file"]
    order = [i["name"] for i in manifest["inputs"]]  # ExecuTorch and Core ML take them by position
    if setting["engine"] == "executorch":
        import torch
        from executorch.runtime import Runtime
        from executorch.version import __version__ as have

        if _version(have) < _version(need):
            raise SystemExit(f"this package needs executorch >= {need}; installed: {have}")
        program = Runtime.get().load_program(model.read_bytes())  # owns the method's memory: keep it
        method = program.load_method("forward")
        return lambda feeds, program=program: dict(zip(manifest["outputs"], [
            t.numpy() for t in method.execute([torch.from_numpy(feeds[n]) for n in order])]))
    if setting["engine"] == "coreml":
        import coremltools as ct

        mlmodel = ct.models.MLModel(str(model))  # macOS only: Core ML itself checks the iOS/macOS release
        spec = mlmodel.get_spec()
        ins = [i.name for i in spec.description.input]
        outs = [o.name for o in spec.description.output]

        def run(feeds):
            result = mlmodel.predict({c: feeds[n] for c, n in zip(ins, order)})
            return dict(zip(manifest["outputs"], [result[o] for o in outs]))

        return run
    if setting["engine"] == "openvino":
        import openvino as ov

        have = ov.__version__.split("-")[0]
        if _version(have) < _version(need):
            raise SystemExit(f"this package needs openvino >= {need}; installed: {have}")
        compiled = ov.Core().compile_model(str(model), "CPU", {"INFERENCE_NUM_THREADS": setting["threads"],
                                                                      "INFERENCE_PRECISION_HINT": "f32"})
        return lambda feeds: {o.get_any_name(): v for o, v in compiled(feeds).items()}
    import onnxruntime as ort

    if _version(ort.__version__) < _version(need):
        raise SystemExit(f"this package needs onnxruntime >= {need}; installed: {ort.__version__}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = setting["threads"]  # 0: all cores
    providers = [p for p in setting["providers"] if p in ort.get_available_providers()] or ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(model), sess_options=so, providers=providers)
    names = [o.name for o in session.get_outputs()]
    return lambda feeds: dict(zip(names, session.run(None, feeds)))


if __name__ == "__main__":
    import numpy as np

    manifest = json.loads((HERE / "manifest.json").read_text())
    first = manifest["inputs"][0]
    array = np.load(sys.argv[1], allow_pickle=False).astype(first["dtype"])
    for key, value in load()({first["name"]: array}).items():
        print(key, value.shape, value.dtype)
        print(value)
