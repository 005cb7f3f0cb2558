"""Versions of one workflow, as successive deploys would ship them (tests/test_deploy*.py).

``order_v1`` is the code that runs first; the other versions are plain functions that a
test registers under the same name, as a deploy replaces the code behind a name.
"""

from __future__ import annotations

import dolmen
from dolmen.runtime.definitions import Workflow
from tests import workflows as w

NAME = "tests.deploy.order"


async def _v1(n: int) -> list:
    a = await w.add(n, 1)
    await dolmen.wait_signal("go")
    b = await w.add(a, 100)  # the patch point: v2 changes this step
    done = await dolmen.wait_signal("done")
    return ["old", b, done]


async def v2_guarded(n: int) -> list:
    a = await w.add(n, 1)
    await dolmen.wait_signal("go")
    if dolmen.patched("bonus"):
        tag, b = "new", await w.add(a, 1000)
    else:
        tag, b = "old", await w.add(a, 100)
    done = await dolmen.wait_signal("done")
    return [tag, b, done]


async def v2_unguarded(n: int) -> list:
    a = await w.add(n, 1)
    await dolmen.wait_signal("go")
    b = await w.add(a, 1000)  # changed without dolmen.patched: old histories diverge
    done = await dolmen.wait_signal("done")
    return ["new", b, done]


order_v1 = dolmen.workflow(_v1, name=NAME)


def deploy(fn) -> Workflow:
    """``fn`` becomes the code behind the workflow's name (in this process's registry)."""
    return Workflow(fn, NAME, "await")
