"""meltano.yml is configured for deletions as docs/deletions.md says (fast: reads the file only).

What each setting does is proven by test_loader_deletions.py (loaders) and test_dbt_deletions.py
(dbt); this keeps the project file from drifting away from what those tests measured.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.meltano_helpers import meltano_yml


def _plugin(project: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    (plugin,) = [p for p in project["plugins"][kind] if p["name"] == name]
    return dict(plugin)


def test_loaders_are_configured_for_deletions() -> None:
    project = meltano_yml()
    duck = _plugin(project, "loaders", "target-duckdb")["config"]
    assert duck["hard_delete"] is True and duck["add_metadata_columns"] is True
    pg = _plugin(project, "loaders", "target-postgres")["config"]
    assert pg["activate_version"] is True and pg["add_record_metadata"] is True
    assert pg["hard_delete"] is True
    assert pg["validate_records"] is False  # a deletion marker fails the SDK's validation
    soft = _plugin(project, "loaders", "target-postgres-soft-delete")
    assert soft["inherit_from"] == "target-postgres"
    assert soft["config"] == {"hard_delete": False}


def test_a_full_table_job_runs_beside_the_incremental_one() -> None:
    project = meltano_yml()
    full = _plugin(project, "extractors", "tap-hpe-flex-full-table")
    assert full["inherit_from"] == "tap-hpe-flex"
    assert full["metadata"] == {
        "orders": {"replication-method": "FULL_TABLE"},
        "devices": {"replication-method": "FULL_TABLE"},
    }
    jobs = {j["name"]: j["tasks"] for j in project["jobs"]}
    assert jobs["flex-full-to-duckdb"][0].startswith("tap-hpe-flex-full-table target-duckdb")
    assert jobs["flex-full-to-postgres"] == ["tap-hpe-flex-full-table target-postgres"]
    schedules = {s["name"]: s for s in project["schedules"]}
    assert schedules["daily-flex-to-duckdb"]["job"] == "flex-to-duckdb"
    assert schedules["weekly-flex-full-to-duckdb"]["job"] == "flex-full-to-duckdb"
