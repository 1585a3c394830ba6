"""Training in the registry: datasets, layers, structures, algorithms and tasks kept in git.

This package owns everything `registry train` does (SPEC.md §5, DESIGN.md "Training"):

- `files`: the YAML kinds (`datasets/<name>/dataset.yaml`, `training/structures/<name>.yaml`,
  `training/algorithms/<name>.yaml`, `training/<task>/task.yaml`) as pydantic models, their JSON
  Schemas and a loader that keeps line numbers;
- `layers`, `structure`, `algorithms`, `data`: building a network from a structure, the training
  procedures, and reading a dataset;
- `validate` (static, safe to run on a pull request's files) and `sandbox` (dynamic: the one
  forward/backward/export of pull-request code, in a child process with time and memory limits
  and no secrets), plus `picture` (the structure drawn as SVG) and `changes` (what a pull request's
  diff changes: the tasks it affects, or results summaries only);
- `runner` (one instance: epochs, checkpoints, the ONNX and `.pt2` exports (`export`), its metrics
  in DVCLive's layout (`live`) and its curves (`plots`)), `workers` (instances in worker processes
  forked from a server that loaded `preload`, progress, Ctrl-C), `results` and `register` (the best
  instance becomes a model entry through `registry new`'s code path).

It may import `registry.cards.schema`, `registry.cards.scaffold`, `registry.core.storage`,
`registry.core.sandbox` (its sandbox's child process and limits), `registry.formats.svg` (the
picture's drawing), `registry.formats.summary` (the ONNX reader), `registry.formats.pt2` (the
`.pt2` reader, which checks the exported program), `registry.core.repo` (snapshots of a
revision), `registry.core.git` (the diff of a pull request's training files), `registry.checks`
(the `Finding` type), `registry.checks.report` and `registry.checks.github` (text escaping,
annotations), `registry.core.files` (atomic writes) and `registry.core.errors`. It must not import
packaging, compression or the catalog. torch, numpy and Pillow are imported inside the functions
that need them (only the fork server imports `preload`), so `registry --help` and the static
checks stay light.
"""

from __future__ import annotations

DATASETS_DIR = "datasets"
TRAINING_DIR = "training"
LAYERS_DIR = "training/layers"
STRUCTURES_DIR = "training/structures"
ALGORITHMS_DIR = "training/algorithms"
TASK_FILE = "task.yaml"
DATASET_FILE = "dataset.yaml"
RESULTS_DIR = "results"  # training/<task>/results/<instance>/ (ignored by git)
RESULTS_SUMMARY = "results.json"  # training/<task>/results.json: what was trained, committed
# `registry train TASK` shares its first argument with these subcommands (registry/cli/train.py),
# so a task named like one could not be trained: the bot and `registry train` refuse such a name
TRAIN_SUBCOMMANDS = ("run", "register", "results", "check", "datasets", "plan")
