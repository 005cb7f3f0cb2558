"""`/metrics` as Prometheus scrapes it: the values move when executions run."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from dolmen.cli.ui.app import UiConfig, build_app
from tests import workflows as w


def scrape(web: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = web.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


@pytest.mark.ray
def test_a_scrape_sees_executions_attempts_and_retries_move(client, db_path, tmp_path):
    client.run(w.doubler, 1)  # the database exists before the first scrape
    web = TestClient(build_app(UiConfig(db_path)))
    before = scrape(web)
    client.run(w.retrying, str(tmp_path), 2)  # two failed attempts, then success
    handle = client.start(w.signalled, "never")
    handle.cancel()
    with pytest.raises(Exception):  # noqa: B017 - cancelled: any CancelledError flavour
        handle.result(timeout=60)
    after = scrape(web)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("dolmen_workflows_started_total") == 2
    assert moved("dolmen_workflows_finished_total", status="finished") == 1
    assert moved("dolmen_workflows_finished_total", status="cancelled") == 1
    assert moved("dolmen_activity_attempts_total", outcome="completed") == 1
    assert moved("dolmen_activity_attempts_total", outcome="failed") == 2
    assert moved("dolmen_activity_retries_total") == 2
    assert moved("dolmen_execution_duration_seconds_count") == 2
    assert after[("dolmen_executions_running", ())] == 0


@pytest.mark.ray
def test_the_host_counts_on_rays_metrics_from_its_commits(client, tmp_path):
    before = client.host_info()["metrics"]
    client.run(w.retrying, str(tmp_path), 2)  # two failed attempts, then success
    with pytest.raises(Exception):  # noqa: B017 - the workflow fails: any error flavour
        client.run(w.failing, "boom")
    after = client.host_info()["metrics"]

    def moved(key: str) -> int:
        return after.get(key, 0) - before.get(key, 0)

    assert moved("workflows_started") == 2
    assert moved("finished:finished") == 1 and moved("finished:failed") == 1
    assert moved("attempts:completed") == 1 and moved("attempts:failed") == 3
    assert moved("retries") == 2
    assert moved("commit_batches") >= 2
