"""A private PostgreSQL cluster for the test session.

The server binaries come from the system (Debian's postgresql package, or PG_BINDIR) when
installed, else from the `pgserver` wheel, which bundles PostgreSQL 16, so that
`pip install -e ".[dev]"` is all a fresh machine needs. DBTT_TEST_POSTGRES=system or
=pgserver picks one explicitly (CI tests both). Either way the cluster is the same: a fresh
temporary directory, a free loopback port, and a password required, so the tests see what a
user's warehouse does.

initdb and postgres refuse to run as root, so as root the cluster is created and run by the
unprivileged `nobody` user; as any other user it runs as that user.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import psycopg2.extensions

SUPERUSER = "dbtt"
START_SECONDS = 60
SERVICE_USER = "nobody"
CHOICE_VARIABLE = "DBTT_TEST_POSTGRES"
SYSTEM, PGSERVER = "system", "pgserver"


def system_bindir() -> Path | None:
    """PG_BINDIR, else the newest Debian cluster version, else initdb on PATH; None when absent."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if versions:
        return versions[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def pgserver_bindir() -> Path:
    """The binaries bundled in the pgserver wheel (the dev extra installs it), found without importing it."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError('no PostgreSQL found: pip install -e ".[dev]" (brings pgserver)')
    bindir = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
    if not (bindir / "initdb").exists():
        raise RuntimeError(f'the installed pgserver has no initdb in {bindir}: pip install -e ".[dev]"')
    return bindir


def find_bindir() -> tuple[str, Path]:
    """Which PostgreSQL to use, as (kind, bindir): DBTT_TEST_POSTGRES if set, else system before pgserver."""
    choice = os.environ.get(CHOICE_VARIABLE, "")
    if choice not in ("", SYSTEM, PGSERVER):
        raise RuntimeError(f"{CHOICE_VARIABLE} must be {SYSTEM} or {PGSERVER}, or unset to pick; got {choice!r}")
    if choice != PGSERVER:
        found = system_bindir()
        if found:
            return SYSTEM, found
        if choice == SYSTEM:
            raise RuntimeError(
                f"{CHOICE_VARIABLE}=system but PostgreSQL is not installed: apt-get install -y postgresql "
                "(or set PG_BINDIR)"
            )
    return PGSERVER, pgserver_bindir()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_service_user(command: list[str]) -> list[str]:
    """The command as the OS user that owns the cluster (nobody when we are root)."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", SERVICE_USER, "--", *command]


def _give_to_service_user(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVICE_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _let_service_user_reach(bindir: Path) -> None:
    """As root, let the service user traverse to binaries under a private directory (a venv in /root).

    Only the search bit is added, and only where missing: no directory becomes listable.
    """
    if os.geteuid() != 0:
        return
    for directory in [bindir, *bindir.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


@dataclass
class PostgresServer:
    """One running cluster; `dsn(dbname)` connects to it as the superuser."""

    bindir: Path
    root: Path
    kind: str = SYSTEM
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: f"pw-{uuid.uuid4().hex[:12]}")
    host: str = "127.0.0.1"
    user: str = SUPERUSER

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @classmethod
    def start_new(cls) -> PostgresServer:
        kind, bindir = find_bindir()
        _let_service_user_reach(bindir)
        root = Path(tempfile.mkdtemp(prefix="dbtt-pg-"))
        _give_to_service_user(root)
        server = cls(bindir=bindir, root=root, kind=kind)
        server._init()
        server._start()
        return server

    def _run(self, *command: str) -> None:
        done = subprocess.run(_as_service_user(list(command)), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed:\n{done.stdout}\n{done.stderr}")

    def _init(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        _give_to_service_user(pwfile)
        self._run(
            str(self.bindir / "initdb"),
            "-D", str(self.data_dir),
            "-U", self.user,
            "--pwfile", str(pwfile),
            "--auth", "scram-sha-256",
            "--encoding", "UTF8",
            "--no-sync",
        )  # fmt: skip
        pwfile.unlink()

    def _start(self) -> None:
        options = f"-c listen_addresses={self.host} -p {self.port} -c unix_socket_directories={self.root} -c fsync=off"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D", str(self.data_dir),
            "-l", str(self.root / "server.log"),
            "-o", options,
            "-w", "-t", str(START_SECONDS),
            "start",
        )  # fmt: skip
        self._wait_until_accepting()

    def _wait_until_accepting(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                psycopg2.connect(self.dsn("postgres")).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, dbname: str) -> str:
        return f"host={self.host} port={self.port} user={self.user} password={self.password} dbname={dbname}"

    @contextlib.contextmanager
    def connect(self, dbname: str) -> Iterator[psycopg2.extensions.connection]:
        """An autocommit connection as the superuser."""
        connection = psycopg2.connect(self.dsn(dbname))
        connection.autocommit = True
        try:
            yield connection
        finally:
            connection.close()

    def execute(self, dbname: str, sql: str, params: tuple = ()) -> None:
        with self.connect(dbname) as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)

    def query(self, dbname: str, sql: str, params: tuple = ()) -> list[tuple]:
        with self.connect(dbname) as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def create_database(self) -> str:
        name = f"test_{uuid.uuid4().hex[:10]}"
        self.execute("postgres", f'create database "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.execute("postgres", f'drop database if exists "{name}" with (force)')

    def env(self, dbname: str) -> dict[str, str]:
        """The PG_* variables the example profiles read, pointing at `dbname`."""
        return {
            "PG_HOST": self.host,
            "PG_PORT": str(self.port),
            "PG_USER": self.user,
            "PG_PASSWORD": self.password,
            "PG_DBNAME": dbname,
        }
