"""The scheduler's notifier: a thread that collects and sends after each crawl job and every `interval` seconds.

After a job it sends the digest of the run that just closed; the timer covers runs closed by workers
(distributed mode) and retries of failing targets. It never stops the scheduler: a failure is logged, and the
next pass tries again (the outbox keeps every message that was not delivered).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from korgwatch.notify.config import NotifyConfig, NotifyConfigError, load_notify

logger = logging.getLogger("korgwatch.notify")


class BackgroundNotifier:
    """Collect and send in its own thread; `poke()` after a crawl, `stop()` sends what is due, then ends."""

    def __init__(self, db_url: str, config: NotifyConfig, interval: float = 30.0) -> None:
        self.db_url = db_url
        self.config = config
        self.interval = interval
        self._poked = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="korgwatch-notifier", daemon=True)

    @classmethod
    def start_for(cls, db_url: str, interval: float = 30.0) -> BackgroundNotifier | None:
        """A started notifier when notify.yaml names targets; None (with the problems logged) otherwise."""
        try:
            config = load_notify()
        except NotifyConfigError as exc:
            for problem in exc.problems:
                logger.error("notifications off: %s", problem)
            return None
        if not config.targets:
            return None
        notifier = cls(db_url, config, interval)
        notifier._pass_once()  # before any crawl: on a new store, notifications start here
        notifier._thread.start()
        logger.info("notifications: %d targets from %s", len(config.targets), config.path)
        return notifier

    def poke(self) -> None:
        self._poked.set()

    def stop(self, timeout: float = 60.0) -> None:
        self._stopped.set()
        self._poked.set()
        self._thread.join(timeout)

    def _pass_once(self, engine: Engine | None = None) -> None:
        from db.engine import make_engine
        from korgwatch.notify.sender import notify_once

        own = engine is None
        engine = engine or make_engine(self.db_url)
        try:
            queued, report = notify_once(engine, self.config)
            if queued or report.delivered or report.failed:
                logger.info(
                    "notifications: queued %d, delivered %d, failed %d", queued, report.delivered, report.failed
                )
            for error in report.errors:
                logger.warning("notification not delivered (will retry): %s", error)
        except Exception as exc:  # the store away, locked…: the next pass retries
            logger.warning("notifications: pass failed, will retry: %s", " ".join(str(exc).split())[:300])
        finally:
            if own:
                engine.dispose()

    def _loop(self) -> None:
        from db.engine import make_engine

        engine = make_engine(self.db_url)
        try:
            while True:
                self._poked.wait(self.interval)
                self._poked.clear()
                self._pass_once(engine)
                if self._stopped.is_set():
                    return
        finally:
            engine.dispose()
