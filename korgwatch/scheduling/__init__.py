"""Scheduled crawling (issue 5): schedule.yaml → APScheduler jobs in the data's database → one process per crawl.

`config` reads schedule.yaml, `jobs` keeps the job store in step with it, `runner` runs and records crawls,
`history` reads run history and judges health, `service` is the running scheduler. See docs/scheduling.md.
"""
