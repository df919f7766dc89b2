"""The command line loads a command's dependencies only when that command runs: asking for help
loads no server, bus, demo or export code and none of their heavy libraries."""

from __future__ import annotations

import subprocess
import sys

import pytest

from opslineage.bus import DEFAULT_STREAM, DEFAULT_SUBJECT
from opslineage.bus.worker import DEFAULT_DURABLE
from opslineage.cli.main import main

HEAVY = (
    "fastapi",
    "uvicorn",
    "nats",
    "numpy",
    "prov",
    "psycopg",
    "opslineage.server",
    "opslineage.bus",
    "opslineage.demo",
    "opslineage.interop",
)
_PROBE = """
import contextlib, io, sys
from opslineage.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print("\\n".join(sorted(sys.modules)))
"""


@pytest.mark.parametrize("argv", [["--help"], ["why", "--help"], ["ls", "--help"], ["verify", "--help"]])
def test_help_loads_no_heavy_dependency(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(done.stdout.split())
    assert "opslineage.cli.lineage" in loaded  # the probe did build the parser
    heavy = sorted(name for name in loaded if name in HEAVY or name.startswith(tuple(p + "." for p in HEAVY)))
    assert heavy == []


def test_the_help_names_the_bus_defaults_the_commands_use(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, defaults in (
        (["demo", "--help"], (DEFAULT_STREAM, DEFAULT_SUBJECT)),
        (["worker", "--help"], (DEFAULT_STREAM, DEFAULT_SUBJECT, DEFAULT_DURABLE)),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        shown = " ".join(capsys.readouterr().out.split())
        assert all(f"the bus's, {default})" in shown for default in defaults), (argv, shown)
