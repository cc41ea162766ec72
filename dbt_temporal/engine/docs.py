"""What `dbt docs generate` adds to a run's compiled nodes: the warehouse's catalog and the docs site.

The nodes were compiled one activity each, as in any run; this reads the catalog
of every relation and source of the project once, on the calling thread, with
dbt's own adapter calls and artifact classes, so `dbt docs serve` (or
`dbtt artifacts ID --show docs`) reads the files as its own.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path

import dbt.utils
from dbt.artifacts.schemas.catalog import CatalogArtifact
from dbt.task.docs import DOCS_INDEX_FILE_PATH
from dbt.task.docs.generate import Catalog

from dbt_temporal.artifact_store import CATALOG, DOCS_INDEX
from dbt_temporal.engine.invocation import Invocation
from dbt_temporal.engine.isolation import activated


def write_docs(invocation: Invocation, directory: Path) -> list[str]:
    """Write catalog.json and dbt's index.html into `directory` (manifest.json is the run's own)."""
    manifest = invocation.manifest
    adapter = invocation.session.adapter
    with activated(invocation.state()), adapter.connection_named("generate_catalog"):
        relational = [node for node in manifest.nodes.values() if node.is_relational and not node.is_ephemeral_model]
        table, exceptions = adapter.get_filtered_catalog(
            chain(relational, manifest.sources.values()), manifest.get_used_schemas(), None
        )
        rows = [dict(zip(table.column_names, map(dbt.utils._coerce_decimal, row), strict=True)) for row in table]
        nodes, sources = Catalog(rows).make_unique_id_map(manifest, None)
        catalog = CatalogArtifact.from_results(
            nodes=nodes,
            sources=sources,
            generated_at=datetime.now(UTC).replace(tzinfo=None),
            errors=[str(exc) for exc in exceptions] or None,
            compile_results=None,
        )
        catalog.write(str(directory / CATALOG))
    shutil.copyfile(DOCS_INDEX_FILE_PATH, directory / DOCS_INDEX)
    return [CATALOG, DOCS_INDEX]
