"""Configuration: variables, validation and project discovery."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from pydantic import ValidationError

from dbt_temporal.config.projects import ProjectConfigError, discover_projects
from dbt_temporal.config.reference import configuration_markdown
from dbt_temporal.config.settings import Settings, WorkerSettings
from tests.support import EXAMPLES, copy_project


def test_defaults_and_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().temporal_address == "localhost:7233"
    assert Settings().temporal_task_queue == "dbt-tasks"
    monkeypatch.setenv("TEMPORAL_ADDRESS", "http://temporal.internal:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "analytics")
    settings = Settings()
    assert settings.temporal_address == "temporal.internal:7233"
    assert settings.temporal_namespace == "analytics"
    assert Settings(temporal_namespace="flag-wins").temporal_namespace == "flag-wins"


@pytest.mark.parametrize("address", ["localhost", "host:port", ":7233", "host:70000"])
def test_bad_addresses_are_rejected(address: str) -> None:
    with pytest.raises(ValidationError, match="is not host:port"):
        Settings(temporal_address=address)


def test_tls_needs_cert_and_key_and_turns_on_with_an_api_key() -> None:
    with pytest.raises(ValidationError, match="must be set together"):
        Settings(temporal_tls_key=Path("key.pem"))
    assert Settings(temporal_api_key="k").tls_enabled
    assert not Settings().tls_enabled


def test_artifact_store_is_a_directory_s3_or_gcs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    assert Settings().artifact_root == str(tmp_path / "temp" / f"dbtt-{os.getuid()}" / "artifacts")
    assert Settings(artifact_store="runs").artifact_root == str(tmp_path / "runs")  # absolute, as plans carry it
    assert Settings(artifact_store="s3://bucket/dbt/").artifact_root == "s3://bucket/dbt"
    assert Settings(artifact_store="gs://bucket").artifact_root == "gs://bucket"
    with pytest.raises(ValidationError, match="is not a directory, s3://bucket/prefix or gs://bucket/prefix"):
        Settings(artifact_store="ftp://host/runs")
    defaults = WorkerSettings()
    assert (defaults.write_artifacts, defaults.write_run_log) == (False, True)


def test_discovery_order_and_duplicate_names(tmp_path: Path) -> None:
    first = copy_project(EXAMPLES / "shop", tmp_path / "a" / "shop")
    second = copy_project(EXAMPLES / "shop", tmp_path / "b" / "shop")

    found = discover_projects(Settings(dbt_projects_dir=tmp_path / "a", dbt_project_dir=second))
    assert {name: p.path for name, p in found.items()} == {"shop": first}

    with pytest.raises(ProjectConfigError, match="two projects are named 'shop'") as err:
        discover_projects(Settings(dbt_project_dirs=f"{first},{second}"))
    assert str(first) in str(err.value) and str(second) in str(err.value)


def test_missing_project_and_profiles_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ProjectConfigError, match="is not a dbt project"):
        discover_projects(Settings(dbt_project_dir=tmp_path))
    project = copy_project(EXAMPLES / "shop", tmp_path / "shop")
    with pytest.raises(ProjectConfigError, match="no profiles.yml"):
        discover_projects(Settings(dbt_project_dir=project, dbt_profiles_dir=tmp_path / "nowhere"))


def test_profiles_are_found_in_home_dbt_when_the_project_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_project(EXAMPLES / "shop", tmp_path / "shop")
    profiles = (project / "profiles.yml").read_text()
    (project / "profiles.yml").unlink()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    with pytest.raises(ProjectConfigError, match=r"no profiles.yml in .*shop or .*home/\.dbt; set DBT_PROFILES_DIR"):
        discover_projects(Settings(dbt_project_dir=project))

    (tmp_path / "home" / ".dbt").mkdir(parents=True)
    (tmp_path / "home" / ".dbt" / "profiles.yml").write_text(profiles)
    assert discover_projects(Settings(dbt_project_dir=project))["shop"].profiles_dir == tmp_path / "home" / ".dbt"


def test_the_configuration_reference_is_current_and_complete() -> None:
    """docs/configuration.md is generated from the settings model: regenerate it when a setting changes."""
    committed = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()

    assert committed == configuration_markdown(), "stale: run python -m dbt_temporal.config.reference"
    for field, info in WorkerSettings.model_fields.items():
        assert f"`{Settings.env_name(field)}`" in committed
        assert info.description, f"{field} has no description for the reference"
