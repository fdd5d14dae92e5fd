"""What `korgwatch demo` shows of notifications: a json:// target to a loopback HTTP recorder, and at the end
the messages it received, so the demo shows where its notifications would have gone without sending anywhere."""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rich.console import Console
from rich.table import Table

from korgwatch.notify.config import EVENT_KINDS, NotifyConfig, Rule, Target


class LoopbackRecorder:
    """An HTTP server on 127.0.0.1 that keeps every JSON message posted to it (Apprise's json:// format)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                with contextlib.suppress(ValueError):
                    recorder.messages.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="korgwatch-demo-sink", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/demo"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class DemoNotifications:
    """Start before the demo's crawls (notifications start then); `finish()` sends and prints what was sent."""

    def __init__(self, db_url: str) -> None:
        from db.engine import make_engine, session_scope
        from db.migrate import upgrade_engine
        from korgwatch.notify.events import collect

        self.recorder = LoopbackRecorder()
        target = Target(name="demo", url=self.recorder.url, where="korgwatch demo")
        self.config = NotifyConfig(
            path=None, targets=(target,), rules=(Rule(events=EVENT_KINDS),), by_name={"demo": target}
        )
        self.engine = make_engine(db_url)
        upgrade_engine(self.engine)
        with session_scope(self.engine) as session:
            collect(session, self.config)

    def finish(self, console: Console) -> None:
        from korgwatch.notify.sender import notify_once

        try:
            notify_once(self.engine, self.config)
        finally:
            self.engine.dispose()
            self.recorder.close()
        table = Table(title=f"Notifications: {len(self.recorder.messages)} messages to {self.recorder.url}")
        table.add_column("title")
        table.add_column("first lines")
        for message in self.recorder.messages:
            lines = str(message.get("message", "")).splitlines()
            shown = "\n".join(line[:110] for line in lines[:4]) + (
                f"\n… {len(lines) - 4} more" if len(lines) > 4 else ""
            )
            table.add_row(str(message.get("title", "")), shown)
        console.print(table)
        console.print(
            "With an Apprise URL in config/notify.yaml the scheduler sends these (docs/notify.md).", highlight=False
        )
