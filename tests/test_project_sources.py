"""Projects served from git and object storage: fetched at worker start, checked before every run."""

from __future__ import annotations

import shutil
from pathlib import Path

import boto3
import pytest

from dbt_temporal.contract import DbtRunInput
from tests.git_server import GitHttpServer, git
from tests.support import EXAMPLES, dbtt, output_of, run_and_wait
from tests.test_artifacts import s3  # noqa: F401 - the moto S3 server fixture

TOKEN = "ghp_test0token0that0must0stay0hidden"
ORDERS = Path("models") / "marts" / "orders.sql"


def _shop_repository(tmp_path: Path) -> tuple[Path, Path, str]:
    """A working copy with the example shop under warehouse/shop, and a bare repository to fetch from."""
    work = tmp_path / "src"
    skipped = shutil.ignore_patterns("*.duckdb*", "target")
    shutil.copytree(EXAMPLES / "shop", work / "warehouse" / "shop", ignore=skipped)
    git("init", "--quiet", "--initial-branch", "main", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "shop", cwd=work)
    bare = tmp_path / "repos" / "shop.git"
    bare.parent.mkdir()
    git("clone", "--quiet", "--bare", str(work), str(bare), cwd=tmp_path)
    return work, bare, git("rev-parse", "HEAD", cwd=work)


def _change_orders(work: Path, bare: Path) -> str:
    orders = work / "warehouse" / "shop" / ORDERS
    orders.write_text(orders.read_text().replace("o.status,", "o.status, 'v2' as version,"))
    git("commit", "--quiet", "-am", "orders v2", cwd=work)
    git("push", "--quiet", str(bare), "main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def test_a_git_project_is_fetched_with_a_token_and_a_new_commit_is_reported(tmp_path: Path, start_worker) -> None:
    work, bare, first_commit = _shop_repository(tmp_path)
    server = GitHttpServer(bare.parent, token=TOKEN).start()
    work_dir = tmp_path / "work"
    worker = start_worker(
        tmp_path,
        DBT_PROJECT_DIRS=f"git+{server.url('shop.git')}#main:warehouse/shop",
        GITHUB_TOKEN=TOKEN,
        WORKER_WORK_DIR=str(work_dir),
        SHOP_DUCKDB_PATH=str(tmp_path / "shop.duckdb"),
    )

    first = output_of(run_and_wait(worker, DbtRunInput(select="+orders")))
    assert first.success and first.project_revision == first_commit

    second_commit = _change_orders(work, bare)
    second = run_and_wait(worker, DbtRunInput(select="orders"))
    assert output_of(second).success and output_of(second).project_revision == first_commit
    assert f"moved to revision {second_commit[:12]}; this run uses {first_commit[:12]}" in "\n".join(second.log)

    assert server.refused == 0  # the token went with every request
    assert TOKEN not in "".join(worker.lines)
    configs = list(work_dir.rglob(".git/config"))
    assert configs and all(TOKEN not in c.read_text() and "127.0.0.1" not in c.read_text() for c in configs)
    server.stop()


@pytest.mark.parametrize(
    ("entry", "token", "message"),
    [
        ("git+{url}#no-such-branch", TOKEN, "cannot fetch git+{url}#no-such-branch: "),
        ("git+{url}#main:warehouse/shop", "wrong-token-value", "cannot fetch git+{url}#main:warehouse/shop: "),
        ("git+{url}#main:nowhere", TOKEN, "'nowhere' of revision"),
        ("git+http://someone:hunter2hunter2@127.0.0.1:1/x.git", TOKEN, "cannot fetch git+http://****@127.0.0.1:1"),
        ("svn://127.0.0.1/x", TOKEN, "'svn://127.0.0.1/x' is not a project source dbtt knows"),
    ],
)
def test_a_source_that_cannot_be_fetched_stops_the_worker_with_one_line(
    tmp_path: Path, entry: str, token: str, message: str
) -> None:
    _, bare, _ = _shop_repository(tmp_path)
    server = GitHttpServer(bare.parent, token=TOKEN).start()
    url = server.url("shop.git")

    result = dbtt(
        "worker",
        env={
            "DBT_PROJECT_DIRS": entry.format(url=url),
            "GITHUB_TOKEN": token,
            "WORKER_WORK_DIR": str(tmp_path / "work"),
            "TEMPORAL_ADDRESS": "127.0.0.1:1",
        },
        timeout=120,
    )

    server.stop()
    assert result.returncode == 2
    assert message.format(url=url) in result.stderr
    for secret in (token, "hunter2hunter2"):
        assert secret not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_an_s3_project_is_refreshed_before_a_run_when_it_changes(tmp_path: Path, start_worker, s3) -> None:  # noqa: F811
    _, aws = s3
    bucket = boto3.client("s3")
    bucket.create_bucket(Bucket="projects")
    shop = EXAMPLES / "shop"
    for path in sorted(p for p in shop.rglob("*") if p.is_file() and not p.name.endswith((".duckdb", ".wal"))):
        bucket.put_object(Bucket="projects", Key=f"teams/shop/{path.relative_to(shop)}", Body=path.read_bytes())
    worker = start_worker(
        tmp_path,
        DBT_PROJECT_DIRS="s3://projects/teams/shop",
        PROJECT_REFRESH="refresh",
        WORKER_WORK_DIR=str(tmp_path / "work"),
        SHOP_DUCKDB_PATH=str(tmp_path / "shop.duckdb"),
        **aws,
    )
    first = output_of(run_and_wait(worker, DbtRunInput(select="+orders")))
    assert first.success and first.project_revision

    changed = (shop / ORDERS).read_text().replace("o.status,", "o.status, 'v2' as version,")
    bucket.put_object(Bucket="projects", Key=f"teams/shop/{ORDERS}", Body=changed.encode())
    second = run_and_wait(worker, DbtRunInput(select="orders"))

    output = output_of(second)
    assert output.success and output.project_revision not in (None, first.project_revision)
    log = "\n".join(second.log)
    assert f"refreshed to revision {output.project_revision[:12]}" in log
    assert "project changed; re-parsed in " in log
    orders = next(r for r in output.node_results if r.unique_id == "model.shop.orders")
    assert "'v2' as version" in (orders.compiled_code or "")
