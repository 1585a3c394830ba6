"""Reading a dataset's samples (npz, CSV, image folders) and splitting them, the same way every
time."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from registry.core.errors import UsageError
from registry.training import DATASETS_DIR
from registry.training.files import Dataset, Instance, dataset_path, load_file, require


@dataclass
class Split:
    """The arrays of one split."""

    x: object  # numpy arrays
    y: object


@dataclass
class Splits:
    """Train, validation (possibly empty) and held-out test samples."""

    train: Split
    validation: Split | None
    test: Split


def data_pointer(ds: Dataset) -> str:
    """Repository-relative path of the DVC pointer that tracks a dataset's data."""
    return f"{DATASETS_DIR}/{ds.name}/{ds.path.rstrip('/')}.dvc"


@dataclass
class DatasetData:
    """A dataset some instances train on, and where its data stands in the working tree."""

    name: str
    pointer: str  # datasets/<name>/<path>.dvc
    present: bool  # the data is in the working tree
    instances: list[str]


def instance_datasets(root: Path, instances: list[Instance]) -> list[DatasetData]:
    """The datasets `instances` train on (each once, in the order first used).

    Raises:
        UsageError: a dataset.yaml is missing or invalid (file:line: message), or its data has no
            DVC pointer.
    """
    root = Path(root)
    found: dict[str, DatasetData] = {}
    for inst in instances:
        if inst.dataset in found:
            found[inst.dataset].instances.append(inst.name)
            continue
        path = dataset_path(inst.dataset)
        ds = require(
            load_file(
                (root / path).read_bytes() if (root / path).is_file() else None,
                path,
                Dataset,
                expected_name=inst.dataset,
            )
        )
        pointer = data_pointer(ds)
        if not (root / pointer).is_file():
            raise UsageError(
                f"{pointer} does not exist: the data of dataset '{ds.name}' is not tracked by DVC",
                f"track and push it: dvc add {pointer[:-4]} && dvc push -r staging {pointer}",
            )
        data = root / pointer[:-4]
        present = data.is_dir() and any(data.iterdir()) if ds.path.endswith("/") else data.exists()
        found[ds.name] = DatasetData(ds.name, pointer, present, [inst.name])
    return list(found.values())


def pull_datasets(root: Path, datasets: list[DatasetData], remote: str = "staging") -> None:
    """`dvc pull` the data of `datasets` (and nothing else) from `remote`.

    Raises:
        StorageError: the remote is unreachable or lacks the data.
    """
    from registry.core.storage import dvc_pull

    if datasets:
        names = ", ".join(d.name for d in datasets)
        dvc_pull(
            root,
            [Path(root) / d.pointer for d in datasets],
            remote,
            what=f"the data of dataset{'s' if len(datasets) > 1 else ''} {names}",
        )
    for d in datasets:
        d.present = True


def _missing(root: Path, ds: Dataset, path: Path) -> UsageError:
    rel = path.relative_to(root).as_posix()
    return UsageError(
        f"the data of dataset '{ds.name}' ({rel}) is not in the working tree",
        f"fetch it: dvc pull -r staging {data_pointer(ds)}",
    )


def load_arrays(root: Path, ds: Dataset):
    """All samples of a dataset as (inputs, labels) numpy arrays with the declared shapes and
    dtypes.

    Raises:
        UsageError: the data is missing (with the `dvc pull` to run) or does not fit the schema.
    """
    import numpy as np

    folder = Path(root) / dataset_path(ds.name)
    folder = folder.parent
    path = folder / ds.path
    if not path.exists():
        raise _missing(Path(root), ds, path)
    if ds.format == "npz":
        with np.load(path, allow_pickle=False) as z:
            try:
                x, y = z[ds.input.key or ds.input.name], z[ds.label.key or ds.label.name]
            except KeyError as e:
                raise UsageError(
                    f"{ds.path} has no array {e}; it holds {', '.join(z.files)}",
                    "set input.key / label.key in dataset.yaml",
                ) from None
    elif ds.format == "csv":
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        try:
            x = np.array([[float(r[c]) for c in ds.input.columns] for r in rows])
            y = np.array([[float(r[c]) for c in ds.label.columns] for r in rows])
        except KeyError as e:
            raise UsageError(
                f"{ds.path} has no column {e}", "fix input.columns / label.columns"
            ) from None
        if ds.label.shape == []:
            y = y[:, 0]
    else:
        x, y = _read_images(path, ds)
    x = x.astype(ds.input.dtype)
    if ds.input.scale:
        x = (x * ds.input.scale).astype(ds.input.dtype)
    x = x.reshape(len(x), *ds.input.shape)
    y = y.astype(ds.label.dtype).reshape(len(y), *ds.label.shape)
    return x, y


def _read_images(path: Path, ds: Dataset):
    import numpy as np
    from PIL import Image

    classes = sorted(p.name for p in path.iterdir() if p.is_dir())
    xs, ys = [], []
    channels = ds.input.shape[0] if ds.input.shape else 1
    for label, cls in enumerate(classes):
        for file in sorted((path / cls).iterdir()):
            if file.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
                continue
            with Image.open(file) as im:
                im = im.convert("L" if channels == 1 else "RGB")
                if ds.input.shape and list(im.size) != [ds.input.shape[-1], ds.input.shape[-2]]:
                    im = im.resize((ds.input.shape[-1], ds.input.shape[-2]))
                a = np.asarray(im, dtype=np.float32)
            xs.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
            ys.append(label)
    if not xs:
        raise UsageError(
            f"{ds.path} holds no images", "put PNG/JPEG files in one sub-folder per class"
        )
    return np.stack(xs), np.array(ys)


def split(ds: Dataset, x, y) -> Splits:
    """Split with the dataset's shares and seed (stratified for class labels), always the same way.

    Raises:
        UsageError: a split too small for the classes (see `split_indices`).
    """
    s = ds.splits
    classes = bool(s.stratify and ds.label.classes)
    train, test = split_indices(len(x), s.test, s.seed, y if classes else None, ds.name, "test")
    xtr, ytr = x[train], y[train]
    validation = None
    if s.validation:
        train, held = split_indices(
            len(xtr), s.validation, s.seed, ytr if classes else None, ds.name, "validation"
        )
        validation = Split(xtr[held], ytr[held])
        xtr, ytr = xtr[train], ytr[train]
    return Splits(Split(xtr, ytr), validation, Split(x[test], y[test]))


def split_indices(
    n: int, share: float, seed: int, labels=None, dataset: str = "", part: str = "test"
):
    """(kept, held-out) indices of `n` samples, `share` of them held out: the indices
    scikit-learn's `train_test_split(…, test_size=share, random_state=seed, stratify=labels)`
    picks, computed with numpy alone (importing scikit-learn took as long as importing torch, in
    every training command).

    Raises:
        UsageError: a class with fewer than two samples, or fewer samples on a side than classes.
    """
    import numpy as np

    n_test = math.ceil(share * n)
    n_train = n - n_test
    where = f"dataset '{dataset}': the {part} split"
    if n_train < 1:
        raise UsageError(
            f"{where} ({share:g} of {n} samples) leaves no samples to train on",
            f"lower splits.{part} in datasets/{dataset}/dataset.yaml",
        )
    rng = np.random.RandomState(seed)
    if labels is None:
        order = rng.permutation(n)
        return order[n_test:], order[:n_test]
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        raise UsageError(
            f"{where}: class {classes[counts.argmin()]} has a single sample, which "
            "cannot be on both sides of a stratified split",
            f"add samples of that class, or set splits.stratify: false in "
            f"datasets/{dataset}/dataset.yaml",
        )
    if min(n_train, n_test) < len(classes):
        raise UsageError(
            f"{where} gives {min(n_train, n_test)} samples on one side, fewer than "
            f"the {len(classes)} classes a stratified split puts on each",
            f"change splits.{part} in datasets/{dataset}/dataset.yaml",
        )
    members = np.split(np.argsort(inverse.reshape(-1), kind="stable"), np.cumsum(counts)[:-1])
    train_counts = _approximate_mode(counts, n_train, rng)
    test_counts = _approximate_mode(counts - train_counts, n_test, rng)
    train, test = [], []
    for i in range(len(classes)):
        picked = members[i].take(rng.permutation(counts[i]), mode="clip")
        train.extend(picked[: train_counts[i]])
        test.extend(picked[train_counts[i] : train_counts[i] + test_counts[i]])
    return rng.permutation(train), rng.permutation(test)


def _approximate_mode(counts, draws: int, rng):
    """How many of `draws` samples each class gets, in proportion to `counts` (scikit-learn's
    `_approximate_mode`: remainders are handed out largest first, ties broken by `rng`)."""
    import numpy as np

    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            now = min(len(tied), need)
            floored[rng.choice(tied, size=now, replace=False)] += 1
            need -= now
            if need == 0:
                break
    return floored.astype(int)
