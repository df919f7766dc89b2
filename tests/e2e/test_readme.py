"""The README's sample output is what ``opslineage demo`` prints (issue 11 item 6): the quick
start's demo is run as a user runs it, in a new directory, and compared with the README's block,
where ``…`` stands for what changes with the installed code (its version, the digests of what it
computed). Line breaks are not compared: rich wraps long lines where their text ends."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
OPSLINEAGE = str(Path(sys.executable).parent / "opslineage")
INTRO = "and the why-chain of one remediation"


def _sample() -> str:
    text = README.read_text()
    start = text.index("```\n", text.index(INTRO)) + len("```\n")
    return text[start : text.index("```\n", start)]


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_the_readme_shows_what_the_demo_prints_and_it_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPSLINEAGE_STORE", raising=False)
    run = subprocess.run([OPSLINEAGE, "demo"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    expected = _flat(_sample())
    pattern = ".+?".join(re.escape(part) for part in expected.split("…"))
    assert re.fullmatch(pattern, _flat(run.stdout)), (
        f"README sample is stale; the demo printed:\n{run.stdout}"
    )
    assert expected.count("…") < 12  # the wildcards stay few: the sample must say something
    verify = subprocess.run([OPSLINEAGE, "verify"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stdout[-2000:]
    assert re.search(r"^policy: (\d+) of \1 checks passed$", verify.stdout, flags=re.MULTILINE), verify.stdout
