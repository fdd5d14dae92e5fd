"""The review page over HTTP (Starlette's TestClient) on a real database: every route, every decision, CSRF,
escaping of hostile listings, auth and the security headers."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient
from typer import Typer
from typer.testing import CliRunner

from db.engine import make_engine, session_scope
from db.ingest import ingest_records
from db.migrate import upgrade, upgrade_engine
from db.models import Appearance, Flag, Instrument, ReviewLog
from korgwatch.commands import serve as serve_command
from pipeline.rules import Rules
from review.app import ReviewConfig, create_app

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script>"


def record(n: int, title: str, body: str = "", **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "source": "reverb",
        "url": f"https://reverb.com/item/{n}",
        "external_id": str(n),
        "title": title,
        "body": body,
        "seller": f"seller-{n}",
        "posted_at": "2026-03-01T10:00:00+00:00",
        "images": [],
    }
    data.update(over)
    return data


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(sqlite_url)
    upgrade_engine(eng)
    yield eng
    eng.dispose()


Ingest = Callable[..., None]


@pytest.fixture
def ingest(engine: Engine, rules: Rules) -> Ingest:
    def run(*records: dict[str, Any], now: datetime = NOW) -> None:
        with session_scope(engine) as session:
            ingest_records(session, list(records), rules, now=now)

    return run


def make_client(engine: Engine, rules: Rules, **config: Any) -> TestClient:
    url = engine.url.render_as_string(hide_password=False)
    return TestClient(create_app(ReviewConfig(url, rules, reviewer="tester", **config), engine=engine))


@pytest.fixture
def client(engine: Engine, rules: Rules) -> TestClient:
    return make_client(engine, rules)


def csrf_of(client: TestClient, path: str = "/") -> str:
    """The CSRF token the page's forms carry (loading a page also sets the cookie it is bound to)."""
    html = client.get(path).text
    match = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def flag_ids(engine: Engine, status: str = "open") -> list[int]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Flag.id).where(Flag.status == status).order_by(Flag.id)))


def flag_of(engine: Engine, flag_id: int) -> Flag:
    with session_scope(engine) as session:
        flag = session.get(Flag, flag_id)
        assert flag is not None
        return flag


def log_actions(engine: Engine) -> list[tuple[str, str]]:
    with session_scope(engine) as session:
        return [(e.action, e.reviewer) for e in session.scalars(select(ReviewLog).order_by(ReviewLog.id))]


@pytest.fixture
def flagged(ingest: Ingest, engine: Engine) -> int:
    """The register's own example: MS has the wrong s/n (730144) in the title; one open flag."""
    ingest(
        record(
            1,
            "Korg MS-20 SN 730144",
            "Serial 730144 on the back panel.",
            images=["https://img.example.net/a.jpg", "javascript:alert(1)"],
        )
    )
    (flag_id,) = flag_ids(engine)
    return flag_id


# --- pages ----------------------------------------------------------------------------------------------


def test_queue_shows_open_flags_with_the_serial_highlighted(client: TestClient, flagged: int) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert 'Korg MS-20 SN <mark class="recorded"' in html and ">730144</mark>" in html
    assert "730144 fits Poly-61 (7nnnnn), not MS-20 (14nnnn, 439nnn)" in html
    assert "serial outside blocks <b>1</b>" in html
    assert f'action="/flags/{flagged}/confirm"' in html


def test_queue_counts_filters_and_order(client: TestClient, ingest: Ingest, engine: Engine) -> None:
    ingest(record(1, "Korg MS-20 SN 730144"), now=NOW)
    ingest(record(2, "Korg MS-10 SN 152817", source="matrixsynth"), now=NOW + timedelta(hours=1))
    ingest(record(3, "Korg MS-50 serial 19039"), now=NOW + timedelta(hours=2))
    html = client.get("/").text
    assert html.index("19039") < html.index("152817") < html.index("730144")  # newest first
    assert "serial outside blocks <b>2</b>" in html and "serial wrong length <b>1</b>" in html
    assert "730144" not in client.get("/?code=serial_wrong_length").text
    only = client.get("/?source=matrixsynth").text
    assert "152817" in only and "730144" not in only
    by_model = client.get("/?model=MS-20").text
    assert "730144" in by_model and "152817" not in by_model
    assert "Nothing to review" in client.get("/?status=confirmed").text
    assert client.get("/?status=bogus").status_code == 400
    assert client.get("/?after=not-a-cursor").status_code == 400
    assert client.get("/?limit=x").status_code == 400


def test_queue_pages_by_cursor(client: TestClient, ingest: Ingest, engine: Engine) -> None:
    serials = ["730144", "152817", "162102", "171234", "191234", "211234", "231234"]
    for n, serial in enumerate(serials):
        # two flags per instant: the id breaks the tie
        ingest(record(n, f"Korg MS-20 SN {serial}"), now=NOW + timedelta(hours=n // 2))
    seen: list[str] = []
    url: str | None = "/?limit=3"
    pages = 0
    while url:
        html = client.get(url).text
        seen += re.findall(r'<td class="serial">(\d+)</td>', html)
        match = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = match.group(1).replace("&amp;", "&") if match else None
        assert "OFFSET" not in (url or "").upper()
        pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(serials) and len(seen) == len(set(seen))


def test_hostile_strings_are_text(client: TestClient, ingest: Ingest, engine: Engine) -> None:
    ingest(
        record(
            1,
            f"Korg MS-20 {HOSTILE} s/n 730144",
            '<img src=x onerror="alert(2)"> serial 730144',
            url="javascript:alert(3)",
            images=["javascript:alert(4)", "https://img.example.net/ok.jpg"],
            seller=HOSTILE,
        )
    )
    assert len(flag_ids(engine)) == 1
    for path in ("/", "/listing/1"):
        html = client.get(path).text
        assert HOSTILE not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "javascript:" not in html
    listing = client.get("/listing/1").text
    # Nothing kept: the marketplace photo is a link (img-src 'self'), an image only with remote_photos.
    assert 'href="https://img.example.net/ok.jpg"' in listing and '<img src="https://img.example.net' not in listing


def test_listing_page(client: TestClient, ingest: Ingest, flagged: int) -> None:
    ingest(record(2, "Korg Poly-61 s/n 730144", seller="someone-else", posted_at="2026-05-01T00:00:00Z"))
    html = client.get("/listing/1").text
    assert "730144 fits Poly-61 (7nnnnn), not MS-20 (14nnnn, 439nnn)" in html
    assert '<li class="nofit">14nnnn' in html and '<li class="nofit">439nnn' in html
    assert 'class="recorded" title="MS-20 serial (recorded)"' in html  # title span, labelled
    assert 'class="candidate"' in html  # the body's 730144 as another candidate
    assert 'href="https://img.example.net/a.jpg"' in html
    assert f'action="/flags/{flagged}/model"' in html and "it is a Poly-61" in html
    assert "Every appearance of 730144" in html
    assert "Korg Poly-61 s/n 730144" in html  # the other listing with the same serial, on the timeline
    assert client.get("/listing/999").status_code == 404


def test_listing_shows_suggestions_and_revisions(client: TestClient, ingest: Ingest, engine: Engine) -> None:
    ingest(record(1, "Korg MS-20 SN 152817"))
    ingest(record(1, "Korg MS-20 SN 152817", "edited: see photos"), now=NOW + timedelta(days=1))
    html = client.get("/listing/1").text
    assert len(flag_ids(engine)) == 1
    assert re.search(r'name="serial" value="142817">.*?<button class="suggest"', html, re.S)
    assert "Earlier text" in html


def test_listing_marks_numbers_the_analyser_set_aside(client: TestClient, ingest: Ingest) -> None:
    ingest(record(1, "Korg MS-20 Synthesizer SN 144571", "Also for sale: a Korg Poly-61, its plate reads 702650."))
    html = client.get("/listing/1").text
    assert 'title="MS-20 serial (recorded)" data-label="MS-20 serial (recorded)">144571</mark>' in html
    # The Poly-61's plate sentence is a cued number now (issue 12, class 3): shown with its cue, as the others.
    label = "candidate 702650 after “plate reads”"
    assert f'title="{label}" data-label="{label}">702650</mark>' in html


def test_listing_says_when_the_analyser_read_it_in_part(client: TestClient, ingest: Ingest) -> None:
    long_body = "Korg MS-20 SN 145201. " + "All original, works. " * 4000  # about 84 KB: past the 64 KB read
    ingest(record(1, "Korg MS-20 SN 145201", long_body), record(2, "Korg MS-20 SN 145631"))
    cut = client.get("/listing/1").text
    assert 'class="notice analysis-cut"' in cut and "body: first 65536 of" in cut
    assert "analysis-cut" not in client.get("/listing/2").text


def test_listing_records_the_body_serial_that_fits(client: TestClient, ingest: Ingest) -> None:
    """The seed's MS-10 135041 titled with SQ-10 152817: the body's serial is recorded, the title's kept."""
    ingest(record(1, "Korg MS-10 Synthesizer SN 152817", "The s/n on the rear plate reads 135041."))
    html = client.get("/listing/1").text
    assert 'title="MS-10 serial (recorded)" data-label="MS-10 serial (recorded)">135041</mark>' in html
    assert ">152817</mark>" in html


def test_models_and_model_chart(client: TestClient, ingest: Ingest, flagged: int) -> None:
    ingest(record(2, "Korg MS-20 SN 145631"), record(3, "Korg MS-20 SN 439057"))
    assert "14nnnn, 439nnn" in client.get("/models").text
    svg = client.get("/models/MS-20").text
    assert "<svg" in svg and 'class="block"' in svg and 'class="outside"' in svg
    assert "<circle" in svg and 'class="dot flagged"' in svg
    assert "145631 — first seen 2026-03-01" in svg
    assert client.get("/models/NoSuchModel").status_code == 404


# --- decisions ------------------------------------------------------------------------------------------


def post(client: TestClient, path: str, **form: str) -> Any:
    form.setdefault("csrf", csrf_of(client))
    return client.post(path, data=form, follow_redirects=False)


def test_confirm(client: TestClient, engine: Engine, flagged: int) -> None:
    response = post(client, f"/flags/{flagged}/confirm", next="/")
    assert response.status_code == 303 and response.headers["location"] == f"/?done=confirm&flag={flagged}"
    assert flag_of(engine, flagged).status == "confirmed"
    assert log_actions(engine) == [("confirm", "tester")]
    assert f"Flag {flagged} confirmed." in client.get(response.headers["location"]).text
    assert "Nothing to review" in client.get("/").text  # the flag left the queue


def test_correct_validates_against_the_rules(client: TestClient, engine: Engine, flagged: int) -> None:
    bad = post(client, f"/flags/{flagged}/correct", serial="999999", reason="guess")
    assert bad.status_code == 409 and "999999 fits no block of MS-20" in bad.text
    no_reason = post(client, f"/flags/{flagged}/correct", serial="140144", reason=" ")
    assert no_reason.status_code == 409 and "needs a reason" in no_reason.text
    assert post(client, f"/flags/{flagged}/correct", reason="x").status_code == 409
    assert flag_of(engine, flagged).status == "open"
    good = post(client, f"/flags/{flagged}/correct", serial="140144", reason="plate photo shows 140144")
    assert good.status_code == 303 and good.headers["location"] == f"/listing/1?done=correct&flag={flagged}"
    flag = flag_of(engine, flagged)
    assert (flag.status, flag.note) == ("corrected", "plate photo shows 140144")
    with session_scope(engine) as session:
        serial = session.scalar(select(Instrument.serial).join(Appearance).where(Appearance.listing_id == 1))
        (entry,) = session.scalars(select(ReviewLog)).all()
        assert serial == "140144" and entry.action == "correct" and entry.at is not None


def test_change_model(client: TestClient, engine: Engine, flagged: int) -> None:
    response = post(client, f"/flags/{flagged}/model", model="Poly-61", reason="730144 fits Poly-61")
    assert response.status_code == 303
    with session_scope(engine) as session:
        assert session.scalar(select(Instrument.model).join(Appearance).where(Appearance.listing_id == 1)) == "Poly-61"
    assert post(client, f"/flags/{flagged}/model", model="Poly-61", reason="again").status_code == 409


def test_dismiss_and_note(client: TestClient, engine: Engine, flagged: int) -> None:
    assert post(client, f"/flags/{flagged}/note", note="s/n only visible on box").status_code == 303
    assert post(client, f"/flags/{flagged}/note", note="  ").status_code == 409
    assert post(client, f"/flags/{flagged}/dismiss", note="photo of another unit").status_code == 303
    flag = flag_of(engine, flagged)
    assert (flag.status, flag.note) == ("dismissed", "photo of another unit")
    assert log_actions(engine) == [("note", "tester"), ("dismiss", "tester")]
    html = client.get("/listing/1").text
    assert "s/n only visible on box" in html and "dismissed by tester" in html


def test_mark_appearance_kind(client: TestClient, ingest: Ingest, engine: Engine) -> None:
    ingest(record(1, "Korg MS-10 s/n 134458", posted_at="2026-01-01T00:00:00Z"))
    ingest(record(2, "Korg MS-10 s/n 134458", posted_at="2026-06-01T00:00:00Z"))
    with session_scope(engine) as session:
        second = session.scalar(select(Appearance).where(Appearance.listing_id == 2))
        assert second is not None and second.kind == "duplicate_sale"
        second_id = second.id
    html = client.get("/listing/2").text
    assert f'action="/appearances/{second_id}/kind"' in html and ">repost</button>" in html
    response = post(client, f"/appearances/{second_id}/kind", kind="repost", next="/listing/2")
    assert response.status_code == 303
    assert response.headers["location"] == f"/listing/2?done=kind&appearance={second_id}"
    with session_scope(engine) as session:
        second = session.get(Appearance, second_id)
        assert second is not None and (second.kind, second.kind_locked) == ("repost", True)
    # "a different unit with the same serial": refused while the first sighting holds `new`
    refused = post(client, f"/appearances/{second_id}/kind", kind="new")
    assert refused.status_code == 409 and "already the first sighting" in refused.text
    assert post(client, f"/appearances/{second_id}/kind", kind="bogus").status_code == 409
    assert log_actions(engine) == [("mark_kind", "tester")]


def test_in_place_decision_answers_json(client: TestClient, engine: Engine, flagged: int) -> None:
    token = csrf_of(client)
    response = client.post(f"/flags/{flagged}/confirm", data={"csrf": token}, headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"ok": True, "message": f"Flag {flagged} confirmed.", "undo": f"/flags/{flagged}/reopen"}
    again = client.post(f"/flags/{flagged}/confirm", data={"csrf": token}, headers={"Accept": "application/json"})
    assert again.status_code == 409 and "already confirmed" in again.json()["error"]


def test_unknown_flag_is_404(client: TestClient) -> None:
    assert post(client, "/flags/999/confirm").status_code == 404


def test_next_must_stay_on_this_server(client: TestClient, flagged: int) -> None:
    response = post(client, f"/flags/{flagged}/confirm", next="//evil.example/x")
    assert response.headers["location"].startswith("/listing/1?")


# --- safety ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    ["missing", "wrong", "no-cookie", "cross-origin"],
)
def test_csrf_rejected(client: TestClient, engine: Engine, flagged: int, case: str) -> None:
    token = csrf_of(client)
    data = {"csrf": token}
    headers: dict[str, str] = {}
    if case == "missing":
        data = {}
    elif case == "wrong":
        data = {"csrf": "0" * 64}
    elif case == "no-cookie":
        client.cookies.clear()
    else:
        headers["Origin"] = "https://evil.example"
    response = client.post(f"/flags/{flagged}/confirm", data=data, headers=headers, follow_redirects=False)
    assert response.status_code == 403
    assert flag_of(engine, flagged).status == "open"
    assert log_actions(engine) == []


def test_every_post_route_needs_csrf(client: TestClient, flagged: int) -> None:
    client.get("/")
    for path in ("confirm", "correct", "model", "dismiss", "note"):
        assert client.post(f"/flags/{flagged}/{path}", data={"note": "x"}).status_code == 403
    assert client.post("/appearances/1/kind", data={"kind": "repost"}).status_code == 403


def test_get_never_changes_state(client: TestClient, engine: Engine, flagged: int) -> None:
    assert client.get(f"/flags/{flagged}/confirm").status_code == 405
    assert flag_of(engine, flagged).status == "open"


def test_security_headers(client: TestClient, flagged: int) -> None:
    for path in ("/", "/listing/1", "/models/MS-20", "/static/review.js", "/nope"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
    html = client.get("/listing/1").text
    assert "<script>" not in html.replace('<script src="/static/review.js" defer></script>', "")
    assert " style=" not in html and " on" + "click=" not in html


def test_csrf_cookie_is_httponly_strict(engine: Engine, rules: Rules) -> None:
    cookie = make_client(engine, rules).get("/").headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")


def test_token_requires_basic_auth(engine: Engine, rules: Rules, flagged: int) -> None:
    client = make_client(engine, rules, token="s3cret")
    assert client.get("/").status_code == 401
    assert client.get("/", auth=("alice", "wrong")).status_code == 401
    assert client.get("/static/review.css").status_code == 401
    client.auth = ("alice", "s3cret")
    assert client.get("/").status_code == 200
    assert post(client, f"/flags/{flagged}/confirm").status_code == 303
    assert log_actions(engine) == [("confirm", "alice")]  # the signed-in name goes into the review log
    raw = base64.b64encode(b"alice:s3cret").decode()
    assert TestClient(client.app).get("/", headers={"Authorization": f"Basic {raw}"}).status_code == 200


def test_unknown_host_refused(engine: Engine, rules: Rules) -> None:
    client = make_client(engine, rules, allowed_hosts=("127.0.0.1", "localhost"))
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/", headers={"Host": "127.0.0.1:8000"}).status_code == 200


# --- the command ----------------------------------------------------------------------------------------


@pytest.fixture
def cli() -> Typer:
    app = Typer()
    serve_command.register(app)
    app.command("noop")(lambda: None)  # two commands, so `serve` is a subcommand as in korgwatch
    return app


def test_serve_refuses_the_network_without_a_token(
    cli: Typer, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KORGWATCH_REVIEW_TOKEN", raising=False)
    ran: list[dict[str, Any]] = []
    record = lambda app, sock: ran.append(dict(zip(("host", "port"), sock.getsockname(), strict=True)))  # noqa: E731
    monkeypatch.setattr(serve_command, "run_server", record)
    upgrade(sqlite_url)  # serve reads an existing store only
    result = CliRunner().invoke(cli, ["serve", "--db", sqlite_url, "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "refusing to serve on 0.0.0.0" in result.output and ran == []
    monkeypatch.setenv("KORGWATCH_REVIEW_TOKEN", "k7Qm2xVr9pLw4ZtN8bYc")
    result = CliRunner().invoke(cli, ["serve", "--db", sqlite_url, "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert ran[0]["host"] == "0.0.0.0" and ran[0]["port"] > 0
    assert f"http://0.0.0.0:{ran[0]['port']}/" in result.output  # the URL names the port actually bound


def test_serve_on_loopback_needs_no_token(cli: Typer, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KORGWATCH_REVIEW_TOKEN", raising=False)
    apps: list[Any] = []
    monkeypatch.setattr(serve_command, "run_server", lambda app, sock: apps.append(app))
    upgrade(sqlite_url)  # serve reads an existing store only
    result = CliRunner().invoke(cli, ["serve", "--db", sqlite_url, "--port", "0"])
    assert result.exit_code == 0, result.output
    page = TestClient(apps[0]).get("/", headers={"Host": "127.0.0.1:8000"})
    assert page.status_code == 200 and "Nothing to review" in page.text
    assert TestClient(apps[0]).get("/", headers={"Host": "rebound.example"}).status_code == 400


def test_serve_token_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KORGWATCH_REVIEW_TOKEN", raising=False)
    path = tmp_path / "token"
    path.write_text("from-file\n")
    assert serve_command.review_token(path) == "from-file"
    assert serve_command.review_token(tmp_path / "missing") is None
    monkeypatch.setenv("KORGWATCH_REVIEW_TOKEN", "from-env")
    assert serve_command.review_token(path) == "from-env"


# --- both backends --------------------------------------------------------------------------------------


def test_queue_and_decisions_on_each_backend(db_url: str, rules: Rules) -> None:
    engine = make_engine(db_url)
    try:
        upgrade_engine(engine)
        with session_scope(engine) as session:
            ingest_records(
                session,
                [record(1, "Korg MS-20 SN 730144"), record(2, "Korg MS-10 SN 152817", source="matrixsynth")],
                rules,
                now=NOW,
            )
        client = make_client(engine, rules)
        first, second = flag_ids(engine)
        page = client.get("/?limit=1").text  # same instant: the newer id first
        assert "152817" in page and "730144" not in page and 'rel="next"' in page
        assert client.get("/listing/1").status_code == 200 and client.get("/models/MS-20").status_code == 200
        assert post(client, f"/flags/{first}/correct", serial="140144", reason="photo").status_code == 303
        assert post(client, f"/flags/{second}/dismiss").status_code == 303
        assert flag_ids(engine) == []
        assert [a for a, _ in log_actions(engine)] == ["correct", "dismiss"]
    finally:
        engine.dispose()


def test_different_unit_button(db_url: str, rules: Rules) -> None:
    """The register's "A second MS-10 with this serial number": the button makes a second unit, on both backends."""
    engine = make_engine(db_url)
    upgrade_engine(engine)
    try:
        with session_scope(engine) as session:
            ingest_records(
                session,
                [
                    record(1, "Korg MS-10 s/n 134458", posted_at="2026-01-01T00:00:00Z"),
                    record(2, "Korg MS-10 s/n 134458", posted_at="2026-06-01T00:00:00Z", images=["https://i/2.jpg"]),
                    record(3, "Korg MS-10 s/n 134458", posted_at="2026-09-01T00:00:00Z", images=["https://i/2.jpg"]),
                ],
                rules,
                now=NOW,
            )
        with session_scope(engine) as session:
            ids = {a.listing_id: a.id for a in session.scalars(select(Appearance))}
        client = make_client(engine, rules)
        html = client.get("/listing/2").text
        assert f'action="/appearances/{ids[2]}/unit"' in html and "unit 2" not in html
        # Without the CSRF token: refused, nothing changes.
        assert client.post(f"/appearances/{ids[2]}/unit", data={"also": str(ids[3])}).status_code == 403
        refused = post(client, f"/appearances/{ids[2]}/unit", also="x")
        assert refused.status_code == 409 and "not an appearance id" in refused.text

        token = csrf_of(client)
        response = client.post(
            f"/appearances/{ids[2]}/unit",
            data={"csrf": token, "next": "/listing/2", "also": [str(ids[3])], "note": "visibly different"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert response.headers["location"] == f"/listing/2?done=unit&appearance={ids[2]}"
        with session_scope(engine) as session:
            units = {
                a.listing_id: (a.instrument.unit, a.kind)
                for a in session.scalars(select(Appearance).order_by(Appearance.id))
            }
            assert units == {1: (1, "new"), 2: (2, "new"), 3: (2, "repost")}
        assert log_actions(engine) == [("different_unit", "tester")]

        page = client.get(response.headers["location"]).text
        assert f"Appearance {ids[2]} is now the first sighting of a different unit." in page
        # The timeline shows each unit apart; unit 1 has a single sighting, so no button splits it further.
        assert "MS-10 unit 1</h4>" in page and "MS-10 unit 2</h4>" in page and "this listing: unit 2" in page
        unit1, unit2 = page.split("MS-10 unit 1</h4>")[1].split("MS-10 unit 2</h4>")
        assert f"/appearances/{ids[1]}/unit" not in unit1
        assert f"/appearances/{ids[3]}/unit" in unit2.split("</ol>")[0]

        # Splitting unit 2's only other sighting off again would leave it empty: refused with a message.
        again = post(client, f"/appearances/{ids[2]}/unit", also=str(ids[3]))
        assert again.status_code == 409 and "no other sighting" in again.text
    finally:
        engine.dispose()


# --- undo, reopen and force (issue 13 items 9 and 10) ----------------------------------------------------

JSON = {"Accept": "application/json"}


def test_undo_after_an_in_place_decision(client: TestClient, engine: Engine, flagged: int) -> None:
    """The toast's undo (and `u`) posts the URL the decision answered with; the log keeps both entries."""
    token = csrf_of(client)
    answer = client.post(f"/flags/{flagged}/dismiss", data={"csrf": token}, headers={"Accept": "application/json"})
    undo = client.post(answer.json()["undo"], data={"csrf": token, "undo": "1"}, headers=JSON)
    assert undo.status_code == 200 and undo.json()["message"] == f"Decision on flag {flagged} undone."
    assert flag_of(engine, flagged).status == "open"
    assert log_actions(engine) == [("dismiss", "tester"), ("undo", "tester")]
    assert f'id="flag-{flagged}"' in client.get("/").text  # back in the queue
    again = client.post(
        answer.json()["undo"], data={"csrf": token, "undo": "1"}, headers={"Accept": "application/json"}
    )
    assert again.status_code == 409 and "is open" in again.json()["error"]


def test_the_flash_after_a_decision_offers_undo(client: TestClient, engine: Engine, flagged: int) -> None:
    response = post(client, f"/flags/{flagged}/confirm", next="/listing/1")
    html = client.get(response.headers["location"]).text
    form = re.search(r'<form method="post" action="/flags/(\d+)/reopen" class="undo-form">(.*?)</form>', html, re.S)
    assert form and form.group(1) == str(flagged)
    assert 'name="undo" value="1"' in form.group(2) and 'data-key="u"' in form.group(2)
    undone = post(client, f"/flags/{flagged}/reopen", undo="1", next="/listing/1")
    assert undone.headers["location"] == f"/listing/1?done=undo&flag={flagged}"
    assert "undo-form" not in client.get(undone.headers["location"]).text  # an undo is not undone by `u`
    assert flag_of(engine, flagged).status == "open"


def test_reopen_from_the_listing_page(client: TestClient, engine: Engine, flagged: int) -> None:
    assert f'action="/flags/{flagged}/reopen"' not in client.get("/listing/1").text  # open: nothing to reopen
    post(client, f"/flags/{flagged}/correct", serial="140144", reason="plate photo shows 140144")
    html = client.get("/listing/1").text
    assert re.search(rf'<form method="post" action="/flags/{flagged}/reopen" class="reopen-form">', html)
    response = post(client, f"/flags/{flagged}/reopen", note="plate photo is of another unit", next="/listing/1")
    assert response.headers["location"] == f"/listing/1?done=reopen&flag={flagged}"
    assert flag_of(engine, flagged).status == "open"
    assert log_actions(engine) == [("correct", "tester"), ("reopen", "tester")]
    with session_scope(engine) as session:
        serial = session.scalar(select(Instrument.serial).join(Appearance).where(Appearance.listing_id == 1))
        assert serial == "730144"  # the correction was taken back
    html = client.get(response.headers["location"]).text
    assert f"Flag {flagged} reopened." in html and "plate photo is of another unit" in html


def test_force_is_a_second_explicit_step(client: TestClient, engine: Engine, flagged: int) -> None:
    first = post(client, f"/flags/{flagged}/correct", serial="999999", reason="plate photo", next="/listing/1")
    assert first.status_code == 409 and flag_of(engine, flagged).status == "open"
    form = re.search(
        r'<form method="post" action="(/flags/\d+/correct)" class="force-form">(.*?)</form>', first.text, re.S
    )
    assert form and form.group(1) == f"/flags/{flagged}/correct"
    assert 'name="force" value="1"' in form.group(2) and 'name="serial" value="999999"' in form.group(2)
    assert re.search(r'<input name="reason" required', form.group(2))  # the reason is asked for again
    no_reason = post(client, f"/flags/{flagged}/correct", serial="999999", force="1", reason=" ")
    assert no_reason.status_code == 409 and flag_of(engine, flagged).status == "open"
    kept = post(client, f"/flags/{flagged}/correct", serial="999999", force="1", reason="plate is clear", next="/")
    assert kept.status_code == 303 and flag_of(engine, flagged).status == "corrected"
    with session_scope(engine) as session:
        (entry,) = session.scalars(select(ReviewLog)).all()
        assert (entry.note, entry.new_value["forced"]) == ("plate is clear", True)
        assert entry.new_value["appearance"]["serial"] == "999999"


def test_force_asked_in_place_answers_json(client: TestClient, flagged: int) -> None:
    token = csrf_of(client)
    answer = client.post(
        f"/flags/{flagged}/correct",
        data={"csrf": token, "serial": "999999", "reason": "guess"},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 409 and answer.json()["force"] is True  # the page then asks, as a page


# --- what the page says (issue 13 item 11) ---------------------------------------------------------------


def test_listing_flag_message_describes_blocks_as_the_queue_does(client: TestClient, ingest: Ingest) -> None:
    ingest(record(1, "Korg MS-10 SN 129999"), record(2, "Korg MS-20 SN 121234"))
    for listing in (1, 2):
        html = client.get(f"/listing/{listing}").text
        fit = re.search(r'<p class="fit">(.*?)</p>', html, re.S)
        assert fit
        if listing == 1:
            assert "MS-10 (13nnnn from 130000)" in fit.group(1)
        else:
            assert "GT-6 (12nnnn (uncertain))" in fit.group(1)
    queue = client.get("/").text
    assert "13nnnn from 130000" in queue and "(uncertain)" in queue


def test_price_and_this_listing_are_spaced(client: TestClient, ingest: Ingest) -> None:
    ingest(record(1, "Korg MS-20 SN 730144", price="1100.00", currency="USD"))
    text = re.sub(r"<[^>]+>", "", client.get("/listing/1").text)
    assert re.search(r"1100\.00 USD\s+\(this listing\)", text)


def test_error_pages_are_titled_by_what_happened(client: TestClient, flagged: int) -> None:
    missing = client.get("/listing/999")
    assert missing.status_code == 404 and "<title>Not found — korgwatch review</title>" in missing.text
    refused = post(client, f"/flags/{flagged}/dismiss")
    assert refused.status_code == 303
    assert "<title>Not done — korgwatch review</title>" in post(client, f"/flags/{flagged}/dismiss").text
