"""A sentence encoder with the operators of all-MiniLM-L6-v2 (attention mask, token type ids,
mean pooling, L2 norm), random weights, taken through the whole story as a user would: new →
check → publish → package (fp32 and int8, linux-x86_64 and android-arm64) → compress →
unpublish → pull."""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from compress_models import build_sentence_encoder
from factories import run

NAME = "sentence-encoder"


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def merge(reg, branch: str) -> tuple[str, str]:
    """Merge a request branch into main, as a reviewed pull request is; returns (base, head)."""
    base = reg.git("rev-parse", "HEAD")
    reg.git("merge", "-q", "--no-ff", "-m", f"Merge {branch}", branch)
    return base, reg.git("rev-parse", "HEAD")


def ok(proc, *expected: str) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for text in expected:
        assert text in out, f"{text!r} not in:\n{out}"
    return proc.stdout


def test_a_sentence_encoder_from_export_to_compressed_package_and_back(
    registry_repo, origin, tmp_path
):
    reg = registry_repo
    src = build_sentence_encoder(tmp_path / "export")
    onnx_file, pt2_file = src / "model.onnx", src / "model.pt2"

    # new: the card, the config and both DVC-tracked files, pushed to staging
    new = ok(
        reg.registry(
            "new",
            NAME,
            "--weights",
            str(onnx_file),
            "--pytorch",
            str(pt2_file),
            "--config",
            str(src / "config.json"),
            "--task",
            "embedding",
            "--project",
            "search",
            "--source-repo",
            "https://github.com/example/sentence-encoder.git",
            "--license",
            "Apache-2.0",
            "--push",
            "--no-interactive",
            "--format",
            "json",
        )
    )
    assert json.loads(new)["name"] == NAME
    folder = reg.root / "models" / NAME
    for rel in ("model.yaml", "model.onnx.dvc", "model.pt2.dvc", "config.json"):
        assert (folder / rel).is_file(), rel
    card = folder / "model.yaml"
    card.write_text(card.read_text() + "targets:\n  - linux-x86_64\n  - android-arm64\n")
    reg.commit(message=f"add {NAME}")

    # check: the bot's content checks open the ONNX graph and the .pt2 (its `&` mask included)
    ok(reg.registry("check", NAME, "--offline"), f"PASS {NAME}")

    # publish: a request branch, merged, then the publish step tags v1.0.0 with release notes
    ok(reg.registry("publish-request", NAME, "--version", "1.0.0"))
    reg.git("checkout", "-q", "main")
    base, head = merge(reg, f"registry/publish-{NAME}-1.0.0")
    published = json.loads(
        ok(reg.registry("publish", "--base", base, "--head", head, "--format", "json"))
    )
    assert published["models"][0]["action"] == "published"
    assert reg.git("rev-parse", f"{NAME}@v1.0.0^{{commit}}") == head
    assert "First release" in reg.git("tag", "-l", "--format=%(contents)", f"{NAME}@v1.0.0")

    # package: fp32 and int8, for both targets, each verified against the published ONNX
    builds = {}
    for kind, extra in (("fp32", []), ("int8", ["--quantize", "dynamic"])):
        out = tmp_path / "dist" / kind
        proc = reg.registry(
            "package",
            f"{NAME}@1.0.0",
            "-t",
            "linux-x86_64",
            "-t",
            "android-arm64",
            "-o",
            str(out),
            *extra,
            "--format",
            "json",
        )
        builds[kind] = json.loads(ok(proc))
        for target in ("linux-x86_64", "android-arm64"):
            assert (out / f"{NAME}-1.0.0-{target}.tar.gz").is_file(), (kind, target)
    # a real sentence batch (batch 3, 11 tokens: neither the export's shapes) through the packages
    from compress_models import sentence_batch

    batch = sentence_batch(np.random.default_rng(7), 3, 11, 1000)
    np.savez(tmp_path / "batch.npz", **batch)
    import onnxruntime as ort

    reference = ort.InferenceSession(str(onnx_file)).run(None, batch)[0]
    for kind, floor in (("fp32", 0.9999), ("int8", 0.99)):
        for target in ("linux-x86_64", "android-arm64"):
            pkg = tmp_path / "dist" / kind / f"{NAME}-1.0.0-{target}.tar.gz"
            got = tmp_path / f"{kind}-{target}.npy"
            ok(
                reg.registry(
                    "run", str(pkg), "--input", str(tmp_path / "batch.npz"), "-o", str(got)
                )
            )
            out = np.load(got)
            assert out.shape == (3, 32), (kind, target, out.shape)
            assert cosines(out, reference).min() >= floor, (kind, target)
    (tmp_path / "builds.json").write_text(json.dumps(builds))

    # compress the tagged version with evaluation data added in the working tree, not a new version
    reg.write({f"models/{NAME}/eval.npz": (src / "eval.npz").read_bytes()})
    reg.dvc("add", "-q", f"models/{NAME}/eval.npz")
    card.write_text(
        card.read_text()
        + "evaluation:\n  data: eval.npz\n  metric: cosine-to-reference\n  dataset: sentences\n"
    )
    proc = reg.registry(
        "compress",
        f"{NAME}@1.0.0",
        "--max-size",
        "0.5x",
        "--max-drop",
        "1%",
        "--push",
        "--format",
        "json",
        "--report-dir",
        str(tmp_path / "report"),
    )
    report = json.loads(ok(proc))
    assert report["met"], report
    chosen = report["attempts"][report["chosen"]]
    assert chosen["measurement"]["metric"] >= 0.99
    assert chosen["measurement"]["size"] <= 0.5 * report["original"]["size"]
    assert "working tree" in report["evaluation_source"]
    lite = reg.root / "models" / f"{NAME}-lite"
    ok(reg.registry("check", f"{NAME}-lite", "--offline"), f"PASS {NAME}-lite")
    lite_card = (lite / "model.yaml").read_text()
    assert f"derived_from: {NAME}@1.0.0" in lite_card and "pytorch:" not in lite_card
    assert "cosine-to-reference" in lite_card and "sentences" in lite_card

    # unpublish: merged, then publish withdraws the version; gto and the registry agree
    reg.git("checkout", "-q", "--", ".")
    reg.git("clean", "-qfd", f"models/{NAME}-lite")
    ok(reg.registry("unpublish", NAME, "--base", "main"))
    reg.git("checkout", "-q", "main")
    base, head = merge(
        reg, reg.git("for-each-ref", "--format=%(refname:short)", "refs/heads/registry/unpublish-*")
    )
    ok(reg.registry("publish", "--base", base, "--head", head))
    shown = json.loads(ok(reg.registry("show", NAME, "--format", "json")))
    assert shown["versions"][0]["withdrawn"], shown
    gto = os.path.join(os.path.dirname(sys.executable), "gto")
    assert json.loads(run([gto, "show", NAME, "--json"], reg.root).stdout) == []

    # pull: a pinned consumer still gets the exact bytes, with a warning that it was withdrawn
    pulled = reg.registry("pull", f"{NAME}@1.0.0", "-o", str(tmp_path / "pulled"))
    ok(pulled, "withdrawn")
    assert (tmp_path / "pulled" / "model.onnx").read_bytes() == onnx_file.read_bytes()
