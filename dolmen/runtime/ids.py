"""Execution ids: chosen by the client, and derived for children.

A child's id is ``<parent id>/<position>``: the parent's command position names it, so
replay (and a retried start after a crash) derives the same id and never starts it twice.
"""

from __future__ import annotations

import uuid


def new_execution_id() -> str:
    """A fresh id for an execution the caller did not name."""
    return uuid.uuid4().hex


def child_id(parent_id: str, position: int, run: int = 1) -> str:
    """The id of the child started at ``position`` of execution ``parent_id`` (in its
    ``run``: a later run's positions start again at 0, so its children's ids say the run,
    ``<parent id>/<run>.<position>``)."""
    return f"{parent_id}/{position}" if run == 1 else f"{parent_id}/{run}.{position}"


def parent_of(execution_id: str) -> tuple[str, int]:
    """``(parent id, position)`` of a child's id; only for ids made by ``child_id``."""
    parent, _, position = execution_id.rpartition("/")
    return parent, int(position.rpartition(".")[2])


def root_of(execution_id: str) -> str:
    """The id of the top-level execution of the tree ``execution_id`` belongs to."""
    return execution_id.split("/", 1)[0]


def descendant_bounds(execution_id: str) -> tuple[str, str]:
    """An exclusive id range holding exactly the descendants of ``execution_id``.

    Descendants' ids start with ``<id>/``; ``0`` follows ``/`` in ASCII, so every id between
    the two bounds starts with that prefix, and an index on ids answers the range.
    """
    return execution_id + "/", execution_id + "0"
