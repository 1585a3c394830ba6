"""The verification gate: numbers per output, failing candidates dropped, no candidate → loud
failure."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from factories import FAST, conv_onnx, mlp_onnx, write_package_source
from registry.core.errors import ConversionError
from registry.packaging.build import build_package
from registry.packaging.converters import Candidate
from registry.packaging.source import source_from_files
from registry.packaging.targets import DEFAULT_THRESHOLDS
from registry.packaging.verify import compare, reference_outputs, sample_inputs, verify_candidate


def _candidate(path, precision="fp32") -> Candidate:
    return Candidate(
        converter=path.stem,
        path=path,
        files=[path],
        format="onnx",
        engine="onnxruntime",
        precision=precision,
        weight_dtype="float32",
        runtime="onnxruntime",
        min_runtime_version="1.12",
    )


def test_a_perturbed_candidate_fails_with_numbers_and_the_true_one_passes(tmp_path):
    source = tmp_path / "source.onnx"
    source.write_bytes(conv_onnx())
    broken = onnx.load(str(source))
    for init in broken.graph.initializer:
        if init.name == "fcw":  # a conversion that mangled one weight tensor
            arr = numpy_helper.to_array(init).copy()
            arr[0] *= -1
            init.CopyFrom(numpy_helper.from_array(arr, "fcw"))
    bad = tmp_path / "broken.onnx"
    onnx.save(broken, str(bad))
    inputs = sample_inputs(source, samples=3, seed=0)
    names, ref = reference_outputs(source, inputs)
    good = verify_candidate(
        _candidate(source), names, ref, inputs, DEFAULT_THRESHOLDS["fp32"], ["CPUExecutionProvider"]
    )
    failed = verify_candidate(
        _candidate(bad), names, ref, inputs, DEFAULT_THRESHOLDS["fp32"], ["CPUExecutionProvider"]
    )
    assert good.passed and good.outputs[0].max_abs == 0.0
    assert not failed.passed and failed.status == "failed"
    out = failed.outputs[0]
    assert out.max_abs > 1e-4 and out.rel_l2 > 1e-4
    assert "max_abs" in failed.summary() and "limit 0.0001" in failed.summary()


def test_a_candidate_that_cannot_run_is_an_error_not_a_pass(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    source = tmp_path / "source.onnx"
    source.write_bytes(mlp_onnx())
    inputs = sample_inputs(source, samples=1, seed=0)
    names, ref = reference_outputs(source, inputs)
    v = verify_candidate(
        _candidate(junk), names, ref, inputs, DEFAULT_THRESHOLDS["fp32"], ["CPUExecutionProvider"]
    )
    assert v.status == "error" and not v.passed and v.message


def test_lossy_conversion_with_tight_thresholds_fails_the_target_loudly(tmp_path):
    targets = """\
      - name: linux-aarch64
        quantize: dynamic
        options:
          thresholds:
            int8: {max_abs: 0.000001, rel_l2: 0.000001}
    """
    model, card = write_package_source(tmp_path / "src", conv_onnx(), targets)
    with pytest.raises(ConversionError) as e:
        build_package(
            source_from_files(model, card), "linux-aarch64", tmp_path / "dist", overrides=FAST
        )
    msg = e.value.message
    assert "no candidate passed verification" in msg and "onnx (int8): failed" in msg
    assert "max_abs" in msg and "cosine" in msg
    assert not (tmp_path / "dist" / "mlp-1.0.0-linux-aarch64.tar.gz").exists()
    # the hint names the card fields to change, with values that accept what was measured
    hint = e.value.hint
    assert "models/mlp/model.yaml" in hint and "targets entry 'linux-aarch64'" in hint
    assert "options: {thresholds: {int8: {max_abs: " in hint and "rel_l2: " in hint
    assert "--list-targets" not in hint and "inputs: samples.npz" in hint
    measured = float(msg.split("rel_l2 ")[1].split(" ")[0])
    assert float(hint.split("rel_l2: ")[1].split("}")[0].split(",")[0]) >= measured


def test_the_hinted_limits_let_the_same_build_pass(tmp_path):
    """Applying the failure hint's values to the card makes the very build pass: the hint is
    the field to change, not a pointer to documentation."""
    import re

    base = """\
      - name: linux-aarch64
        quantize: dynamic
        options:
          thresholds:
            int8: {rel_l2: 0.000001}
    """
    model, card = write_package_source(tmp_path / "src", conv_onnx(), base)
    with pytest.raises(ConversionError) as e:
        build_package(
            source_from_files(model, card), "linux-aarch64", tmp_path / "a", overrides=FAST
        )
    change = re.search(r"thresholds: \{int8: \{([^}]*)\}\}", e.value.hint).group(1)
    assert change.startswith("rel_l2: ")
    model, card = write_package_source(
        tmp_path / "src2", conv_onnx(), base.replace("rel_l2: 0.000001", change)
    )
    result = build_package(
        source_from_files(model, card), "linux-aarch64", tmp_path / "b", overrides=FAST
    )
    assert result.manifest.verified


@pytest.mark.parametrize(
    "override, error",
    [
        ({"int8": {"min_cosine": 0.98}}, "min_cosine 0.98 never decides: rel_l2 <= 0.14"),
        ({"fp32": {"min_cosine": 0.9}}, "raise rel_l2 to"),
        ({"int8": {"cosine": 0.99}}, "unknown option"),
    ],
)
def test_a_cosine_limit_that_cannot_decide_is_refused(override, error):
    from registry.core.errors import UsageError
    from registry.packaging.targets import get_target

    with pytest.raises(UsageError, match=error) as e:
        get_target("linux-x86_64").parse_options({"thresholds": override})
    if "unknown" not in error:
        assert "docs/packaging.md#verification" in e.value.hint and "''" not in e.value.message


def test_packages_built_under_the_earlier_limits_still_open():
    """A manifest's recorded limits are data, not a card: an old `min_cosine` below what its
    rel_l2 guarantees still reads, and still judges."""
    from registry.packaging.targets import Thresholds

    old = Thresholds.model_validate({"max_abs": 0.1, "rel_l2": 0.1, "min_cosine": 0.99})
    assert old.cosine_problem() and compare("y", np.ones(3), np.ones(3), old, "int8").passed


def test_thresholds_are_one_rule_with_the_card_s_names():
    from registry.packaging.targets import get_target

    # a partial override keeps the other defaults; a stricter cosine is accepted and decides
    opts = get_target("linux-x86_64").parse_options(
        {"thresholds": {"int8": {"rel_l2": 0.2, "min_cosine": 0.995}}}
    )
    limits = opts.limits("int8")
    assert (limits.max_abs, limits.rel_l2, limits.min_cosine) == (0.1, 0.2, 0.995)
    # every default cosine guarantee is what rel_l2 implies: int8's is cosine >= 0.99
    assert DEFAULT_THRESHOLDS["int8"].implied_cosine >= 0.99
    assert all(t.min_cosine is None for t in DEFAULT_THRESHOLDS.values())
    ref = np.array([1.0, 0.0, 0.0])
    close = np.array([0.999, 0.04, 0.0])  # rel_l2 0.04, cosine 0.9992
    assert compare("y", ref, close, limits, "int8").passed
    turned = np.array([0.99, 0.14, 0.0])  # rel_l2 0.14: within rel_l2 0.2, cosine 0.99 < 0.995
    assert not compare("y", ref, turned, limits, "int8").passed


def test_one_failing_candidate_is_dropped_and_reported(tmp_path):
    # fp16 fails thresholds fit for fp32; the fp32 fallback passes and is packaged.
    targets = """\
      - name: cuda
        options:
          fp32_fallback: true
          thresholds:
            fp16: {max_abs: 0.0000001, rel_l2: 0.0000001}
    """
    model, card = write_package_source(tmp_path / "src", conv_onnx(), targets)
    result = build_package(
        source_from_files(model, card), "cuda", tmp_path / "dist", overrides=FAST
    )
    by = {v.converter: v for v in result.manifest.verification}
    assert by["onnx-fp16"].status == "failed" and by["onnx-fp16"].outputs[0].rel_l2 > 1e-7
    assert by["onnx"].passed and result.manifest.description.converter == "onnx"


def test_generated_inputs_are_seeded_and_follow_the_signature(tmp_path):
    source = tmp_path / "m.onnx"
    source.write_bytes(conv_onnx())
    a = sample_inputs(source, samples=2, seed=7)
    b = sample_inputs(source, samples=2, seed=7)
    c = sample_inputs(source, samples=2, seed=8)
    assert a[0]["image"].shape == (1, 3, 16, 16) and a[0]["image"].dtype == np.float32
    assert all(np.array_equal(x["image"], y["image"]) for x, y in zip(a, b))
    assert not np.array_equal(a[0]["image"], c[0]["image"])


def test_declared_inputs_from_the_card_are_used(tmp_path):
    import io

    buf = io.BytesIO()
    np.savez(buf, input=np.full((3, 8), 2.0, np.float32))
    targets = "  - name: linux-aarch64\n    inputs: samples.npz\n"
    model, card = write_package_source(
        tmp_path / "src", mlp_onnx(), targets, files={"samples.npz": buf.getvalue()}
    )
    source = source_from_files(model, card)
    declared = sample_inputs(
        model, samples=1, seed=0, declared={"input": np.full((3, 8), 2.0, np.float32)}
    )
    assert len(declared) == 3 and float(declared[0]["input"][0, 0]) == 2.0
    result = build_package(source, "linux-aarch64", tmp_path / "dist", overrides=FAST)
    assert result.manifest.verification[0].passed


def test_integer_outputs_compare_by_agreement():
    limits = DEFAULT_THRESHOLDS["fp32"]
    same = compare("idx", np.array([[1, 2]]), np.array([[1, 2]]), limits, "fp32")
    swapped = compare("idx", np.array([[1, 2]]), np.array([[2, 1]]), limits, "fp32")
    assert same.passed and same.agreement == 1.0
    assert not swapped.passed and swapped.agreement == 0.0


def embedder_onnx(path, vocab: int = 30, dim: int = 4):
    """A tiny transformer-style embedder: input_ids → embedding table, attention_mask and
    token_type_ids (two types) as transformers export them, mean pooling over the mask."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((vocab, dim)).astype(np.float32), "words"),
        numpy_helper.from_array(rng.standard_normal((2, dim)).astype(np.float32), "types"),
    ]
    nodes = [
        helper.make_node("Gather", ["words", "input_ids"], ["w"]),
        helper.make_node("Gather", ["types", "token_type_ids"], ["t"]),
        helper.make_node("Add", ["w", "t"], ["h"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m"], ["m3"], axes=[2]),
        helper.make_node("Mul", ["h", "m3"], ["hm"]),
        helper.make_node("ReduceSum", ["hm"], ["s"], axes=[1], keepdims=0),
        helper.make_node("ReduceSum", ["m3"], ["n"], axes=[1], keepdims=0),
        helper.make_node("Div", ["s", "n"], ["embedding"]),
    ]
    ids = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    graph = helper.make_graph(
        nodes,
        "embedder",
        ids,
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_generated_inputs_are_valid_for_what_each_input_means(tmp_path):
    import onnxruntime as ort

    source = embedder_onnx(tmp_path / "embedder.onnx", vocab=30)
    inputs = sample_inputs(source, samples=20, seed=3)
    session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    for feed in inputs:
        ids, mask, types = feed["input_ids"], feed["attention_mask"], feed["token_type_ids"]
        assert ids.shape == mask.shape == types.shape == (1, 8)  # one sequence length for all
        assert ids.min() >= 0 and ids.max() < 30  # token ids index the vocabulary
        assert set(np.unique(mask)) <= {0, 1} and mask[0, 0] == 1  # padding at the end only
        assert (np.diff(mask[0]) <= 0).all()
        assert not types.any()
        assert np.isfinite(session.run(None, feed)[0]).all()  # a real mask: no 0/0 pooling
    assert len({tuple(f["input_ids"][0]) for f in inputs}) > 1
