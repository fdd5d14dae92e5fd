"""Reports: export of new serials (markdown like the seed's lists), review queue, history, stats."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

from fixtures.storage.helpers import Ingest, RecordFactory
from sqlalchemy import Engine

from db.engine import session_scope
from db.queries import german_tank, new_serials, new_serials_markdown, review_queue, stats
from db.register import import_register_csv
from pipeline.rules import Rules

pytest_plugins = ["fixtures.storage.builders"]

SMALL = Path(__file__).parent / "fixtures" / "storage" / "register_small.csv"


def _seed(engine: Engine, rules: Rules, ingest: Ingest, make_record: RecordFactory) -> None:
    with session_scope(engine) as session:
        import_register_csv(session, SMALL, rules)  # knows MS-10 134458 and MS-20 142817
    ingest(
        make_record(title="Korg MS-10 s/n 134458", posted_at="2026-02-01T00:00:00Z"),  # in the register
        make_record(title="Korg MS-10 s/n 135041", posted_at="2026-02-03T00:00:00Z", url="https://ms/135041"),
        make_record(title="Korg MS-10 s/n 130007", posted_at="2026-02-04T00:00:00Z", url="https://ms/130007"),
        make_record(title="Korg MS-20 s/n 144571", posted_at="2026-02-05T00:00:00Z", url="https://ms/144571"),
        make_record(title="Korg MS-20", body="serial 152817", posted_at="2026-02-06T00:00:00Z"),  # pending
        make_record(title="Korg MS-20 s/n 141111", posted_at="2025-12-24T00:00:00Z"),  # before --since
    )


def test_export_excludes_register_and_pending(
    engine: Engine, rules: Rules, ingest: Ingest, make_record: RecordFactory
) -> None:
    _seed(engine, rules, ingest, make_record)
    with session_scope(engine) as session:
        rows = new_serials(session, date(2026, 1, 1))
        assert [(r.model, r.serial) for r in rows] == [
            ("MS-10", "130007"),
            ("MS-10", "135041"),
            ("MS-20", "144571"),
        ]
        assert [r.serial for r in new_serials(session, date(2026, 1, 1), date(2026, 2, 3))] == ["135041"]
    assert new_serials_markdown(rows, rules) == (
        "### MS-10\n\n"
        "- [130007](https://ms/130007) — first seen 2026-02-04 (reverb)\n"
        "- [135041](https://ms/135041) — first seen 2026-02-03 (reverb)\n\n"
        "### MS-20\n\n"
        "- [144571](https://ms/144571) — first seen 2026-02-05 (reverb)\n"
    )


def test_queue_newest_first_and_filters(engine: Engine, ingest: Ingest, make_record: RecordFactory) -> None:
    ingest(make_record(title="Korg MS-20", body="serial 152817"))
    ingest(make_record(title="Korg MS-10", body="serial 999999", source="matrixsynth"), now=None)
    with session_scope(engine) as session:
        items = review_queue(session)
        assert [i.model for i in items] == ["MS-10", "MS-20"]
        assert [i.model for i in review_queue(session, source="reverb")] == ["MS-20"]
        assert [i.model for i in review_queue(session, model="MS-10")] == ["MS-10"]
        assert review_queue(session, code="no_such_code") == []


def test_stats_per_block(engine: Engine, rules: Rules, ingest: Ingest, make_record: RecordFactory) -> None:
    _seed(engine, rules, ingest, make_record)
    with session_scope(engine) as session:
        rows = {(s.model, s.block): s for s in stats(session, rules)}
    ms10 = rows[("MS-10", "13nnnn")]
    assert (ms10.units, ms10.lowest, ms10.highest) == (3, "130007", "135041")
    # offsets from the first MS-10 (130000): 8, 4459, 5042 → 5042 + 5042/3 − 1
    assert ms10.estimate is not None and ms10.estimate.value == round(5042 + 5042 / 3 - 1)
    # the 90 % interval runs from m to m·0.1^(−1/k)
    assert (ms10.estimate.low, ms10.estimate.high, ms10.estimate.serials) == (5042, math.ceil(5042 * 10 ** (1 / 3)), 3)
    assert rows[("MS-20", "14nnnn")].units == 3  # 142817 (register), 144571, 141111; 152817 is pending


def test_german_tank() -> None:
    assert german_tank([]) is None
    assert german_tank([10]) == 19
    assert german_tank([2, 4, 10]) == round(10 + 10 / 3 - 1)
