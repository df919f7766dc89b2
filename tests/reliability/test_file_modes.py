"""What we create on disk is the owner's alone (issue 10, defect 9): the SQLite store file and its
-wal and -shm, the log's key files and their directory, archive segments and their directory.
A log key that others may read is used with one warning that names the file and its mode."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import record_chain
from opslineage import Tracer, open_store
from opslineage.ledger.keys import create_key, load_private_key
from opslineage.store.archive import archive_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_sqlite_store_and_its_wal_are_the_owners_alone(tmp_path: Path) -> None:
    path = tmp_path / "new" / "lineage.db"
    with open_store(f"sqlite:///{path}") as store:
        tracer = Tracer("test", store=store, sync=True)
        record_chain(tracer)
        tracer.flush()
        for name in ("lineage.db", "lineage.db-wal", "lineage.db-shm"):
            assert mode(path.parent / name) == 0o600, name
    assert mode(path.parent) == 0o700


def test_key_files_are_the_owners_alone(tmp_path: Path) -> None:
    create_key(tmp_path / "keys" / "log.key")
    assert mode(tmp_path / "keys") == 0o700
    assert mode(tmp_path / "keys" / "log.key") == 0o600
    assert mode(tmp_path / "keys" / "log.pub") == 0o600


def test_a_key_others_may_read_is_used_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "log.key"
    create_key(path)
    with caplog.at_level(logging.WARNING, logger="opslineage.ledger.keys"):
        load_private_key(path)
        assert caplog.records == []
        path.chmod(0o644)
        load_private_key(path)
        load_private_key(path)
    assert [record.getMessage() for record in caplog.records] == [
        f"the log key {path} has mode 0644, open to others: run `chmod 600 {path}`"
    ]


def test_archive_segments_and_their_directory_are_the_owners_alone(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'lineage.db'}") as store:
        tracer = Tracer("test", store=store, sync=True)
        record_chain(tracer)
        tracer.flush()
        archive_store(store, through_seq=store.log_size(), directory=tmp_path / "archive")
    segments = list((tmp_path / "archive").iterdir())
    assert segments and all(mode(segment) == 0o600 for segment in segments)
    assert mode(tmp_path / "archive") == 0o700
