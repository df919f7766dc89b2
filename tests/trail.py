"""Tampering with the access log's tables behind the store's back, for the access-log tests."""

from __future__ import annotations

from conftest import RunSql


def refuse_access_writes(run_sql: RunSql, url: str) -> None:
    """Make the database refuse every new access event, as a full or read-only disk would."""
    if url.startswith("sqlite:///"):
        run_sql(
            url,
            "CREATE TRIGGER no_access BEFORE INSERT ON access_events"
            " BEGIN SELECT RAISE(ABORT, 'access events refused'); END",
        )
        return
    run_sql(
        url,
        "CREATE FUNCTION no_access() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'access events refused'; END $$",
        "CREATE TRIGGER no_access BEFORE INSERT ON access_events FOR EACH ROW EXECUTE FUNCTION no_access()",
    )


def one_byte_changed(url: str, seq: int, old: str, new: str) -> str:
    """The UPDATE that turns ``old`` into ``new`` (one byte apart) in access event ``seq``'s body."""
    if url.startswith("sqlite:///"):
        return f"UPDATE access_events SET body = CAST(replace(CAST(body AS TEXT), '{old}', '{new}') AS BLOB) WHERE seq = {seq}"
    return (
        f"UPDATE access_events SET body = convert_to(replace(convert_from(body, 'UTF8'), '{old}', '{new}'), 'UTF8')"
        f" WHERE seq = {seq}"
    )
