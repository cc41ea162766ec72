"""What `dbtt --version` prints, read from installed package metadata (no dbt import: it is slow)."""

from __future__ import annotations

from importlib import metadata


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def adapters() -> list[tuple[str, str]]:
    """Installed dbt adapters as (distribution, version): the dbt-* packages built on dbt-adapters."""
    found: dict[str, str] = {}
    for distribution in metadata.distributions():
        name = distribution.metadata["Name"] or ""
        if not name.lower().startswith("dbt-") or name.lower() == "dbt-core":
            continue
        if any(requirement.lower().startswith("dbt-adapters") for requirement in distribution.requires or []):
            found[name.lower()] = distribution.version
    return sorted(found.items())


def version_lines() -> list[str]:
    lines = [f"dbtt {_version('dbtt')}", f"dbt-core {_version('dbt-core')}"]
    lines += [f"{name} {version} (adapter)" for name, version in adapters()]
    lines.append(f"temporalio {_version('temporalio')}")
    return lines
