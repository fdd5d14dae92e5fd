"""Run the review page over a small demo database and screenshot it (docs/screenshots/), or just serve it.

    python -m review.screenshots docs/screenshots        # queue.png, listing.png, model.png
    python -m review.screenshots --serve                  # browse the demo at http://127.0.0.1:8765/

The demo listings echo the register page's own notes ("MS has wrong s/n (730144) in title", a duplicate sale,
an SQ-10 number under an MS-10 title). Also used by the browser test to start a real server in a thread.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from db.engine import make_engine, session_scope
from db.ingest import ingest_records
from db.migrate import upgrade_engine
from pipeline.rules import Rules, load_rules
from review.app import LOOPBACK_HOSTS, ReviewConfig, create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

DEMO_RECORDS: list[dict[str, Any]] = [
    {
        "source": "matrixsynth",
        "url": "https://www.matrixsynth.com/2019/03/korg-ms-20-sn-730144.html",
        "external_id": "ms-730144",
        "title": "Korg MS-20 Monophonic Synthesizer SN 730144",
        "body": "Vintage Korg MS-20 in very good condition. Serial number 730144 on the back panel.\n"
        "Comes with the original manual and patch cords. Also selling a Korg SQ-10, see my other listings.",
        "seller": "synthbarn",
        "posted_at": "2019-03-12T09:00:00Z",
        "price": "1450",
        "currency": "USD",
        "images": ["https://images.example.net/ms20-front.jpg", "https://images.example.net/ms20-back.jpg"],
    },
    {
        "source": "matrixsynth",
        "url": "https://www.matrixsynth.com/2017/06/korg-ms-10-sn-152817.html",
        "external_id": "ms-152817",
        "title": "Korg MS-10 Synthesizer SN 152817",
        "body": "Fully serviced MS-10. The s/n on the rear plate reads 135041.",
        "seller": "analoguehaven",
        "posted_at": "2017-06-02T10:00:00Z",
        "images": ["https://images.example.net/ms10-135041.jpg"],
    },
    {
        "source": "reverb",
        "url": "https://reverb.com/item/1001-korg-ms-10",
        "external_id": "1001",
        "title": "Korg MS-10 vintage analog synth s/n 134458",
        "body": "Works perfectly. Serial 134458.",
        "seller": "alice-synths",
        "posted_at": "2021-04-01T12:00:00Z",
        "price": "700",
        "currency": "USD",
    },
    {
        "source": "ebay",
        "url": "https://www.ebay.com/itm/2002",
        "external_id": "2002",
        "title": "KORG MS-10 analog synthesizer #134458 — serviced",
        "body": "Second owner. Serial 134458, see photos.",
        "seller": "retro-gear",
        "posted_at": "2024-09-15T08:00:00Z",
        "price": "820",
        "currency": "EUR",
    },
    {
        "source": "reverb",
        "url": "https://reverb.com/item/1003-korg-sq-10",
        "external_id": "1003",
        "title": "Korg SQ-10 analog sequencer serial 151949",
        "body": "Plastic end cheeks. Serial 151949.",
        "seller": "seqlover",
        "posted_at": "2023-01-20T12:00:00Z",
    },
    {
        "source": "yahoo_auctions",
        "url": "https://page.auctions.yahoo.co.jp/jp/auction/x1234",
        "external_id": "x1234",
        "title": "KORG MS-50 シンセサイザー 製造番号 19039",
        "body": "動作確認済み。",
        "posted_at": "2022-11-05T03:00:00Z",
    },
    {
        "source": "reverb",
        "url": "https://reverb.com/item/1004-korg-ms20",
        "external_id": "1004",
        "title": "Korg MS-20 <script>alert(1)</script> s/n 162102",
        "body": "A hostile title must show as text.",
        "seller": "mallory",
        "posted_at": "2025-02-10T12:00:00Z",
    },
    {
        "source": "reverb",
        "url": "https://reverb.com/item/1005-korg-ms20",
        "external_id": "1005",
        "title": "Korg MS-20 serial 145631",
        "body": "Serial 145631. Keyboard in great shape.",
        "seller": "bob",
        "posted_at": "2020-05-10T12:00:00Z",
    },
    {
        "source": "reverb",
        "url": "https://reverb.com/item/1006-korg-ms20",
        "external_id": "1006",
        "title": "Korg MS-20 s/n 439057",
        "body": "The rare 439 block.",
        "seller": "carol",
        "posted_at": "2018-08-10T12:00:00Z",
    },
]


def build_demo_db(url: str, rules: Rules) -> None:
    """An upgraded database holding the demo listings (idempotent: re-ingesting changes nothing)."""
    engine = make_engine(url)
    try:
        upgrade_engine(engine)
        with session_scope(engine) as session:
            ingest_records(session, DEMO_RECORDS, rules)
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(config: ReviewConfig, port: int | None = None) -> Iterator[str]:
    """The real app under uvicorn in a thread on a loopback port; yields its base URL, stops it afterwards."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the review server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def take_screenshots(base_url: str, out: Path) -> list[Path]:
    """queue.png, listing.png and model.png of the running server, in headless Chromium."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 820})
            page.goto(base_url + "/")
            page.keyboard.press("j")
            shots.append(out / "queue.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
            page.goto(base_url + "/listing/2")  # an SQ-10 number under an MS-10 title, the plate's in the body
            shots.append(out / "listing.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
            page.goto(base_url + "/models/MS-20")
            shots.append(out / "model.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
        finally:
            browser.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="docs/screenshots", type=Path)
    parser.add_argument("--db", help="database URL (default: a demo SQLite file beside the screenshots)")
    parser.add_argument("--serve", action="store_true", help="serve the demo until Ctrl-C instead")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    rules = load_rules()
    url = args.db
    if url is None:
        path = Path("/tmp/korgwatch-review-demo.sqlite")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
        build_demo_db(url, rules)
    config = ReviewConfig(url, rules, reviewer="demo", allowed_hosts=LOOPBACK_HOSTS)
    with running_server(config, args.port if args.serve else None) as base:
        if args.serve:
            print(f"demo review page on {base}/ (Ctrl-C to stop)", file=sys.stderr)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
        for shot in take_screenshots(base, args.out):
            print(shot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
