"""Reading a dataset's samples (npz, CSV, image folders) and splitting them, the same way every
time."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from registry.core.errors import UsageError
from registry.training.files import Dataset, dataset_path


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


def _missing(root: Path, ds: Dataset, path: Path) -> UsageError:
    rel = path.relative_to(root).as_posix()
    return UsageError(
        f"the data of dataset '{ds.name}' ({rel}) is not in the working tree",
        f"fetch it: dvc pull -r staging {rel}.dvc",
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
    """Split with the dataset's shares and seed (stratified for class labels), always the same
    way."""
    from sklearn.model_selection import train_test_split

    s = ds.splits
    strat = y if s.stratify and ds.label.classes else None
    xtr, xte, ytr, yte = train_test_split(
        x, y, test_size=s.test, random_state=s.seed, stratify=strat
    )
    validation = None
    if s.validation:
        strat = ytr if s.stratify and ds.label.classes else None
        xtr, xva, ytr, yva = train_test_split(
            xtr, ytr, test_size=s.validation, random_state=s.seed, stratify=strat
        )
        validation = Split(xva, yva)
    return Splits(Split(xtr, ytr), validation, Split(xte, yte))
