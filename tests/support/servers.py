"""Real servers for the tests, started on 127.0.0.1 on a free port and stopped afterwards.

`make test` installs the Debian packages (postgresql); a missing binary is a test failure with
a message saying so, never a silent skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    if not found[-1]:
        raise RuntimeError(
            f"PostgreSQL's {name} not found: `apt-get install -y postgresql` (make test does this)"
        )
    return found[-1]


@dataclass(frozen=True)
class Postgres:
    port: int
    user: str = "postgres"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """initdb + pg_ctl start a throwaway cluster (trust auth, UTC, fsync off); stop and delete
    it."""
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    root = tempfile.mkdtemp(prefix="skewless-pg-", dir="/tmp")
    os.chmod(root, 0o777)
    data = os.path.join(root, "data")
    port = free_port()
    user = "postgres" if as_root else os.environ.get("USER", "postgres")

    def run(*cmd: str) -> None:
        proc = subprocess.run([*prefix, *cmd], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stdout}{proc.stderr}")

    try:
        run(_pg_bin("initdb"), "-D", data, "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync")
        run(
            _pg_bin("pg_ctl"),
            "-D",
            data,
            "-l",
            os.path.join(root, "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
            "-c timezone=UTC -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            "start",
        )
        yield Postgres(port=port, user=user)
    finally:
        if os.path.exists(os.path.join(data, "postmaster.pid")):
            subprocess.run(
                [*prefix, _pg_bin("pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"],
                capture_output=True,
            )
            time.sleep(0.2)
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Redis:
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_redis(
    dump_dir: str | os.PathLike | None = None, port: int | None = None
) -> subprocess.Popen:
    """Start a redis-server on 127.0.0.1:``port`` (a free one when None) and wait until it
    answers PING (after loading ``dump_dir/online.rdb``, if there is one). It never saves by
    itself; with ``dump_dir`` a ``SAVE`` writes there. The caller stops it (``terminate``,
    ``wait``): a benchmark stops and restarts one on the same port and dump to inject a fault."""
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(exe):
        raise RuntimeError(
            "redis-server not found: `apt-get install -y redis-server` (make test does this)"
        )
    port = port or free_port()
    dump = ["--dir", str(dump_dir), "--dbfilename", "online.rdb"] if dump_dir is not None else []
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            *dump,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    proc.port = port  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):  # -LOADING while it reads the dump
                    return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"redis-server did not start: {proc.stderr.read().decode()[-500:]}")
        time.sleep(0.05)


@contextmanager
def redis_server(
    dump_dir: str | os.PathLike | None = None, port: int | None = None
) -> Iterator[Redis]:
    """A throwaway redis-server (:func:`start_redis`) on ``port`` or a free one, stopped
    afterwards."""
    proc = start_redis(dump_dir, port)
    try:
        yield Redis(proc.port)  # type: ignore[attr-defined]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
