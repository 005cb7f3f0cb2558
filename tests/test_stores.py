"""Both stores a host can have implement the one ``Store`` contract, and nothing mimics.

A host writes through ``Store`` only, so a store that lacks a member, or has it sync where
the contract is async, would break the host on one kind of node and not the other.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

from dolmen.actors.remote_store import RemoteStore
from dolmen.storage.local_store import LocalStore
from dolmen.storage.store import Store

CONTRACT = {
    name: inspect.iscoroutinefunction(member)
    for name, member in vars(Store).items()
    if callable(member) and not name.startswith("_")
}


def test_the_contract_is_what_hosts_use():
    assert CONTRACT == {
        "open": False,
        "submit": False,
        "allocate_eid": False,
        "rows": True,
        "history": True,
        "close": True,
    }


@pytest.mark.parametrize("store", [LocalStore, RemoteStore])
def test_each_store_implements_every_member_as_the_contract_says(store):
    for name, is_async in CONTRACT.items():
        member = getattr(store, name, None)
        assert member is not None, f"{store.__name__} lacks {name}"
        assert inspect.iscoroutinefunction(member) == is_async, f"{store.__name__}.{name}"
        # A body that only passes would mimic the member instead of implementing it.
        [function] = ast.parse(textwrap.dedent(inspect.getsource(member))).body
        body = [s for s in function.body if not _is_docstring(s)]
        assert body and not all(isinstance(s, ast.Pass) for s in body), f"{name} is empty"


def _is_docstring(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
