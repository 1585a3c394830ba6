"""weights-storage: a committed .dvc pointer, the object in staging, and sizes that agree."""

from __future__ import annotations

import socket

import pytest

from factories import example_card
from registry.checks import CheckOptions, Finding, Severity, run_checks
from registry.core.errors import StorageError
from registry.core.repo import RegistryRepo
from registry.core.storage import parse_pointer

CARD = "models/tiny/model.yaml"
POINTER = "models/tiny/model.onnx.dvc"


def findings(
    reg, head: str | None = "HEAD", checks=("card-fields", "weights-storage")
) -> list[Finding]:
    """Run the named checks on model 'tiny' at revision `head` (None: the working tree)."""
    repo = RegistryRepo(reg.root)
    report = run_checks(
        ["tiny"], repo.snapshot(head), None, repo, CheckOptions(offline=True, only=list(checks))
    )
    return report.models[0].findings


def card_line(text: str, key: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(f"{key}:"))


def pointer(reg):
    return parse_pointer((reg.root / POINTER).read_text())


def test_tracked_and_pushed_weights_pass(registry_repo, onnx_bytes):
    registry_repo.add_model("tiny", onnx_bytes)
    assert findings(registry_repo) == []
    assert findings(registry_repo, head=None) == []


def test_missing_pointer(registry_repo, onnx_bytes):
    registry_repo.add_model("tiny", onnx_bytes)
    registry_repo.git("rm", "-q", "--cached", POINTER)
    (registry_repo.root / POINTER).unlink()
    registry_repo.commit(message="lose the pointer")
    [f] = findings(registry_repo)
    assert (
        f.message == f"no DVC pointer {POINTER} for the weights in HEAD "
        f"({registry_repo.git('rev-parse', 'HEAD')[:8]})"
    )
    assert f.hint == (
        "track the weights with DVC and push them: dvc add models/tiny/model.onnx && "
        f"dvc push -r staging {POINTER}, then git add {POINTER}"
    )
    assert (f.path, f.line) == (CARD, card_line((registry_repo.root / CARD).read_text(), "weights"))


def test_weights_committed_to_git(registry_repo, onnx_bytes):
    registry_repo.add_model("tiny", onnx_bytes)
    registry_repo.git("add", "-f", "models/tiny/model.onnx")
    registry_repo.commit(message="commit the weights too")
    for head in ("HEAD", None):
        [f] = findings(registry_repo, head=head)
        assert (
            f.message
            == "the weights file models/tiny/model.onnx is committed to git; weights belong in DVC"
        )
        assert f.hint.startswith("git rm --cached models/tiny/model.onnx")
        assert f.path == "models/tiny/model.onnx"


def test_missing_object_in_staging(registry_repo, onnx_bytes):
    registry_repo.add_model("tiny", onnx_bytes, push=False)
    md5 = pointer(registry_repo).md5
    [f] = findings(registry_repo)
    assert f.message == (
        f"the weights object {md5} ({POINTER}) is not in the 'staging' remote "
        f"({registry_repo.storage / 'staging'})"
    )
    assert f.hint == f"push it: dvc push -r staging {POINTER}"
    assert f.path == POINTER


def test_pointer_with_a_wrong_hash(registry_repo, onnx_bytes):
    registry_repo.add_model("tiny", onnx_bytes)
    text = (registry_repo.root / POINTER).read_text()
    md5 = pointer(registry_repo).md5
    wrong = "0123456789abcdef0123456789abcdef"
    registry_repo.commit({POINTER: text.replace(md5, wrong)}, "hand-edited pointer")
    [f] = findings(registry_repo)
    assert f.message.startswith(
        f"the weights object {wrong} ({POINTER}) is not in the 'staging' remote"
    )
    assert f.path == POINTER


def test_unreadable_pointer(registry_repo, onnx_bytes):
    registry_repo.add_model("tiny", onnx_bytes)
    registry_repo.commit({POINTER: "outs:\n- path: model.onnx\n"}, "pointer without hash")
    [f] = findings(registry_repo)
    assert (
        f.message
        == f"DVC pointer {POINTER} is unusable: 'md5' is missing or not an md5 hash (got '')"
    )
    assert f.path == POINTER


def test_partial_upload_is_found(registry_repo, onnx_bytes):
    registry_repo.add_model("tiny", onnx_bytes)
    md5 = pointer(registry_repo).md5
    obj = registry_repo.storage / "staging" / "files" / "md5" / md5[:2] / md5[2:]
    obj.write_bytes(onnx_bytes[:100])
    [f] = findings(registry_repo)
    assert f.message == (
        f"the 'staging' remote holds 100 bytes for object {md5}, but {POINTER} records "
        f"{len(onnx_bytes):,} bytes (an incomplete or different upload)"
    )


@pytest.mark.parametrize(
    "size, says",
    [
        ("1061", None),
        ("'1KB'", None),
        ("'1.06 KB'", None),
        ("'1 KiB'", None),
        ("1062", "'size' is 1,062 bytes but DVC records 1,061 bytes for models/tiny/model.onnx"),
        (
            "'2KB'",
            "'size' is '2KB' (2,000 bytes) but DVC records 1,061 bytes (1.06 KB) for "
            "models/tiny/model.onnx",
        ),
        (
            "'1.2MB'",
            "'size' is '1.2MB' (1,200,000 bytes) but DVC records 1,061 bytes (1.06 KB) for "
            "models/tiny/model.onnx",
        ),
    ],
)
def test_card_size_against_dvc(registry_repo, onnx_bytes, size, says):
    assert len(onnx_bytes) == 1061  # the sizes above are written for this model
    card = example_card("tiny").replace("metrics:", f"size: {size}\nmetrics:")
    registry_repo.add_model("tiny", onnx_bytes, card=card)
    got = findings(registry_repo)
    if says is None:
        assert got == []
        return
    [f] = got
    assert f.message == says
    assert f.hint.startswith("set 'size: 1061'")
    assert (f.path, f.line) == (CARD, card_line(card, "size"))


def test_missing_size_is_a_notice(registry_repo, onnx_bytes):
    card = example_card("tiny")
    registry_repo.add_model("tiny", onnx_bytes, card=card)
    [f] = findings(registry_repo)
    assert f.severity is Severity.notice
    assert f.message == f"the card declares no 'size'; {POINTER} records 1,061 bytes"
    assert f.hint == "add 'size: 1061'"


def test_weights_behind_a_symlink_leaving_the_folder(registry_repo, onnx_bytes):
    registry_repo.add_model("other", onnx_bytes)
    card = example_card("tiny", weights_file="shared/model.onnx", size=len(onnx_bytes))
    registry_repo.write({CARD: card, "models/tiny/config.yaml": "epochs: 1\n"})
    (registry_repo.root / "models/tiny/shared").symlink_to("../other")
    registry_repo.commit(message="borrow another model's weights")
    [f] = findings(registry_repo)
    assert (
        f.message == "weights: models/tiny/shared is a symlink to '../other', outside models/tiny/"
    )
    assert (f.path, f.line) == (CARD, card_line(card, "weights"))


@pytest.mark.parametrize(
    "value, says",
    [
        ("../other/model.onnx", "must stay inside the model folder ('..' is not allowed)"),
        ("/abs/model.onnx", "must be relative to the model folder, not absolute"),
    ],
)
def test_weights_path_escaping_the_folder_is_a_card_finding(registry_repo, onnx_bytes, value, says):
    registry_repo.add_model("tiny", onnx_bytes)
    card = example_card("tiny", size=1061).replace("weights: model.onnx", f"weights: {value}")
    registry_repo.commit({CARD: card})
    [f] = findings(registry_repo)
    assert f.check == "card-fields" and says in f.message and "weights" in f.message
    assert (f.path, f.line) == (CARD, card_line(card, "weights"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _point_staging_at_a_dead_server(reg) -> None:
    config = reg.root / ".dvc" / "config"
    text = config.read_text().replace(
        str(reg.storage / "staging"), f"http://127.0.0.1:{_closed_port()}/staging"
    )
    config.write_text(text)


def test_unreachable_remote_is_an_infrastructure_error(registry_repo, onnx_bytes):
    registry_repo.add_model("tiny", onnx_bytes)
    _point_staging_at_a_dead_server(registry_repo)
    with pytest.raises(StorageError) as e:
        findings(registry_repo)
    assert "on remote 'staging'" in e.value.message and "failed after" in e.value.message
    assert e.value.exit_code == 5


def test_cli_exit_codes(registry_repo, onnx_bytes):
    registry_repo.add_model("tiny", onnx_bytes, push=False)
    proc = registry_repo.registry("check", "tiny", "--offline")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{POINTER}: the weights object" in proc.stdout
    assert f"fix: push it: dvc push -r staging {POINTER}" in proc.stdout
    _point_staging_at_a_dead_server(registry_repo)
    proc = registry_repo.registry("check", "tiny", "--offline")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "error: looking up" in proc.stderr and "remote 'staging'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_pointer_symlink_leaving_the_folder(registry_repo, onnx_bytes):
    registry_repo.add_model("other", onnx_bytes)
    card = example_card("tiny", size=len(onnx_bytes))
    registry_repo.write({CARD: card, "models/tiny/config.yaml": "epochs: 1\n"})
    (registry_repo.root / POINTER).symlink_to("../other/model.onnx.dvc")
    registry_repo.commit(message="borrow another model's pointer")
    for head in ("HEAD", None):
        [f] = findings(registry_repo, head=head)
        assert f.message == (
            "DVC pointer: models/tiny/model.onnx.dvc is a symlink to "
            "'../other/model.onnx.dvc', outside models/tiny/"
        )
        assert (f.path, f.line) == (CARD, card_line(card, "weights"))


# --------------------------------------------------------------------------- the PyTorch source
# (pytorch:)

PT2_POINTER = "models/tiny/model.pt2.dvc"


def with_pytorch(reg, onnx_bytes, *, push: bool = True) -> str:
    """tiny with weights and a DVC-tracked model.pt2 named by `pytorch:`; returns the card."""
    reg.add_model("tiny", onnx_bytes, commit=False)
    reg.track("models/tiny/model.pt2", b"PK\x03\x04 a .pt2 stands here", push=push)
    card = example_card("tiny", size=len(onnx_bytes), extra="pytorch: model.pt2\n")
    reg.commit({CARD: card}, message="tiny with a PyTorch source")
    return card


def test_a_tracked_and_pushed_pytorch_source_passes(registry_repo, onnx_bytes):
    with_pytorch(registry_repo, onnx_bytes)
    assert findings(registry_repo) == []


def test_the_pytorch_source_needs_its_pointer_and_its_object(registry_repo, onnx_bytes):
    card = with_pytorch(registry_repo, onnx_bytes, push=False)
    md5 = parse_pointer((registry_repo.root / PT2_POINTER).read_text()).md5
    [f] = findings(registry_repo)
    assert f.message == (
        f"the PyTorch source object {md5} ({PT2_POINTER}) is not in the 'staging' remote "
        f"({registry_repo.storage / 'staging'})"
    )
    registry_repo.git("rm", "-q", "--cached", PT2_POINTER)
    (registry_repo.root / PT2_POINTER).unlink()
    registry_repo.commit(message="lose the pointer")
    [f] = findings(registry_repo)
    assert f.message.startswith(f"no DVC pointer {PT2_POINTER} for the 'pytorch' file in HEAD")
    assert (f.path, f.line) == (CARD, card_line(card, "pytorch"))


@pytest.mark.parametrize(
    "value, says",
    [
        ("../other/model.pt2", "must stay inside the model folder ('..' is not allowed)"),
        ("/abs/model.pt2", "must be relative to the model folder, not absolute"),
        ("model.pt", "must name a .pt2 file"),
    ],
)
def test_pytorch_path_is_checked_like_the_weights(registry_repo, onnx_bytes, value, says):
    card = with_pytorch(registry_repo, onnx_bytes).replace(
        "pytorch: model.pt2", f"pytorch: {value}"
    )
    registry_repo.commit({CARD: card})
    [f] = findings(registry_repo)
    assert f.check == "card-fields" and says in f.message and "pytorch" in f.message
    assert (f.path, f.line) == (CARD, card_line(card, "pytorch"))
