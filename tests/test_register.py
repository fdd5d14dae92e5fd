"""Register import: bad rows by line number, good ones kept, re-import idempotent, known serials not new."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from fixtures.storage.helpers import Ingest, RecordFactory, appearances_of
from sqlalchemy import Engine, func, select

from db.engine import session_scope
from db.models import RegisterEntry
from db.queries import new_serials
from db.register import import_register_csv
from pipeline.rules import Rules

pytest_plugins = ["fixtures.storage.builders"]

SMALL = Path(__file__).parent / "fixtures" / "storage" / "register_small.csv"
SHIPPED = Path(__file__).resolve().parent.parent / "config" / "register" / "seed.csv"


def test_import_reports_bad_rows_and_keeps_good(engine: Engine, rules: Rules) -> None:
    with session_scope(engine) as session:
        summary = import_register_csv(session, SMALL, rules)
    assert (summary.added, summary.updated, summary.unchanged) == (3, 0, 0)
    assert summary.errors == [
        f"{SMALL}: line 5: unknown model 'Moog'",
        f"{SMALL}: line 6: no serial",
        f"{SMALL}: line 7: date 'March 2020' is not YYYY-MM-DD, YYYY-MM or YYYY",
    ]
    with session_scope(engine) as session:
        rows = session.execute(
            select(RegisterEntry.model, RegisterEntry.serial).order_by(RegisterEntry.serial)
        ).all()
    assert [tuple(r) for r in rows] == [("MS-10", "134458"), ("MS-20", "142817"), ("Delta", "283648")]


def test_reimport_is_idempotent(engine: Engine, rules: Rules) -> None:
    with session_scope(engine) as session:
        import_register_csv(session, SMALL, rules)
    with session_scope(engine) as session:
        again = import_register_csv(session, SMALL, rules)
        assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
        assert session.scalar(select(func.count()).select_from(RegisterEntry)) == 3


def test_registered_serial_in_a_listing_is_a_duplicate_sale(
    engine: Engine, rules: Rules, ingest: Ingest, make_record: RecordFactory
) -> None:
    with session_scope(engine) as session:
        import_register_csv(session, SMALL, rules)
    summary = ingest(make_record(title="Korg MS-20 s/n 142817"))
    assert (summary.instruments_new, summary.duplicate_sales) == (0, 1)
    # ...unless it is the very listing the register cites.
    ingest(make_record(title="Korg Delta s/n 283648", url="https://reverb.com/item/1"))
    with session_scope(engine) as session:
        assert [a.kind for a in appearances_of(session, "Delta", "283648")] == ["new"]


def test_import_after_ingest_reclassifies(
    engine: Engine, rules: Rules, ingest: Ingest, make_record: RecordFactory
) -> None:
    ingest(make_record(title="Korg MS-20 s/n 142817"))
    with session_scope(engine) as session:
        summary = import_register_csv(session, SMALL, rules)
        assert summary.reclassified == 1
    with session_scope(engine) as session:
        assert [a.kind for a in appearances_of(session, "MS-20", "142817")] == ["duplicate_sale"]
        assert new_serials(session, since=date(2000, 1, 1)) == []


def test_missing_columns(engine: Engine, rules: Rules, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("name,number\nMS-20,142817\n", encoding="utf-8")
    with session_scope(engine) as session:
        summary = import_register_csv(session, path, rules)
    assert summary.added == 0
    assert summary.errors == [
        f"{path}: line 1: missing column(s) model, serial (expected model, serial, date, note, url)"
    ]


@pytest.mark.skipif(not SHIPPED.exists(), reason="config/register/seed.csv not shipped yet")
def test_shipped_register_imports_cleanly(sqlite_engine: Engine, rules: Rules) -> None:
    with session_scope(sqlite_engine) as session:
        summary = import_register_csv(session, SHIPPED, rules)
    assert summary.errors == []
    assert summary.added > 0
    with session_scope(sqlite_engine) as session:
        again = import_register_csv(session, SHIPPED, rules)
    assert again.added == 0 and again.updated == 0
