"""The review page: a small server-rendered web app over `db/` and `pipeline/` (no business logic of its own)."""
