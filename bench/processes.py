"""Processes for the online benchmark: each server in its own process group, stopped at exit
(SIGKILL after 10 s); HTTP readiness checks. redis-server is started as the tests start it
(tests/servers.py, re-exported here with its free_port)."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

sys.path.append(str(Path(__file__).resolve().parents[1]))
from tests.support.servers import free_port, redis_server  # noqa: E402,F401  (re-exported for the bench)


@contextlib.contextmanager
def process(
    cmd: list[str], log: Path, ready: Callable[[], bool], **popen
) -> Iterator[subprocess.Popen]:
    """Start ``cmd`` in a new session, wait until ``ready()``; at exit stop its whole group
    (gunicorn forks a worker), SIGKILL after 10 s."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **popen
        )
    try:
        deadline = time.monotonic() + 120
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{cmd[0]} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def redis_command(port: int, command: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(command.encode() + b"\r\n")
        return sock.recv(64)


def http_ready(port: int, path: str = "/health") -> Callable[[], bool]:
    def ready() -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            return conn.getresponse().status == 200
        except OSError:
            return False

    return ready
