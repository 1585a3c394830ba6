"""`registry compress`: the fallback chain on a real digits CNN, its result, report, and bad
input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper

from registry.cards.schema import load_card
from registry.compression.chain import CompressRequest, compress, render_table
from registry.core.errors import CompressionError


def request_for(folder: Path, tmp_path: Path, **kw) -> CompressRequest:
    card = load_card((folder / "model.yaml").read_bytes()).card
    return CompressRequest(
        card=card,
        model_path=folder / "model.onnx",
        model_dir=folder,
        output_root=tmp_path / "models",
        report_dir=tmp_path / "report",
        **kw,
    )


def copy_model(src: Path, tmp_path: Path, card_edit=None) -> Path:
    dest = tmp_path / "src"
    shutil.copytree(src, dest)
    if card_edit:
        data = yaml.safe_load((dest / "model.yaml").read_text())
        card_edit(data)
        (dest / "model.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


def test_dynamic_int8_meets_a_loose_target(digits_cnn, tmp_path):
    size = (digits_cnn / "model.onnx").stat().st_size
    report = compress(
        request_for(digits_cnn, tmp_path, max_size=str(int(size * 0.45)), max_metric_drop="0.01")
    )
    assert report.met and report.attempts[report.chosen].method == "dynamic-int8"
    assert len(report.attempts) == 1  # the chain stops at the first result
    out = Path(report.output)
    assert out == tmp_path / "models" / "digits-cnn-lite"
    card = load_card((out / "model.yaml").read_bytes()).card
    assert card.derived_from == "digits-cnn@1.0.0"
    assert (
        card.compress.methods == ["dynamic-int8"]
        and "per_channel" in card.compress.options["dynamic-int8"]
    )
    assert card.size == (out / "model.onnx").stat().st_size < size * 0.45
    assert (out / "eval.npz").is_file() and (out / "config.yaml").is_file()
    assert Path(report.chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(Path(report.report_json).read_text())
    assert saved["met"] is True and saved["attempts"][0]["measurement"]["size"] == card.size
    assert "<- result" in render_table(report)


def test_the_derived_card_claims_only_what_was_measured_on_it(digits_cnn, tmp_path):
    def edit(card):
        card["metrics"].append({"name": "f1", "value": 0.97, "dataset": "digits-field-test"})
        card["pytorch"] = "model.pt2"

    src = copy_model(digits_cnn, tmp_path, edit)
    (src / "model.pt2").write_bytes(b"a .pt2 of the original, not of the compressed model")
    report = compress(request_for(src, tmp_path, max_metric_drop="0.01"))
    card = load_card((Path(report.output) / "model.yaml").read_bytes()).card
    measured = report.attempts[report.chosen].measurement.metric
    assert [(m.name, m.dataset, m.value) for m in card.metrics] == [
        ("accuracy", "digits-eval", round(measured, 6))
    ]
    assert card.pytorch is None and not (Path(report.output) / "model.pt2").exists()


def test_tighter_target_falls_back_to_a_later_method(digits_cnn, tmp_path):
    size = (digits_cnn / "model.onnx").stat().st_size
    report = compress(
        request_for(
            digits_cnn,
            tmp_path,
            max_size=str(int(size * 0.2)),
            max_metric_drop="0.03",
            output_name="digits-small",
        )
    )
    assert report.met
    methods = [a.method for a in report.attempts]
    assert methods[:4] == ["dynamic-int8", "static-int8", "fp16", "mixed-precision"]
    assert all(a.status == "fail" and "size" in a.reason for a in report.attempts[:4])
    chosen = report.attempts[report.chosen]
    assert chosen.method in ("prune", "distill", "train-small")
    assert chosen.measurement.size <= size * 0.2 and chosen.measurement.drop <= 0.03
    assert (
        tmp_path / "models" / "digits-small" / "model.onnx"
    ).stat().st_size == chosen.measurement.size


def test_search_best_keeps_the_smallest_passing(digits_cnn, tmp_path):
    report = compress(
        request_for(
            digits_cnn,
            tmp_path,
            max_metric_drop="5%",
            search="best",
            methods=["dynamic-int8", "fp16", "train-small"],
        )
    )
    assert [a.status for a in report.attempts] == ["pass", "pass", "pass"]
    sizes = [a.measurement.size for a in report.attempts]
    assert report.attempts[report.chosen].measurement.size == min(sizes)


def test_unreachable_target_fails_honestly_and_keeps_best_so_far(digits_cnn, tmp_path):
    src = copy_model(digits_cnn, tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "registry",
            "compress",
            "--model",
            str(src / "model.onnx"),
            "--card",
            str(src / "model.yaml"),
            "--max-size",
            "15KB",
            "--max-drop",
            "0",
            "--methods",
            "dynamic-int8,fp16",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert "target not met by any method; closest: max_size: missed by" in proc.stdout
    assert (tmp_path / "report" / "digits-cnn-best-so-far.onnx").is_file()
    saved = json.loads((tmp_path / "report" / "digits-cnn-compress.json").read_text())
    assert (
        saved["met"] is False
        and saved["best_so_far"] == 0
        and saved["closest"].startswith("max_size")
    )
    assert not (tmp_path / "report" / "digits-cnn-lite").exists()


def test_unknown_metric_name(digits_cnn, tmp_path):
    src = copy_model(digits_cnn, tmp_path, lambda d: d["evaluation"].update(metric="acuracy"))
    loaded = load_card((src / "model.yaml").read_bytes())
    assert loaded.card is None
    assert "unknown metric 'acuracy'; did you mean 'accuracy'?" in loaded.findings[0].message
    with pytest.raises(CompressionError, match="unknown metric 'top5'"):
        compress(request_for(digits_cnn, tmp_path, metric="top5", max_metric_drop="0.01"))


def test_evaluation_data_missing(digits_cnn, tmp_path):
    src = copy_model(digits_cnn, tmp_path)
    (src / "eval.npz").unlink()
    with pytest.raises(CompressionError, match=r"evaluation set .*eval.npz is missing"):
        compress(request_for(src, tmp_path, max_metric_drop="0.01"))


def test_evaluation_data_with_the_wrong_shape(digits_cnn, tmp_path):
    src = copy_model(digits_cnn, tmp_path)
    with np.load(src / "eval.npz") as z:
        np.savez(
            src / "eval.npz", inputs=z["inputs"].reshape(len(z["inputs"]), 64), labels=z["labels"]
        )
    with pytest.raises(
        CompressionError, match=r"has shape \(497, 64\), the model wants \(N, 1, 8, 8\)"
    ):
        compress(request_for(src, tmp_path, max_metric_drop="0.01"))


def test_contradictory_target_below_any_encoding(digits_cnn, tmp_path):
    with pytest.raises(
        CompressionError, match="contradictory target: max_size 100 B is below the smallest"
    ):
        compress(request_for(digits_cnn, tmp_path, max_size="100"))


def test_unknown_method_name(digits_cnn, tmp_path):
    with pytest.raises(CompressionError, match="no compression method named 'dynamic-int9'") as e:
        compress(
            request_for(digits_cnn, tmp_path, max_metric_drop="0.01", methods=["dynamic-int9"])
        )
    assert "did you mean 'dynamic-int8'" in e.value.hint


def test_invalid_method_settings_stop_the_run(digits_cnn, tmp_path):
    src = copy_model(
        digits_cnn,
        tmp_path,
        lambda d: d["compress"].update(options={"prune": {"amount": 0.5}}, methods=["prune"]),
    )
    with pytest.raises(
        CompressionError, match="invalid settings for method 'prune': amount: Extra inputs"
    ):
        compress(request_for(src, tmp_path, max_metric_drop="0.01"))


def test_bad_output_name_stops_before_any_work(digits_cnn, tmp_path):
    from registry.core.errors import UsageError

    with pytest.raises(UsageError, match="'../escape' is not a model name"):
        compress(request_for(digits_cnn, tmp_path, max_metric_drop="0.01", output_name="../escape"))
    assert not (tmp_path / "report").exists()


def test_model_without_float_weights(digits_cnn, tmp_path):
    src = copy_model(digits_cnn, tmp_path)
    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["probabilities"])],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 1, 8, 8])],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
        str(src / "model.onnx"),
    )
    with pytest.raises(CompressionError, match="no float weights to compress"):
        compress(request_for(src, tmp_path, max_metric_drop="0.01"))


def test_no_target(digits_cnn, tmp_path):
    with pytest.raises(CompressionError, match="no target"):
        compress(request_for(digits_cnn, tmp_path))


def test_unknown_card_key_suggests_the_nearest(digits_cnn, tmp_path):
    src = copy_model(digits_cnn, tmp_path, lambda d: d["compress"].update(max_sise="20KB"))
    finding = load_card((src / "model.yaml").read_bytes()).findings[0]
    assert (
        finding.message == "unknown field 'compress.max_sise'"
        and finding.hint == "did you mean 'max_size'?"
    )


def test_latency_condition_is_measured(digits_cnn, tmp_path):
    met = compress(request_for(digits_cnn, tmp_path, max_latency="1000ms", methods=["fp16"]))
    assert met.met and met.attempts[0].conditions[0].name == "latency"
    assert 0 < met.attempts[0].measurement.latency_ms < 1000
    missed = compress(
        request_for(digits_cnn, tmp_path / "2", max_latency="0.000001", methods=["fp16"])
    )
    assert not missed.met and missed.closest.startswith("max_latency: missed by")


def test_cli_json_report_and_method_list(digits_cnn, tmp_path):
    from click.testing import CliRunner

    from registry.cli import cli

    runner = CliRunner()
    listed = runner.invoke(cli, ["compress", "--list-methods"])
    assert listed.exit_code == 0 and "mixed-precision  (cost 40)" in listed.output
    assert (
        "max_float_fraction = 0.5: largest share of weighted nodes kept in float" in listed.output
    )
    result = runner.invoke(
        cli,
        [
            "compress",
            "--model",
            str(digits_cnn / "model.onnx"),
            "--card",
            str(digits_cnn / "model.yaml"),
            "--max-drop",
            "1%",
            "--methods",
            "fp16",
            "--format",
            "json",
            "--report-dir",
            str(tmp_path / "r"),
            "--output-dir",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["met"] and data["output"] == str(tmp_path / "m" / "digits-cnn-lite")
    for param in cli.commands["compress"].params:
        assert param.help or param.name == "ref", param.name


def test_cli_sets_a_methods_settings_over_the_card(digits_cnn, tmp_path, capsys):
    from factories import registry_cli

    def run(*options):
        args = ["compress", "--model", str(digits_cnn / "model.onnx"), "--card"]
        args += [str(digits_cnn / "model.yaml"), "--max-drop", "5%", "--methods", "dynamic-int8"]
        args += ["--format", "json", "--report-dir", str(tmp_path / "r")]
        args += [*options, "--output-dir", str(tmp_path / "m")]
        return registry_cli(tmp_path, *args, capsys=capsys)

    code, out, err = run(
        "--option", "dynamic-int8.per_channel=false", "--option", "dynamic-int8.reduce_range=true"
    )
    assert code == 0, err
    settings = json.loads(out)["attempts"][0]["settings"]
    assert (settings["per_channel"], settings["reduce_range"]) == (False, True)
    code, _, err = run("--option", "per_channel=false")
    assert code == 2 and "does not name a method: write METHOD.KEY=VALUE" in err
    code, _, err = run("--option", "dynamic-int8.per_chanel=false")
    assert code == 7 and "per_chanel" in err


def test_dynamic_int8_is_per_channel_by_default_as_packaging_is():
    from registry.compression.methods.dynamic_int8 import DynamicInt8Config
    from registry.packaging.targets import TargetOptions

    assert DynamicInt8Config().per_channel is True
    assert TargetOptions.model_fields["per_channel"].default is True


def test_labels_missing_for_a_label_metric(digits_cnn, tmp_path):
    src = copy_model(digits_cnn, tmp_path)
    with np.load(src / "eval.npz") as z:
        np.savez(src / "eval.npz", inputs=z["inputs"])
    with pytest.raises(
        CompressionError, match="has no 'labels' array, which metric 'accuracy' needs"
    ):
        compress(request_for(src, tmp_path, max_metric_drop="0.01"))


def test_static_int8_calibrates_on_the_cards_calibration_set(digits_cnn, tmp_path):
    from registry.compression.chain import prepare_job

    src = copy_model(
        digits_cnn, tmp_path, lambda d: d["compress"].update(calibration_data="train.npz")
    )
    job = prepare_job(request_for(src, tmp_path, max_metric_drop="0.01"))
    assert job.calibration_data.path.endswith("train.npz") and len(job.calibration_data) == 1300
    report = compress(request_for(src, tmp_path, max_metric_drop="0.01", methods=["static-int8"]))
    assert report.met and report.attempts[0].settings["calibration"] == "minmax"


def test_max_size_as_a_share_of_the_original(digits_cnn, tmp_path):
    size = (digits_cnn / "model.onnx").stat().st_size
    report = compress(request_for(digits_cnn, tmp_path, max_size="0.45x", max_metric_drop="0.01"))
    assert report.target.max_size == int(0.45 * size)
    assert report.met and report.attempts[report.chosen].measurement.size <= 0.45 * size
    with pytest.raises(CompressionError, match="'0x' is no share of the original"):
        compress(request_for(digits_cnn, tmp_path / "zero", max_size="0x"))
    bad = copy_model(digits_cnn, tmp_path, lambda d: d["compress"].update(max_size="0.3y"))
    with pytest.raises(Exception, match="'0.3y' is not a size"):
        load_card((bad / "model.yaml").read_bytes()).require()
