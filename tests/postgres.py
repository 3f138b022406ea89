"""A throwaway PostgreSQL server for tests, started from the machine's binaries.

``postgres_server`` (session fixture) runs ``initdb`` into a fresh temporary directory (trust auth,
fsync off), starts ``postgres`` listening only on a Unix socket in that directory (no TCP port, so
nothing clashes with other servers or test runs) and stops it (``pg_ctl stop -m immediate``) at the
end.  ``postgres_url`` (function fixture) creates an empty database per test and returns its
SQLAlchemy URL.  initdb refuses to run as root: as root the server runs as the ``postgres`` user
(created with ``useradd`` when missing).  Without the binaries the tests are skipped with the install
command.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

INSTALL = ("PostgreSQL server binaries not found (initdb, pg_ctl): install them with "
           "'apt-get install postgresql' (Debian/Ubuntu) or 'brew install postgresql', or put their "
           "directory on PATH; the driver comes with pip install -e '.[postgres]'")


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: $PG_BIN, then PATH, then /usr/lib/postgresql/*/bin."""
    candidates = [os.environ.get("PG_BIN", "")]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(os.path.realpath(initdb)).parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    candidates += sorted(glob.glob("/usr/local/pgsql/bin"))
    for c in candidates:
        if c and (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    return None


def _server_user() -> str | None:
    """None when we may run the server ourselves; else the unprivileged user to run it as (root)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True,
                       capture_output=True)
    return "postgres"


class PostgresServer:
    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="compress-pg-"))
        self.data = self.root / "data"
        self.user = _server_user()
        self.role = self.user or pwd.getpwuid(os.geteuid()).pw_name
        if self.user:
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, self.user)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> "PostgresServer":
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", self.role, "--no-sync", "-E", "UTF8")
        opts = f"-k {self.root} -c listen_addresses='' -c fsync=off -c full_page_writes=off -c max_connections=100"
        out = self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "server.log"),
                        "-w", "-t", "60", "start", check=False)
        if out.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace") if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {out.stderr}\n{log[-2000:]}")
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.role}@/{database}?host={self.root}"

    def create_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host=str(self.root), user=self.role, dbname="postgres", autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server():
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(INSTALL)
    pytest.importorskip("psycopg", reason="the PostgreSQL driver is missing: pip install -e '.[postgres]'")
    server = PostgresServer(bin_dir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    return postgres_server.create_database()
