"""A real PostgreSQL 15 server for the test run, in a temporary directory."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from dataclasses import dataclass

from tests.support import procs


def _bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        procs.require_binary("/usr/lib/postgresql/15/bin/postgres", "postgresql")
    return os.path.dirname(found[-1])


@dataclass
class PostgresServer:
    port: int
    root: str
    proc: subprocess.Popen[bytes]

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "crm_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(
            [os.path.join(_bindir(), "psql") if os.path.exists(os.path.join(_bindir(), "psql"))
             else "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
            check=True, capture_output=True, text=True)
        return out.stdout

    def stop(self) -> None:
        procs.stop(self.proc, signal.SIGINT)
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(*, durable: bool = False) -> PostgresServer:
    """durable=False turns fsync off: fine for tests, not for benchmarks."""
    bindir = _bindir()
    root = tempfile.mkdtemp(prefix="crm-pg-")
    data, sock = os.path.join(root, "data"), os.path.join(root, "sock")
    os.makedirs(sock)
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        shutil.chown(root, user, user)
        shutil.chown(sock, user, user)
        os.chmod(root, 0o755)
    log = os.path.join(root, "postgres.log")
    init = ["runuser", "-u", user, "--"] if user else []
    subprocess.run([*init, os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres",
                    "-A", "trust", "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
    port = procs.free_port()
    fast = [] if durable else ["-c", "fsync=off", "-c", "synchronous_commit=off",
                               "-c", "full_page_writes=off"]
    proc = procs.start(
        [os.path.join(bindir, "postgres"), "-D", data, "-k", sock, "-p", str(port),
         "-h", "127.0.0.1", *fast, "-c", "max_connections=200"],
        log_path=log, user=user)
    procs.wait_port(port, proc, log_path=log)
    server = PostgresServer(port=port, root=root, proc=proc)
    # Accepting TCP is not yet accepting queries.
    procs.wait_for(lambda: _ready(server), what="postgres ready")
    return server


def _ready(server: PostgresServer) -> bool:
    try:
        server.psql("SELECT 1")
        return True
    except subprocess.CalledProcessError:
        return False
