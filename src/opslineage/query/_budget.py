"""Time budgets for reads: the server's ``--query-timeout``, after which a query is cancelled.

On SQLite a progress handler, installed for the length of one request on that thread's own
connection, interrupts whatever statement is running once the request is past its deadline. On
PostgreSQL the server's connections carry ``statement_timeout``, and the server cancels any
statement that runs longer. Either way the request ends in :class:`QueryTimeout`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from opslineage.store import Store, StoreError
from opslineage.store.sqlite import SQLiteStore

__all__ = ["QueryTimeout", "time_budget", "with_statement_timeout"]

_QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement it cancelled
_STEPS = 1000  # SQLite virtual machine steps between two looks at the clock


class QueryTimeout(Exception):
    """A read ran past the server's time budget and was cancelled."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the query ran past the time budget of {seconds:g} s and was cancelled")
        self.seconds = seconds


def with_statement_timeout(url: str, seconds: float) -> str:
    """``url`` with ``statement_timeout`` set for its sessions when it names PostgreSQL; else ``url``."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        return url
    query = dict(parse_qsl(parts.query))
    setting = f"-c statement_timeout={max(1, round(seconds * 1000))}"
    query["options"] = f"{query['options']} {setting}" if query.get("options") else setting
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


@contextmanager
def time_budget(store: Store, seconds: float) -> Iterator[None]:
    """Run the block's reads of ``store`` within ``seconds``.

    Raises:
        QueryTimeout: a statement was cancelled because the budget ran out.
    """
    db = store.db if isinstance(store, SQLiteStore) else None
    deadline = time.monotonic() + seconds
    if db is not None:
        db.set_progress_handler(lambda: time.monotonic() > deadline, _STEPS)
    try:
        yield
    except sqlite3.OperationalError as error:
        if db is not None and time.monotonic() > deadline and "interrupted" in str(error):
            raise QueryTimeout(seconds) from None
        raise
    except StoreError as error:
        if getattr(error.__context__, "sqlstate", None) == _QUERY_CANCELED:
            raise QueryTimeout(seconds) from None
        raise
    finally:
        if db is not None:
            db.set_progress_handler(None, _STEPS)
