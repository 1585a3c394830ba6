"""Archives from a pull request are read within limits: a .pt2 zip bomb is refused at its cap, in a
process that stays small, with a finding naming the file and the entry."""

from __future__ import annotations

import sys
import zipfile

from factories import HANG, run_bounded

INFLATED = 256 << 20


def zip_bomb(path, entry="model/models/model.json", size=INFLATED, content: str | None = None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("model/archive_format", "pt2")
        z.writestr("model/data/weights/model_weights_config.json", '{"config": {}}')
        z.writestr("model/data/constants/model_constants_config.json", '{"config": {}}')
        if content is not None:
            z.writestr(entry, content)
            return
        with z.open(entry, "w", force_zip64=True) as f:
            block = b" " * (1 << 20)
            for _ in range(size >> 20):
                f.write(block)


def test_a_pt2_zip_bomb_is_refused_at_its_cap(tmp_path):
    bomb = tmp_path / "model.pt2"
    zip_bomb(bomb)
    assert bomb.stat().st_size < 2 << 20  # a small file...
    code, out, err, seconds, rss = run_bounded(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from registry.formats.pt2 import inspect_pt2\n"
            "try:\n    inspect_pt2(Path(sys.argv[1]), 'models/m/model.pt2')\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n",
            str(bomb),
        ],
        tmp_path,
    )
    assert code == 0, err
    assert out.startswith(
        "ModelFormatError models/m/model.pt2: entry 'models/model.json' inflates to more than"
    )
    assert seconds < HANG and rss < 1 << 30  # ...that never inflates past the cap (no hang)


def test_a_pt2_with_too_many_entries_is_refused(tmp_path, monkeypatch):
    import pytest

    import registry.formats.pt2 as pt2
    from registry.core.errors import ModelFormatError

    monkeypatch.setattr(pt2, "MAX_ENTRIES", 10)
    path = tmp_path / "many.pt2"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(20):
            z.writestr(f"model/extra/{i}", "")
    with pytest.raises(ModelFormatError, match="more than the 10 a .pt2 archive may have"):
        pt2.inspect_pt2(path, "models/m/model.pt2")


def test_deep_json_in_a_pt2_is_refused(tmp_path):
    import pytest

    from registry.core.errors import ModelFormatError
    from registry.formats.pt2 import inspect_pt2

    path = tmp_path / "deep.pt2"
    zip_bomb(path, content="[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelFormatError, match="nested more than 500 levels deep"):
        inspect_pt2(path, "models/m/model.pt2")
