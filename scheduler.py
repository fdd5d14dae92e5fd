"""Run the korgwatch scheduler: `python scheduler.py [--config schedule.yaml] [--db URL] [--redis URL]`.

The same scheduler as `korgwatch schedule run` (korgwatch/scheduling/service.py), for process supervisors that
prefer a script. Stops cleanly on SIGTERM/SIGINT; see docs/scheduling.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scheduler.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="schedule file (default: config/schedule.yaml)")
    parser.add_argument(
        "--db",
        help="the store for jobs and data: a SQLite file path or a URL "
        "(default: KORGWATCH_DB, then db: in the schedule file, then the data dir)",
    )
    parser.add_argument("--redis", help="Redis URL with `distributed: true` (default: KORGWATCH_REDIS_URL)")
    parser.add_argument("--log-level", default="INFO", help="scheduler log level (default: INFO)")
    args = parser.parse_args(argv)

    from db.engine import StoreError
    from korgwatch.scheduling.config import ScheduleError, load_schedule, redis_url_for
    from korgwatch.scheduling.service import SchedulerService, configure_logging, resolve_db_url

    try:
        config = load_schedule(args.config)
        redis_url = redis_url_for(config, args.redis)
        db_url = resolve_db_url(config, args.db)
    except ScheduleError as exc:
        print(exc, file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"store: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_level)
    return SchedulerService(config, db_url, redis_url=redis_url).run_forever()


if __name__ == "__main__":
    sys.exit(main())
