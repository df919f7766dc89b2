"""What several benchmarks share: a free loopback port, ``opslineage serve`` in a subprocess, and a
PostgreSQL database of their own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

__all__ = ["ADMIN", "NATS", "Server", "database", "free_port"]

ADMIN = "postgresql://postgres@127.0.0.1/postgres"
NATS = "nats://127.0.0.1:4222"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``opslineage serve`` in a subprocess on a free port, stopped on exit.

    Args:
        store: a SQLite file, or any store URL.
        key: the log key to sign with (``OPSLINEAGE_KEY``); None leaves the environment's.
    """

    def __init__(self, store: Path | str, *, key: Path | None = None, timeout: float = 30.0) -> None:
        self.store = f"sqlite:///{store}" if isinstance(store, Path) else store
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, **({"OPSLINEAGE_KEY": str(key)} if key else {})}
        self._timeout = timeout
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "opslineage.cli.main", "serve"]
        process = subprocess.Popen(
            [*command, "--port", str(self.port), "--store", self.store],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self._env,
        )
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                process.wait()
                raise RuntimeError(f"the server did not start (exit status {process.returncode})")
            time.sleep(0.05)

    def kill(self) -> None:
        """``kill -9`` the server, and wait until it is gone."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def restart(self) -> None:
        """Start the server again on the same port and store (after :meth:`kill`)."""
        self.process = self._start()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def database() -> Iterator[str]:
    """A new PostgreSQL database with the server's default settings, dropped afterwards."""
    name = f"opslineage_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield f"postgresql://postgres@127.0.0.1/{name}"
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
