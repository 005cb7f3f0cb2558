"""dolmen.testing's deploy test: saved histories replayed against patched code, for CI."""

from __future__ import annotations

import asyncio

import pytest

from dolmen import cli
from dolmen.testing import DivergenceError, replay_histories
from tests.deploy_workflows import deploy, order_v1, v2_guarded, v2_unguarded
from tests.test_upgrade_check import populate


@pytest.fixture
def saved(tmp_path, capsys):
    """`dolmen history ID --json` of three v1 executions: past the patch point, before
    it, and finished."""
    db_path = str(tmp_path / "dolmen.db")
    asyncio.run(populate(db_path))
    folder = tmp_path / "histories"
    folder.mkdir()
    for execution_id in ("past", "before", "done"):
        assert cli.main(["history", execution_id, "--json", "--db", db_path]) == 0
        (folder / f"{execution_id}.json").write_text(capsys.readouterr().out)
    yield folder
    deploy(order_v1.fn)


def test_guarded_code_replays_every_saved_history_on_the_branch_each_took(saved):
    replayed = {r.source.rpartition("/")[2]: r for r in replay_histories(deploy(v2_guarded), saved)}
    assert sorted(replayed) == ["before.json", "done.json", "past.json"]
    # Past the patch point under v1: the old branch; not there yet: not asked yet.
    assert replayed["past.json"].patches == {"bonus": False}
    assert replayed["done.json"].patches == {"bonus": False}
    assert replayed["done.json"].result == ["old", 104, "x"]
    assert replayed["before.json"].patches == {} and replayed["before.json"].status == "running"


def test_unguarded_code_fails_the_deploy_test_naming_the_file(saved):
    with pytest.raises(DivergenceError) as info:
        replay_histories(deploy(v2_unguarded), saved)
    assert "done.json" in str(info.value)  # the first file, sorted, that diverges
    assert "add(4, 100)" in info.value.expected and "add(4, 1000)" in info.value.actual


def test_an_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no saved histories"):
        replay_histories(deploy(v2_guarded), tmp_path)
