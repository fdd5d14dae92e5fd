"""Photos used where the keeper decides: a repost recognised by re-encoded photos under a new seller and new URLs,
the matching pair kept as the reason, and `photo_reused` when another serial's earlier listing has the photos.

Real photo files (drawn with Pillow, re-uploaded as a marketplace would: resized and recompressed), real rows
and the real band index, on SQLite and PostgreSQL; the photos are kept inside the ingest transaction before
classification, as the crawl's hook does.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from fixtures.storage.helpers import NOW, RecordFactory, appearances_of, open_flags
from fixtures.storage.photos import jpeg, keep_photo, keeping_analyser, picture, reuploaded
from sqlalchemy import Engine

from db.engine import session_scope
from db.ingest import DEFAULT_REPOST_WINDOW, ingest_records, reclassify_instruments
from db.photo_matching import PHOTO_REUSED, SAME_PHOTO_RULE, kept_photos, shared_photos
from pipeline.rules import Rules

pytest_plugins = ["fixtures.storage.builders"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ingest(engine: Engine, rules: Rules, root: Path, record: dict, photos: list[bytes], when: object = NOW) -> None:
    with session_scope(engine) as session:
        analyser = keeping_analyser(session, root, {record["title"]: photos})
        summary = ingest_records(session, [record], rules, now=when, analyser=analyser)  # type: ignore[arg-type]
        assert not summary.errors, summary.errors


def test_repost_with_reencoded_photos_under_new_seller(
    engine: Engine, rules: Rules, make_record: RecordFactory, tmp_path: Path
) -> None:
    plate, front, other = picture(1), picture(2), picture(3)
    first_photos = [jpeg(front), jpeg(plate)]
    _ingest(
        engine,
        rules,
        tmp_path,
        make_record(title="Korg MS-20 s/n 140144", seller="alice", images=["https://img.example/a/1.jpg"] * 2),
        first_photos,
    )
    # Five months later (outside the same-seller window), another seller, new URLs, the plate photo re-uploaded.
    later = make_record(
        title="KORG MS20 synth serial 140144",
        seller="bob",
        posted_at="2026-08-01T10:00:00+00:00",
        images=["https://cdn.example/x/9.jpg", "https://cdn.example/x/10.jpg"],
    )
    reposted = reuploaded(plate)
    assert _sha(reposted) != _sha(first_photos[1])
    _ingest(engine, rules, tmp_path, later, [jpeg(other), reposted])

    with session_scope(engine) as session:
        first, second = appearances_of(session, "MS-20", "140144")
        assert (first.kind, second.kind) == ("new", "repost")
        evidence = second.kind_evidence
        assert evidence is not None and evidence["rule"] == SAME_PHOTO_RULE
        assert (evidence["listing_id"], evidence["appearance_id"]) == (first.listing_id, first.id)
        (pair,) = evidence["pairs"]  # the unrelated first photo matches nothing
        assert (pair["position"], pair["sha256"]) == (1, _sha(reposted))
        assert (pair["earlier_position"], pair["earlier_sha256"]) == (1, _sha(first_photos[1]))
        assert 0 <= pair["distance"] <= 3
        assert first.kind_evidence is None


def test_different_photos_of_the_same_serial_stay_a_duplicate_sale(
    engine: Engine, rules: Rules, make_record: RecordFactory, tmp_path: Path
) -> None:
    _ingest(engine, rules, tmp_path, make_record(title="Korg MS-20 s/n 140144", seller="alice"), [jpeg(picture(1))])
    later = make_record(title="Korg MS-20 s/n 140144 restored", seller="bob", posted_at="2026-08-01T10:00:00+00:00")
    _ingest(engine, rules, tmp_path, later, [jpeg(picture(4)), jpeg(picture(5))])
    with session_scope(engine) as session:
        first, second = appearances_of(session, "MS-20", "140144")
        assert (first.kind, second.kind) == ("new", "duplicate_sale")
        assert second.kind_evidence is None
        assert not [f for f in open_flags(session) if f.code == PHOTO_REUSED]


def test_photo_rule_matches_any_earlier_sighting_and_survives_reclassification(
    engine: Engine, rules: Rules, make_record: RecordFactory, tmp_path: Path
) -> None:
    plate = picture(7)
    _ingest(engine, rules, tmp_path, make_record(title="Korg MS-20 140144", seller="a"), [jpeg(plate)])
    _ingest(
        engine,
        rules,
        tmp_path,
        make_record(title="Korg MS-20 140144 mint", seller="b", posted_at="2026-05-01T10:00:00+00:00"),
        [jpeg(picture(8))],
    )
    # The third listing re-uses the FIRST listing's plate photo, not the second's.
    third = make_record(title="Korg MS-20 140144 again", seller="c", posted_at="2026-09-01T10:00:00+00:00")
    _ingest(engine, rules, tmp_path, third, [reuploaded(plate)])
    with session_scope(engine) as session:
        apps = appearances_of(session, "MS-20", "140144")
        assert [a.kind for a in apps] == ["new", "duplicate_sale", "repost"]
        assert apps[2].kind_evidence is not None and apps[2].kind_evidence["listing_id"] == apps[0].listing_id
        # A whole reclassification (after a register import or a review) keeps the photo rule and its reason.
        assert reclassify_instruments(session, [apps[0].instrument_id], DEFAULT_REPOST_WINDOW) == 0
    with session_scope(engine) as session:
        apps = appearances_of(session, "MS-20", "140144")
        assert [a.kind for a in apps] == ["new", "duplicate_sale", "repost"]
        assert apps[2].kind_evidence is not None and apps[2].kind_evidence["pairs"][0]["earlier_position"] == 0


def test_photos_kept_after_classification_are_used_when_reclassified(
    engine: Engine, rules: Rules, make_record: RecordFactory, tmp_path: Path
) -> None:
    plate = picture(11)
    _ingest(engine, rules, tmp_path, make_record(title="Korg MS-20 140144", seller="a"), [jpeg(plate)])
    later = make_record(title="Korg MS-20 140144 b", seller="b", posted_at="2026-09-01T10:00:00+00:00")
    _ingest(engine, rules, tmp_path, later, [])
    with session_scope(engine) as session:
        first, second = appearances_of(session, "MS-20", "140144")
        assert second.kind == "duplicate_sale"
        keep_photo(session, tmp_path, second.listing_id, 0, reuploaded(plate), "https://cdn.example/late.jpg")
        assert reclassify_instruments(session, [first.instrument_id], DEFAULT_REPOST_WINDOW) == 1
    with session_scope(engine) as session:
        first, second = appearances_of(session, "MS-20", "140144")
        assert second.kind == "repost" and second.kind_evidence is not None
        assert second.kind_evidence["listing_id"] == first.listing_id


def test_photo_reused_under_a_different_serial_is_flagged(
    engine: Engine, rules: Rules, make_record: RecordFactory, tmp_path: Path
) -> None:
    front = picture(21)
    _ingest(engine, rules, tmp_path, make_record(title="Korg MS-20 s/n 140144", seller="alice"), [jpeg(front)])
    copycat = make_record(title="Korg MS-20 s/n 145201", seller="mallory", posted_at="2026-04-01T10:00:00+00:00")
    _ingest(engine, rules, tmp_path, copycat, [jpeg(picture(22)), reuploaded(front)])
    with session_scope(engine) as session:
        (original,) = appearances_of(session, "MS-20", "140144")
        (copy,) = appearances_of(session, "MS-20", "145201")
        (flag,) = [f for f in open_flags(session) if f.code == PHOTO_REUSED]
        assert (flag.listing_id, flag.appearance_id) == (copy.listing_id, copy.id)
        assert copy.status == "pending" and copy.kind == "new"
        (match,) = flag.details["matches"]
        assert (match["listing_id"], match["serials"], match["position"]) == (original.listing_id, ["MS-20 140144"], 1)
        assert match["earlier_sha256"] == _sha(jpeg(front)) and match["distance"] <= 3
        assert f"earlier listing {original.listing_id} (MS-20 140144)" in flag.details["message"]
        # The earlier listing is not flagged for the later one's copy.
        assert not [f for f in open_flags(session) if f.listing_id == original.listing_id and f.code == PHOTO_REUSED]


def test_photo_reused_flag_stays_once_when_the_listing_is_analysed_again(
    engine: Engine, rules: Rules, make_record: RecordFactory, tmp_path: Path
) -> None:
    front = picture(31)
    _ingest(engine, rules, tmp_path, make_record(title="Korg MS-20 140144", seller="a"), [jpeg(front)])
    copycat = make_record(title="Korg MS-20 145201", seller="m", posted_at="2026-04-01T10:00:00+00:00")
    _ingest(engine, rules, tmp_path, copycat, [reuploaded(front)])
    changed = {**copycat, "body": "price lowered"}
    _ingest(engine, rules, tmp_path, changed, [], when=NOW + timedelta(days=1))
    with session_scope(engine) as session:
        flags = [f for f in open_flags(session) if f.code == PHOTO_REUSED]
        assert len(flags) == 1


def test_shared_photos_keeps_different_pictures_apart(
    engine: Engine, tmp_path: Path, make_record: RecordFactory
) -> None:
    """Over 12 pictures and their re-uploads: every re-upload matches its own picture and no other."""
    seeds = range(40, 52)
    with session_scope(engine) as session:
        from db.models import Listing, Source

        source = Source(name="reverb")
        session.add(source)
        session.flush()
        ids = []
        for n, seed in enumerate(seeds):
            for copy, data in enumerate((jpeg(picture(seed)), reuploaded(picture(seed)))):
                listing = Listing(
                    source_id=source.id,
                    external_id=f"{n}-{copy}",
                    url=f"https://x/{n}/{copy}",
                    title="t",
                    content_hash="c",
                    record_hash="r",
                    first_seen=NOW,
                    last_seen=NOW,
                )
                session.add(listing)
                session.flush()
                keep_photo(session, tmp_path, listing.id, 0, data, listing.url)
                ids.append(listing.id)
        photos = kept_photos(session, ids)
        originals = [photos[ids[2 * i]] for i in range(len(seeds))]
        copies = [photos[ids[2 * i + 1]] for i in range(len(seeds))]
        missed = sum(1 for i in range(len(seeds)) if not shared_photos(copies[i], originals[i]))
        false = sum(
            1 for i in range(len(seeds)) for j in range(len(seeds)) if i != j and shared_photos(copies[i], originals[j])
        )
        assert (missed, false) == (0, 0)


def test_an_instruments_photos_are_read_through_indexes(sqlite_engine: Engine) -> None:
    """The photo rule's read never scans appearances, listing_photos or photos (SQLite's query plan)."""
    from db.photo_matching import instrument_photos_statement

    with session_scope(sqlite_engine) as session:
        compiled = instrument_photos_statement(session, [1, 2, 3]).compile(session.get_bind())
        params = tuple(compiled.construct_params()[name] for name in compiled.positiontup or ())
        plan = "\n".join(
            row[3] for row in session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)
        )
    for table in ("appearances", "listing_photos", "photos"):
        assert f"SCAN {table}" not in plan, plan
    assert "SEARCH appearances USING INDEX ix_appearances_instrument_id_seen_at" in plan, plan
    assert "SEARCH listing_photos USING INDEX" in plan and "SEARCH photos USING INTEGER PRIMARY KEY" in plan, plan
