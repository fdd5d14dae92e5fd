"""Distributed crawling on scrapy-redis: Redis holds each source's request queue and per-run duplicate filter,
PostgreSQL is the one store. See docs/scaling.md."""
