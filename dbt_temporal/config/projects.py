"""Finding the dbt projects a worker serves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from dbt_temporal.config.project_config import ProjectConfig, ProjectConfigFileError, load_project_config
from dbt_temporal.config.settings import Settings


class ProjectConfigError(ValueError):
    """A project directory that cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class ProjectDir:
    name: str
    path: Path
    profiles_dir: Path
    config: ProjectConfig


def _project_name(path: Path) -> str:
    project_file = path / "dbt_project.yml"
    try:
        data = yaml.safe_load(project_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ProjectConfigError(f"cannot read {project_file}: {err}") from err
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        raise ProjectConfigError(f"{project_file} has no 'name'; add one")
    return name


def _scan(base: Path) -> list[Path]:
    if not base.is_dir():
        raise ProjectConfigError(f"DBT_PROJECTS_DIR {base} is not a directory")
    found = sorted(p for p in base.iterdir() if (p / "dbt_project.yml").is_file())
    if not found:
        raise ProjectConfigError(f"no subdirectory of {base} holds a dbt_project.yml")
    return found


def candidate_dirs(settings: Settings) -> list[Path]:
    """Project discovery: DBT_PROJECT_DIRS, else DBT_PROJECTS_DIR, else DBT_PROJECT_DIR, else the cwd."""
    if settings.dbt_project_dirs:
        return [Path(part.strip()) for part in settings.dbt_project_dirs.split(",") if part.strip()]
    if settings.dbt_projects_dir:
        return _scan(settings.dbt_projects_dir)
    if settings.dbt_project_dir:
        return [settings.dbt_project_dir]
    cwd = Path.cwd()
    return [cwd] if (cwd / "dbt_project.yml").is_file() else _scan(cwd)


def _profiles_dir(settings: Settings, project: Path) -> Path:
    """DBT_PROFILES_DIR when set; else the project's own directory, then ~/.dbt, as dbt looks."""
    if settings.dbt_profiles_dir is not None:
        candidates = [settings.dbt_profiles_dir.expanduser().resolve()]
    else:
        candidates = [project, Path.home() / ".dbt"]
    for directory in candidates:
        if (directory / "profiles.yml").is_file():
            return directory
    looked = " or ".join(str(directory) for directory in candidates)
    raise ProjectConfigError(f"no profiles.yml in {looked}; set DBT_PROFILES_DIR")


def discover_projects(settings: Settings) -> dict[str, ProjectDir]:
    projects: dict[str, ProjectDir] = {}
    for path in candidate_dirs(settings):
        path = path.expanduser().resolve()
        if not (path / "dbt_project.yml").is_file():
            raise ProjectConfigError(f"{path} is not a dbt project (no dbt_project.yml); check DBT_PROJECT_DIR(S)")
        name = _project_name(path)
        if name in projects:
            raise ProjectConfigError(
                f"two projects are named '{name}': {projects[name].path} and {path}; rename one or load only one"
            )
        profiles_dir = _profiles_dir(settings, path)
        try:
            config = load_project_config(path)
        except ProjectConfigFileError as err:
            raise ProjectConfigError(str(err)) from None
        projects[name] = ProjectDir(name=name, path=path, profiles_dir=profiles_dir, config=config)
    return projects
