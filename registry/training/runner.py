"""Training one instance: the loop, its metrics (DVCLive's layout), checkpoints, exports, plots
and results.

`train_instance` runs in a worker process (`registry.training.workers`). Everything it writes goes
to `training/<task>/results/<instance>/`:

    model.onnx        the trained network, exported with the algorithm's outputs
    model.pt2         the same network as a torch.export program, when torch.export can capture it
                      (metrics.json says why not otherwise)
    metrics.json      held-out (test split) metrics, epochs run, wall time
    config.yaml       the snapshot of what was trained: dataset, structure, algorithm,
    hyperparameters, commit
    dvclive/          metrics per epoch in DVCLive's format (metrics.json, plots/metrics/*.tsv,
                      params.yaml), written by `registry.training.live` with each checkpoint and
                      at the end
    plots/*.png       loss and metric curves (`registry.training.plots`)
    train.log         one line per epoch
    checkpoint.pt     model, optimiser and random state after an epoch, written when 2 s of training
    have
                      passed since the last one (a re-run resumes there)
    status.json       written when the instance is done, with the config hash (a re-run of a
                      finished instance is skipped)

Runs are deterministic: the seed sets the initial weights and the shuffling, the shuffling
generator's state is checkpointed, and the worker uses a fixed number of threads.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from registry.core.errors import RegistryError, UsageError
from registry.core.files import atomic_path, write_atomic
from registry.training import RESULTS_DIR, TRAINING_DIR
from registry.training.files import (
    Algorithm,
    Dataset,
    Instance,
    Structure,
    algorithm_path,
    dataset_path,
    load_file,
    require,
    structure_path,
)
from registry.training.live import LiveFiles

Events = Callable[[dict], None]
PROGRESS_EVERY_S = 0.5  # at most two progress events a second per instance
CHECKPOINT_EVERY_S = 2.0  # a checkpoint after an epoch when this long has passed since the last one
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's: the same text, faster


class TrainingFailed(RegistryError):
    """An instance could not finish (NaN loss, out of memory, an error in its code)."""

    exit_code = 8


def results_dir(root: Path, task: str, instance: str) -> Path:
    """Where an instance's results go."""
    return Path(root) / TRAINING_DIR / task / RESULTS_DIR / instance


@dataclass
class Prepared:
    """An instance's files read and combined."""

    dataset: Dataset
    structure: Structure
    algorithm: Algorithm
    params: dict[str, Any]
    config: dict[str, Any]
    config_hash: str


def _git_commit(root: Path) -> str | None:
    """The commit checked out at `root`; None outside a git clone (or one with no commit yet)."""
    from registry.core.git import run_git

    try:
        return (
            run_git(
                root, "rev-parse", "--verify", "--quiet", "HEAD", check=False, timeout=10
            ).strip()
            or None
        )
    except (OSError, RegistryError):
        return None


def _data_md5(root: Path, ds: Dataset) -> str | None:
    from registry.training.data import data_pointer

    pointer = Path(root) / data_pointer(ds)
    if not pointer.is_file():
        return None
    from registry.core.storage import parse_pointer

    try:
        return parse_pointer(pointer.read_text()).md5
    except Exception:  # noqa: BLE001 - a pointer DVC would refuse: no hash in the snapshot
        return None


def prepare(root: Path, task: str, inst: Instance) -> Prepared:
    """Read the instance's dataset, structure and algorithm; apply its hyperparameters.

    Raises:
        UsageError: a file is missing or invalid (file:line: message).
    """
    from registry.training.algorithms import apply_hyperparameters

    root = Path(root)

    def read(path: str, kind, name: str):
        return require(
            load_file(
                (root / path).read_bytes() if (root / path).is_file() else None,
                path,
                kind,
                expected_name=name,
            )
        )

    ds = read(dataset_path(inst.dataset), Dataset, inst.dataset)
    structure = read(structure_path(inst.structure), Structure, inst.structure)
    algo, params = apply_hyperparameters(
        read(algorithm_path(inst.algorithm), Algorithm, inst.algorithm), inst.hyperparameters
    )
    unknown = [k for k in params if k not in structure.params]
    if unknown:
        raise UsageError(
            f"instance '{inst.name}': hyperparameter '{unknown[0]}' is neither an algorithm "
            f"setting "
            f"nor a parameter of structure '{structure.name}'",
            "run `registry train check`",
        )
    params = {**structure.params, **params}
    config = {
        "task": task,
        "instance": inst.name,
        "dataset": {"name": ds.name, "md5": _data_md5(root, ds), "splits": ds.splits.model_dump()},
        "structure": structure.model_dump(mode="json", exclude_none=True),
        "params": params,
        "algorithm": algo.model_dump(mode="json", exclude_none=True),
        "hyperparameters": inst.hyperparameters,
    }
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]
    config["source_commit"] = _git_commit(root)
    return Prepared(ds, structure, algo, params, config, digest)


def _custom_layers(root: Path, structure: Structure) -> dict[str, tuple]:
    from registry.training.layers import custom_layer_path, load_custom_layer

    return {
        s.type: load_custom_layer(root, s.type)
        for s in structure.layers
        if (Path(root) / custom_layer_path(s.type)).is_file()
    }


def train_instance(
    root: Path,
    task: str,
    inst: Instance,
    *,
    device: str = "cpu",
    threads: int = 1,
    events: Events = lambda e: None,
) -> dict:
    """Train one instance to the end (or resume it); return its held-out metrics.

    Raises:
        UsageError: invalid files or data missing. TrainingFailed: NaN loss, out of memory, a code
        error.
    """
    import numpy as np
    import torch

    from registry.training.algorithms import load_procedure, make_optimizer, make_schedule
    from registry.training.data import load_arrays, split
    from registry.training.export import export_onnx
    from registry.training.plots import plot_curves
    from registry.training.structure import build_network

    root = Path(root)
    prep = prepare(root, task, inst)
    out = results_dir(root, task, inst.name)
    out.mkdir(parents=True, exist_ok=True)
    status_path = out / "status.json"
    if status_path.is_file():
        status = json.loads(status_path.read_text())
        if status.get("state") == "done" and status.get("config_hash") == prep.config_hash:
            events({"event": "skipped", "reason": "already trained with this config", **status})
            return status["metrics"]
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            "--device cuda: torch sees no CUDA device here",
            "use --device cpu, or a machine with a GPU",
        )
    torch.set_num_threads(max(1, threads))
    algo, ds = prep.algorithm, prep.dataset
    write_atomic(
        out / "config.yaml",
        yaml.dump(
            {**prep.config, "config_hash": prep.config_hash}, Dumper=_YAML_DUMPER, sort_keys=False
        ),
    )
    x, y = load_arrays(root, ds)
    parts = split(ds, x, y)
    dev = torch.device(device)

    def tensors(s):
        return torch.from_numpy(np.ascontiguousarray(s.x)).to(dev), torch.from_numpy(
            np.ascontiguousarray(s.y)
        ).to(dev)

    xtr, ytr = tensors(parts.train)
    xte, yte = tensors(parts.test)
    xva, yva = tensors(parts.validation) if parts.validation is not None else (None, None)
    torch.manual_seed(algo.seed)
    np.random.seed(algo.seed)
    procedure = load_procedure(algo, root)
    from registry.training.structure import LayerProblem

    try:
        net = build_network(prep.structure, prep.params, _custom_layers(root, prep.structure)).to(
            dev
        )
    except LayerProblem as p:
        raise TrainingFailed(
            f"structure '{prep.structure.name}': {p.message}",
            p.hint or "run `registry train check` for every problem",
        ) from None
    optimizer = make_optimizer(algo, net.parameters())
    schedule = make_schedule(algo, optimizer)
    gen = torch.Generator().manual_seed(algo.seed)
    history: list[dict] = []
    start_epoch = 0
    best = {"value": None, "epoch": None, "state": None, "waited": 0}
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=dev, weights_only=True)
        if ckpt.get("config_hash") == prep.config_hash:
            net.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            if schedule is not None and ckpt.get("schedule"):
                schedule.load_state_dict(ckpt["schedule"])
            gen.set_state(ckpt["generator"])
            torch.set_rng_state(ckpt["torch_rng"])
            history = list(ckpt["history"])
            start_epoch = int(ckpt["epoch"])
            best.update(ckpt.get("best") or {})
    log = open(out / "train.log", "a", encoding="utf-8")  # noqa: SIM115 - closed in the finally below
    live = LiveFiles(out / "dvclive", resume_at=start_epoch)  # one row per finished epoch
    if start_epoch == 0:
        live.log_params(
            {
                "task": task,
                "instance": inst.name,
                "dataset": ds.name,
                "structure": prep.structure.name,
                "algorithm": algo.name,
                **{k: v for k, v in prep.params.items()},
                "epochs": algo.epochs,
                "batch_size": algo.batch_size,
                "learning_rate": algo.optimizer.learning_rate,
                "seed": algo.seed,
            }
        )
    primary = procedure.metric_names[0]
    n = len(xtr)
    steps = math.ceil(n / algo.batch_size)
    started = time.monotonic()
    events(
        {
            "event": "start",
            "epoch": start_epoch,
            "epochs": algo.epochs,
            "steps": steps,
            "resumed": start_epoch > 0,
        }
    )
    log.write(
        f"{'resumed at' if start_epoch else 'started'} epoch {start_epoch + 1}/{algo.epochs}, "
        f"config {prep.config_hash}\n"
    )
    last_event = 0.0
    last_checkpoint = time.monotonic()
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, algo.epochs):
            net.train()
            order = torch.randperm(n, generator=gen).to(dev)
            total, count = 0.0, 0
            seen: list[dict] = []  # the epoch's outputs: training metrics at no extra forward pass
            for step in range(steps):
                first = step * algo.batch_size
                size = min(algo.batch_size, n - first)
                idx = order[first : first + size]
                xb, yb = xtr[idx], ytr[idx]
                optimizer.zero_grad()
                outputs = net(xb)
                loss = procedure.loss(outputs, xb, yb)
                seen.append({k: v.detach() for k, v in outputs.items()})
                loss.backward()
                optimizer.step()
                value = loss.item()
                if not math.isfinite(value):
                    raise TrainingFailed(
                        f"the loss became {value} at epoch {epoch + 1}, step {step + 1}",
                        "lower the learning rate, or check the loss and the data",
                    )
                total += value * size
                count += size
                now = time.monotonic()
                if now - last_event >= PROGRESS_EVERY_S:
                    last_event = now
                    done = (epoch - start_epoch) * steps + step + 1
                    left = (algo.epochs - start_epoch) * steps - done
                    events(
                        {
                            "event": "progress",
                            "epoch": epoch + 1,
                            "epochs": algo.epochs,
                            "step": step + 1,
                            "steps": steps,
                            "loss": total / count,
                            "eta_s": (now - started) / done * left,
                        }
                    )
            if schedule is not None:
                schedule.step()
            with torch.no_grad():
                epoch_out = {k: torch.cat([b[k] for b in seen]) for k in seen[0]}
                train_metrics = procedure.evaluate(epoch_out, xtr[order], ytr[order])
            val_metrics = (
                _evaluate(net, procedure, xva, yva, None, with_loss=True) if xva is not None else {}
            )
            row = {
                "epoch": epoch + 1,
                "loss": total / count,
                **{f"train_{k}": v for k, v in train_metrics.items()},
                **{f"validation_{k}": v for k, v in val_metrics.items()},
            }
            history.append(row)
            live.log_epoch(
                {
                    "train/loss": row["loss"],
                    **{f"train/{k}": v for k, v in train_metrics.items()},
                    **{f"validation/{k}": v for k, v in val_metrics.items()},
                }
            )
            stop = _early_stop(algo, best, val_metrics, row, xva is not None, net, epoch)
            if (
                time.monotonic() - last_checkpoint >= CHECKPOINT_EVERY_S
                and epoch + 1 < algo.epochs
                and not stop
            ):
                checkpoint = {
                    "config_hash": prep.config_hash,
                    "epoch": epoch + 1,
                    "model": net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict() if schedule else None,
                    "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": history,
                    "best": {k: v for k, v in best.items()},
                }
                live.flush()  # the rows up to this checkpoint; a resumed run continues after them
                with atomic_path(ckpt_path) as tmp:
                    torch.save(checkpoint, tmp)
                last_checkpoint = time.monotonic()
                events({"event": "checkpoint", "epoch": epoch + 1})
            elapsed = time.monotonic() - started
            eta = elapsed / (epoch + 1 - start_epoch) * (algo.epochs - epoch - 1)
            shown = val_metrics or train_metrics
            events(
                {
                    "event": "epoch",
                    "epoch": epoch + 1,
                    "epochs": algo.epochs,
                    "step": steps,
                    "steps": steps,
                    "loss": row["loss"],
                    "metric": dict(shown),
                    "eta_s": eta,
                }
            )
            log.write(
                f"epoch {epoch + 1}/{algo.epochs} loss {row['loss']:.5f} "
                + " ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("epoch", "loss"))
                + "\n"
            )
            log.flush()
            if stop:
                log.write(f"early stopping after epoch {epoch + 1} (best epoch {best['epoch']})\n")
                break
        if best.get("state") is not None:
            net.load_state_dict(best["state"])
        reference = (xtr, ytr) if procedure.compares_with_training else None
        test = _evaluate(net, procedure, xte, yte, reference)
        test = {k: round(v, 6) for k, v in test.items()}
        live.finish(test)
    except (RuntimeError, MemoryError) as e:
        text = str(e)
        if isinstance(e, MemoryError) or "out of memory" in text or "can't allocate memory" in text:
            raise TrainingFailed(
                f"out of memory at epoch {epoch + 1}", "lower batch_size or the layer sizes"
            ) from None
        raise
    finally:
        live.flush()  # the epochs a failed run finished, as they were
        log.close()
    net.cpu().eval()
    export_onnx(net, procedure, prep.structure, ds, xte[:1].cpu(), out / "model.onnx")
    pytorch = _export_program(net, procedure, prep.structure, xte[:1].cpu(), out / "model.pt2")
    wall = time.monotonic() - started
    summary = {
        "instance": inst.name,
        "metrics": test,
        "metric": primary,
        "dataset": f"{ds.name}-test",
        "higher_is_better": procedure.higher_is_better,
        "epochs_run": len(history),
        "train_seconds": round(wall, 3),
        **pytorch,
    }
    write_atomic(out / "metrics.json", json.dumps(summary, indent=2) + "\n")
    plot_curves(history, out / "plots")
    write_atomic(
        status_path,
        json.dumps(
            {
                "state": "done",
                "config_hash": prep.config_hash,
                "metrics": test,
                "metric": primary,
                "epochs_run": len(history),
                "train_seconds": round(wall, 3),
                **pytorch,
            },
            indent=2,
        )
        + "\n",
    )
    ckpt_path.unlink(missing_ok=True)
    events({"event": "done", "metrics": test, "metric": primary, "train_seconds": round(wall, 3)})
    return test


def _export_program(net, procedure, structure, example, path: Path) -> dict:
    """Export the `.pt2` beside the ONNX model; it is optional, so a network torch.export cannot
    capture, or a program the registry's reader would refuse, leaves a note instead.

    Returns:
        {"pytorch": "model.pt2"}, or {"pytorch": None, "pytorch_note": why}.
    """
    from registry.core.errors import ModelFormatError
    from registry.formats.pt2 import inspect_pt2
    from registry.training.export import export_pt2

    try:
        export_pt2(net, procedure, structure, example, path)
        inspect_pt2(path, path.name)
    except ModelFormatError as e:
        why = e.message
    except Exception as e:  # noqa: BLE001 - torch.export raises many types for what it cannot trace
        text = str(e).strip().splitlines()
        why = f"torch.export failed: {type(e).__name__}: {text[0][:300] if text else ''}"
    else:
        return {"pytorch": path.name}
    path.unlink(missing_ok=True)
    return {"pytorch": None, "pytorch_note": f"no {path.name} ({why}); the ONNX model is complete"}


def _evaluate(net, procedure, x, y, train, with_loss: bool = False) -> dict[str, float]:
    import torch

    net.eval()
    with torch.no_grad():
        outputs = net(x)
        reference = (net(train[0]), train[0], train[1]) if train is not None else None
        metrics = procedure.evaluate(outputs, x, y, reference)
        if with_loss:
            metrics["loss"] = float(procedure.loss(outputs, x, y))
    return metrics


def _early_stop(
    algo: Algorithm, best: dict, metrics: dict, row: dict, has_validation: bool, net, epoch: int
) -> bool:
    """Track the best epoch on the validation split; True when patience has run out."""
    rule = algo.early_stopping
    if rule is None or not has_validation:
        return False
    from registry.training.algorithms import metric_direction

    value = metrics.get(rule.metric)  # on the validation split ("loss" included)
    if value is None:
        return False
    higher = metric_direction(rule.metric)
    better = (
        best["value"] is None
        or ((value - best["value"]) if higher else (best["value"] - value)) > rule.min_delta
    )
    if better:
        best.update(
            value=value,
            epoch=epoch + 1,
            waited=0,
            state={k: v.detach().clone() for k, v in net.state_dict().items()},
        )
        return False
    best["waited"] = best.get("waited", 0) + 1
    return best["waited"] >= rule.patience
