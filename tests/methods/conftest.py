"""Helpers for the method tests: a prepared compression job on a real model."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from registry.cards.schema import load_card
from registry.compression.chain import CompressRequest, prepare_job
from registry.compression.methods import build_method
from registry.compression.onnx_files import compact_model


def job_for(folder: Path, tmp_path: Path, **target):
    card = load_card((folder / "model.yaml").read_bytes()).card
    return prepare_job(
        CompressRequest(
            card=card,
            model_path=folder / "model.onnx",
            model_dir=folder,
            report_dir=tmp_path / "report",
            **target,
        )
    )


def run_method(name: str, job, tmp_path: Path, **options):
    """Run one method as the chain does; return (candidate, its loaded ONNX model, its metric)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    cand = build_method(name, options).run(job, tmp_path, lambda fraction, text: None)
    compact_model(cand.path)
    return cand, onnx.load(str(cand.path)), job.metric_of(cand.path)


@pytest.fixture
def digits_job(digits_cnn, tmp_path):
    return job_for(digits_cnn, tmp_path, max_metric_drop="0.03")
