"""The lifecycle table of SPEC.md §1, as base → head card changes."""

import pytest

from registry.cards.lifecycle import Operation, classify, publishes
from registry.cards.schema import ModelCard


def card(status=None, version="1.0.0"):
    if status is None:
        return None
    return ModelCard(
        name="m1",
        version=version if status != "unpublished" else None,
        status=status,
        task="classification",
        project="p",
        source={"repo": "https://x/y.git"},
        config="c.yaml",
        weights="w.onnx",
    )


@pytest.mark.parametrize(
    "base,head,version,op,ok",
    [
        (None, "unpublished", "1.0.0", Operation.upload, True),
        (None, "published", "1.0.0", Operation.upload, False),
        ("unpublished", "published", "1.0.0", Operation.publish, True),
        ("unpublished", "offline", "1.0.0", Operation.unpublish, False),
        ("published", "updated", "1.1.0", Operation.update, True),
        ("published", "published", "1.0.0", Operation.edit, True),
        ("published", "offline", "1.0.0", Operation.unpublish, True),
        ("updated", "offline", "1.0.0", Operation.unpublish, True),
        ("published", None, "1.0.0", Operation.delete, False),
        ("unpublished", None, "1.0.0", Operation.delete, True),
        ("offline", None, "1.0.0", Operation.delete, True),
        ("offline", "published", "1.0.0", Operation.none, False),
        ("offline", "offline", "1.0.0", Operation.edit, False),
        ("published", "unpublished", "1.0.0", Operation.none, False),
    ],
)
def test_transitions(base, head, version, op, ok):
    change = classify(card(base), card(head, version))
    assert change.operation is op
    assert change.allowed is ok
    assert bool(change.reason) is (not ok)


def test_only_publish_and_update_publish():
    assert publishes(classify(card("unpublished"), card("published")))
    assert publishes(classify(card("published"), card("updated", "2.0.0")))
    assert not publishes(classify(card("published"), card("offline")))
