"""Spidermon monitors: a crawl's health as data, checked when each source's spider closes.

A run that finds nothing, loses titles/URLs/dates, logs errors or gives up retrying is not a quiet success:
its monitors fail, their messages go into the crawl stats (`korgwatch/monitor_failures`), and `crawler.run`
records the run as `degraded` with those messages.
"""

from __future__ import annotations

from spidermon import Monitor, MonitorSuite, monitors
from spidermon.contrib.scrapy.monitors import (
    FieldCoverageMonitor,
    FinishReasonMonitor,
    RetryCountMonitor,
)
from spidermon.core.actions import Action

FAILURES_STAT = "korgwatch/monitor_failures"


@monitors.name("Listing count")
class ListingCountMonitor(Monitor):
    """At least SPIDERMON_MIN_ITEMS listings seen: scraped ones plus known ones skipped as unchanged."""

    @monitors.name("Should see at least the minimum number of listings")
    def test_minimum_listings(self) -> None:
        stats = self.data.stats
        seen = stats.get("item_scraped_count", 0) + stats.get("korgwatch/listings_unchanged_skipped", 0)
        minimum = self.data.crawler.settings.getint("SPIDERMON_MIN_ITEMS", 1)
        self.assertGreaterEqual(seen, minimum, msg=f"{seen} listings seen, expected at least {minimum}")


@monitors.name("Page errors")
class PageErrorMonitor(Monitor):
    """No page, item or store error recorded by the spider or the pipeline.

    Used instead of Spidermon's ErrorCountMonitor: Scrapy's `log_count/ERROR` counts every crawler's log
    records in the process, so with all sources crawled in one process it blames one source for another's.
    """

    @monitors.name("Should record no page errors")
    def test_no_page_errors(self) -> None:
        errors = self.data.stats.get("korgwatch/errors", 0)
        self.assertEqual(errors, 0, msg=f"{errors} page/store errors")


class RecordFailures(Action):
    """Put the failed monitors' messages into the stats, where `crawler.run` reads them."""

    def run_action(self) -> None:
        messages = [
            f"{result.monitor.name}: {result.error.strip().splitlines()[-1] if result.error else 'failed'}"
            for result in self.result.monitors_failed_results
        ]
        self.data.crawler.stats.set_value(FAILURES_STAT, messages)


class SourceMonitorSuite(MonitorSuite):
    """The checks every source's run must pass to be recorded `ok`."""

    monitors = [  # noqa: RUF012 - Spidermon's declarative API
        ListingCountMonitor,
        FieldCoverageMonitor,
        PageErrorMonitor,  # not Spidermon's ErrorCountMonitor: see below
        RetryCountMonitor,
        FinishReasonMonitor,
    ]
    monitors_failed_actions = [RecordFailures]  # noqa: RUF012
