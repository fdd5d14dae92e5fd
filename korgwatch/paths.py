"""Where korgwatch finds its rules and keeps its data: one place, so every command agrees."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def config_dir() -> Path:
    """The rules folder: `KORGWATCH_CONFIG` if set, else the `config/` shipped beside the code."""
    override = os.environ.get("KORGWATCH_CONFIG")
    return Path(override) if override else PROJECT_ROOT / "config"


def data_dir() -> Path:
    """The user's data directory (`KORGWATCH_DATA_DIR` overrides it); created on first use."""
    override = os.environ.get("KORGWATCH_DATA_DIR")
    path = Path(override) if override else Path(platformdirs.user_data_dir("korgwatch"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_db_url() -> str:
    """The store when no --db is given, as every command resolves it (korgwatch.store): KORGWATCH_DB, then `db:`
    in config/schedule.yaml, then one SQLite file in the data directory."""
    from korgwatch.store import resolve_store

    return resolve_store().url
