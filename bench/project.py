"""Synthetic DuckDB dbt projects: a layered DAG of tiny tables, one shaped like real projects, an uneven DAG.

Every project writes to the DuckDB file named by `$BENCH_DUCKDB_PATH`, so each
measured approach gets its own copy of the project and its own database file.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

DUCKDB_ENV = "BENCH_DUCKDB_PATH"
SEED_NAME = "bench_seed"
SEED_ROWS = 10
TEST_KINDS = ("not_null", "unique")


@dataclass(frozen=True)
class DagSpec:
    """Shape of a layered project. `size` counts every node: seed, models and tests."""

    size: int
    depth: int = 10
    fan_in: int = 2
    tests_per_model: int = 1
    threads: int = 4
    seed: int = 7
    # Append-only incremental models instead of tables: the nodes dbtt guards with a commit marker.
    append: bool = False

    @property
    def models(self) -> int:
        return max(1, (self.size - 1) // (1 + self.tests_per_model))


@dataclass(frozen=True)
class UnevenSpec:
    """One slow Python model on one branch, a chain of fast models (with tests) on another."""

    slow_seconds: float = 5.0
    chain: int = 30
    tests_per_model: int = 1
    threads: int = 4


@dataclass(frozen=True)
class RealSpec:
    """Shaped like large real projects: `models` models with 3 tests each, 10 % of them ephemeral,
    and a few marts that each read hundreds of models (dbt links every upstream test to them)."""

    models: int
    depth: int = 10
    fan_in: int = 2
    wide_marts: int = 3
    wide_parents: int = 520
    ephemeral_every: int = 10
    threads: int = 4
    seed: int = 7


def model_name(index: int) -> str:
    return f"m_{index:05d}"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


TABLES = "    +materialized: table\n"
APPENDS = "    +materialized: incremental\n    +incremental_strategy: append\n"


def _scaffold(root: Path, name: str, threads: int, model_config: str = TABLES) -> None:
    """dbt_project.yml, profiles.yml and the seed every project starts from."""
    _write(
        root / "dbt_project.yml",
        f"name: {name}\nversion: '1.0.0'\nconfig-version: 2\nprofile: {name}\nmodels:\n  {name}:\n{model_config}",
    )
    _write(
        root / "profiles.yml",
        f"{name}:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: \"{{{{ env_var('{DUCKDB_ENV}') }}}}\"\n      schema: main\n      threads: {threads}\n",
    )
    rows = "\n".join(f"{i},{i * 10}" for i in range(1, SEED_ROWS + 1))
    _write(root / "seeds" / f"{SEED_NAME}.csv", f"id,v\n{rows}\n")


def _schema_yml(models: list[str], tests_per_model: int) -> str:
    """Generic tests on each model's `id` column."""
    lines = ["version: 2", "models:"]
    kinds = TEST_KINDS[: max(0, min(tests_per_model, len(TEST_KINDS)))]
    for name in models:
        lines.append(f"  - name: {name}")
        if kinds:
            lines += ["    columns:", "      - name: id", "        data_tests:"]
            lines += [f"          - {kind}" for kind in kinds]
    return "\n".join(lines) + "\n"


def _join_sql(parents: list[str]) -> str:
    """A tiny table built from its parents, joined on `id`."""
    total = " + ".join(f"p{i}.v" for i in range(len(parents)))
    sql = f"select p0.id, {total} as v\nfrom {{{{ ref('{parents[0]}') }}}} as p0\n"
    for i, parent in enumerate(parents[1:], start=1):
        sql += f"join {{{{ ref('{parent}') }}}} as p{i} on p{i}.id = p0.id\n"
    return sql


def layered_parents(spec: DagSpec) -> dict[str, list[str]]:
    """Parents of each model: one from the previous layer, the rest from any earlier layer."""
    rng = random.Random(spec.seed)
    depth = max(1, min(spec.depth, spec.models))
    layers: list[list[str]] = [[] for _ in range(depth)]
    for i in range(spec.models):
        layers[i * depth // spec.models].append(model_name(i))
    parents: dict[str, list[str]] = {name: [SEED_NAME] for name in layers[0]}
    for level in range(1, depth):
        earlier = [name for layer in layers[:level] for name in layer]
        for name in layers[level]:
            chosen = [rng.choice(layers[level - 1])]
            for _ in range(spec.fan_in - 1):
                candidate = rng.choice(earlier)
                if candidate not in chosen:
                    chosen.append(candidate)
            parents[name] = chosen
    return parents


def generate_layered(root: Path, spec: DagSpec) -> Path:
    """Write a layered project of about `spec.size` nodes to `root`."""
    name = "bench"
    _scaffold(root, name, spec.threads, APPENDS if spec.append else TABLES)
    parents = layered_parents(spec)
    for model, ups in parents.items():
        _write(root / "models" / f"{model}.sql", _join_sql(ups))
    _write(root / "models" / "schema.yml", _schema_yml(list(parents), spec.tests_per_model))
    return root


def _union_sql(parents: list[str]) -> str:
    """A wide mart: every parent's rows, summed by `id` (joins of hundreds of tables plan slowly)."""
    parts = [f"select id, v from {{{{ ref('{parent}') }}}}" for parent in parents]
    return "select id, sum(v) as v from (\n" + "\nunion all\n".join(parts) + "\n) as parts group by id\n"


def _real_schema_yml(parents: dict[str, list[str]]) -> str:
    """not_null and unique on each model's `id`, and a relationships test to its first model parent."""
    lines = ["version: 2", "models:"]
    for name, ups in parents.items():
        lines += [f"  - name: {name}", "    columns:", "      - name: id", "        data_tests:"]
        lines += ["          - not_null", "          - unique"]
        target = next((up for up in ups if up != SEED_NAME), SEED_NAME)
        lines += ["          - relationships:", "              arguments:", f"                to: ref('{target}')"]
        lines += ["                field: id"]
    return "\n".join(lines) + "\n"


def generate_real(root: Path, spec: RealSpec) -> Path:
    """Write a project shaped like large real ones to `root` (see `RealSpec`)."""
    name = "bench"
    _scaffold(root, name, spec.threads)
    layered = DagSpec(size=spec.models * 2 + 1, depth=spec.depth, fan_in=spec.fan_in, seed=spec.seed)
    parents = layered_parents(layered)
    rng = random.Random(spec.seed)
    names = list(parents)
    marts = names[-spec.wide_marts :] if len(names) > spec.wide_marts else []
    for mart in marts:
        earlier = names[: names.index(mart)]
        parents[mart] = sorted(rng.sample(earlier, min(spec.wide_parents, len(earlier))))
    for i, (model, ups) in enumerate(parents.items()):
        ephemeral = i % spec.ephemeral_every == spec.ephemeral_every - 1 and model not in marts
        config = "{{ config(materialized='ephemeral') }}\n" if ephemeral else ""
        sql = _union_sql(ups) if model in marts else _join_sql(ups)
        _write(root / "models" / f"{model}.sql", config + sql)
    _write(root / "models" / "schema.yml", _real_schema_yml(parents))
    return root


SLOW_MODEL = """import time


def model(dbt, session):
    time.sleep({seconds})
    return session.sql("select 1 as id, 1 as v")
"""


def generate_uneven(root: Path, spec: UnevenSpec) -> Path:
    """seed -> slow (Python, sleeps) and seed -> c_001 -> ... -> c_N; both feed `u_final`."""
    name = "bench_uneven"
    _scaffold(root, name, spec.threads)
    _write(root / "models" / "u_slow.py", SLOW_MODEL.format(seconds=spec.slow_seconds))
    chain = [f"c_{i:03d}" for i in range(1, spec.chain + 1)]
    previous = SEED_NAME
    for model in chain:
        _write(root / "models" / f"{model}.sql", _join_sql([previous]))
        previous = model
    _write(root / "models" / "u_final.sql", _join_sql([chain[-1], "u_slow"]) if chain else _join_sql(["u_slow"]))
    _write(root / "models" / "schema.yml", _schema_yml(chain, spec.tests_per_model))
    return root


def database_of(project: Path) -> Path:
    return project / "bench.duckdb"
