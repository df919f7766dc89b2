"""Tests for loading and windowing ``timestamp,value`` telemetry CSV files."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from opslineage.demo.detector import RobustZModel, rolling_features
from opslineage.demo.replay import CsvSeries

NAB = Path("/work/shared/data/nab/realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv")


def _write(tmp_path: Path, text: str | bytes, name: str = "cpu_series.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def test_load_parses_rows_as_utc_and_digests_the_bytes(tmp_path: Path) -> None:
    path = _write(tmp_path, "timestamp,value\n2014-02-14 14:30:00,0.132\n2014-02-14 14:35:00,12\n")
    series = CsvSeries.load(path)
    assert series.path == path and series.name == "cpu_series"
    assert series.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert series.rows == [
        (datetime(2014, 2, 14, 14, 30, tzinfo=UTC), 0.132),
        (datetime(2014, 2, 14, 14, 35, tzinfo=UTC), 12.0),
    ]


def test_load_tolerates_bom_crlf_blank_lines_and_offsets(tmp_path: Path) -> None:
    text = "\ufefftimestamp,value\r\n2014-02-14T14:30:00+01:00, 1.5\r\n\r\n2014-02-14 14:35:00,2\r\n"
    series = CsvSeries.load(str(_write(tmp_path, text)))
    assert series.rows == [
        (datetime(2014, 2, 14, 13, 30, tzinfo=UTC), 1.5),
        (datetime(2014, 2, 14, 14, 35, tzinfo=UTC), 2.0),
    ]


def test_digest_changes_with_the_bytes(tmp_path: Path) -> None:
    a = CsvSeries.load(_write(tmp_path, "timestamp,value\n2014-02-14 14:30:00,1\n", "a.csv"))
    b = CsvSeries.load(_write(tmp_path, "timestamp,value\n2014-02-14 14:30:00,1.0\n", "b.csv"))
    assert a.rows == b.rows and a.digest != b.digest


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "missing header"),
        ("time,val\n2014-02-14 14:30:00,1\n", 1, "missing header"),
        ("2014-02-14 14:30:00,1\n", 1, "missing header"),
        ("timestamp,value\n2014-02-14 14:30:00,1\nyesterday,2\n", 3, "bad timestamp"),
        ("timestamp,value\n2014-02-14 14:30:00,1\n2014-02-30 00:00:00,2\n", 3, "bad timestamp"),
        ("timestamp,value\n2014-02-14 14:30:00,abc\n", 2, "non-numeric value"),
        ("timestamp,value\n2014-02-14 14:30:00,\n", 2, "non-numeric value"),
        ("timestamp,value\n2014-02-14 14:30:00,nan\n", 2, "non-finite value"),
        ("timestamp,value\n\n2014-02-14 14:30:00,1,2\n", 3, "expected 2 fields"),
    ],
)
def test_malformed_files_name_the_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = _write(tmp_path, text, "broken.csv")
    with pytest.raises(ValueError, match=message) as info:
        CsvSeries.load(path)
    assert str(path) in str(info.value) and f"line {line}:" in str(info.value)


def test_non_utf8_file_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, b"timestamp,value\n2014-02-14 14:30:00,\xff\n", "latin.csv")
    with pytest.raises(ValueError, match="UTF-8") as info:
        CsvSeries.load(path)
    assert str(path) in str(info.value)


def test_windows_are_consecutive_chunks(tmp_path: Path) -> None:
    lines = [f"2014-02-14 14:{m:02d}:00,{m}" for m in range(10)]
    series = CsvSeries.load(_write(tmp_path, "timestamp,value\n" + "\n".join(lines) + "\n"))
    chunks = list(series.windows(4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert [row for chunk in chunks for row in chunk] == series.rows
    assert [len(c) for c in series.windows(4, drop_partial=True)] == [4, 4]
    assert list(series.windows(20)) == [series.rows]
    with pytest.raises(ValueError):
        list(series.windows(0))


def test_header_only_file_is_an_empty_series(tmp_path: Path) -> None:
    series = CsvSeries.load(_write(tmp_path, "timestamp,value\n"))
    assert series.rows == [] and list(series.windows(3)) == []


@pytest.mark.skipif(not NAB.exists(), reason="NAB data not available")
def test_real_nab_series_loads_and_feeds_the_detector() -> None:
    series = CsvSeries.load(NAB)
    assert series.name == "ec2_cpu_utilization_24ae8d" and len(series.rows) == 4032
    assert series.rows[0] == (datetime(2014, 2, 14, 14, 30, tzinfo=UTC), 0.132)
    assert series.digest == hashlib.sha256(NAB.read_bytes()).hexdigest()
    records = series.records("cpu")
    features = [rolling_features(records[max(0, i - 11) : i + 1]) for i in range(len(records))]
    model = RobustZModel(name="nab-cpu", version="1").fit(features[:1000], ["cpu_last", "cpu_slope"])
    labels = [model.predict(f)[1] for f in features[1000:]]
    assert 0 < labels.count("anomaly") < len(labels) * 0.2
