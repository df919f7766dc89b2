"""What keeps a step cheap on the caller's thread must not change what is recorded."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from opslineage import Tracer
from opslineage.model.facets import Field, SnapshotFacet
from opslineage.sdk import code_version
from opslineage.sdk.refs import facet_wire
from opslineage.sdk.tracer import new_run_id

_STAMP = "2026-12-01T00:00:00.000Z"
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.datetimes(timezones=st.just(UTC)),
)
_CELLS = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=6)  # fmt: skip


def _snapshot(rows: list[list[Any]]) -> SnapshotFacet:
    return SnapshotFacet(
        source="ns:svc",
        captured_at=_STAMP,
        window_start=_STAMP,
        window_end=_STAMP,
        fields=[Field("a", "float")],
        schema_fingerprint="sha256:" + "0" * 64,
        row_count=len(rows),
        rows=rows,
    )


@given(st.lists(st.lists(_CELLS, max_size=4), max_size=4))
def test_the_fast_wire_form_of_a_snapshot_is_its_to_dict(rows: list[list[Any]]) -> None:
    facet = _snapshot(rows)
    fast, slow = facet_wire(facet), facet.to_dict()
    assert repr(fast) == repr(slow) and list(fast) == list(slow)
    assert facet.rows is rows  # left as it was given


def test_code_version_is_read_once_per_code_object_and_follows_a_redefinition() -> None:
    namespace: dict[str, Any] = {}
    exec("def f(x):\n    return x\n", namespace)  # no source file: the version says so
    first = namespace["f"]

    def g(x: float) -> float:
        return x

    def h(x: float) -> float:
        return x + 1

    assert code_version(g) == code_version(g) and "src:" in code_version(g)
    assert code_version(h) != code_version(g)
    assert code_version(first).endswith("+unknown")


def test_run_ids_are_random_version_4_uuids_and_differ_in_a_forked_child() -> None:
    ids = {new_run_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(uuid.UUID(run_id).version == 4 for run_id in list(ids)[:100])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_run_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert uuid.UUID(child).version == 4 and child != new_run_id()


def test_a_datetime_cell_is_recorded_as_its_iso_string_with_the_same_digest() -> None:
    tracer = Tracer.in_memory()
    when = datetime(2026, 12, 1, tzinfo=UTC)
    fields = {"timestamp": "datetime", "cpu": "float"}
    digests = []
    for cell in ("2026-12-01T00:00:00Z", when):
        with tracer.ingest(tracer.source("svc")) as step:
            artifact = step.snapshot([[cell, 1.5]], fields, when, when, captured_at=when)
        assert artifact.facet["rows"] == [["2026-12-01T00:00:00Z", 1.5]]
        digests.append(artifact.digest)
    assert digests[0] == digests[1]
