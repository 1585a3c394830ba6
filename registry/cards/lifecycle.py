"""Lifecycle of a model (SPEC.md §1): states, the operations each allows, and what a change asks
for.

A pull request expresses an operation by the change it makes to a card between base and head:

| base card          | head card                         | operation  |
| ------------------ | --------------------------------- | ---------- |
| (none)             | unpublished                       | upload     |
| unpublished        | published                         | publish    |
| published/updated  | published/updated, higher version | update     |
| any state          | same state, same version          | edit       |
| published/updated  | offline                           | unpublish  |
| unpublished/offline| (none)                            | delete     |

`classify` names the operation; `allowed` says whether the base state permits it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from registry.cards.schema import ModelCard, Status


class Operation(str, Enum):
    upload = "upload"
    publish = "publish"
    update = "update"
    edit = "edit"
    unpublish = "unpublish"
    delete = "delete"
    none = "none"


# SPEC.md §1: the operations each state allows (view details is always allowed and not a change).
ALLOWED: dict[Status, frozenset[Operation]] = {
    Status.unpublished: frozenset({Operation.publish, Operation.edit, Operation.delete}),
    Status.published: frozenset({Operation.edit, Operation.unpublish, Operation.update}),
    Status.updated: frozenset(
        {Operation.publish, Operation.update, Operation.edit, Operation.unpublish}
    ),
    Status.offline: frozenset({Operation.delete}),
}

# The state a card must carry after each operation.
RESULTING_STATE: dict[Operation, tuple[Status, ...]] = {
    Operation.upload: (Status.unpublished,),
    Operation.publish: (Status.published,),
    Operation.update: (Status.updated,),
    Operation.unpublish: (Status.offline,),
}


@dataclass(frozen=True)
class Change:
    """What a pull request does to one model."""

    operation: Operation
    base: Status | None
    head: Status | None
    allowed: bool
    reason: str = ""


def classify(base: ModelCard | None, head: ModelCard | None) -> Change:
    """Name the operation a base → head card change performs and whether the base state allows
    it."""
    b = base.status if base else None
    h = head.status if head else None
    if base is None and head is None:
        return Change(Operation.none, None, None, True)
    if base is None:
        ok = h is Status.unpublished
        return Change(
            Operation.upload,
            None,
            h,
            ok,
            ""
            if ok
            else f"a new model starts as 'unpublished', not '{h.value}'; "
            "publish it in a later pull request after review",
        )
    if head is None:
        ok = Operation.delete in ALLOWED[b]
        return Change(
            Operation.delete,
            b,
            None,
            ok,
            ""
            if ok
            else f"a '{b.value}' model cannot be deleted; unpublish it first "
            "(status: offline), then delete it in a later pull request",
        )
    if h is Status.offline and b is not Status.offline:
        op = Operation.unpublish
    elif h in (Status.published, Status.updated) and b is Status.unpublished:
        op = Operation.publish
    elif (
        h in (Status.published, Status.updated)
        and b in (Status.published, Status.updated)
        and head.version != base.version
    ):
        op = Operation.update
    elif h is b:
        op = Operation.edit
    else:
        return Change(
            Operation.none,
            b,
            h,
            False,
            f"status cannot go from '{b.value}' to '{h.value}'"
            + ("; an offline model can only be deleted" if b is Status.offline else ""),
        )
    ok = op in ALLOWED[b]
    reason = "" if ok else f"'{op.value}' is not allowed from '{b.value}'"
    if ok and op is Operation.publish and h is not Status.published:
        ok, reason = False, "a first publication sets status: published"
    if ok and op is Operation.update and h is not Status.updated:
        ok, reason = False, "publishing a new version of a published model sets status: updated"
    if ok and op is Operation.edit and b is Status.offline:
        ok, reason = False, "an offline model can only be deleted"
    return Change(op, b, h, ok, reason)


def publishes(change: Change) -> bool:
    """Whether merging this change publishes a version (copy to public, tag, notes)."""
    return change.allowed and change.operation in (Operation.publish, Operation.update)
