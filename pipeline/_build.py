"""Compiled or source: use the mypyc-compiled analyser modules only while they match their sources.

setup.py compiles COMPILED_MODULES and writes the SHA-256 of each source to STAMP_FILE. Python would import
a compiled module in preference to its source even after the source was edited; so when any source differs
from its stamp (or a compiled module is missing), every one of them is loaded from source instead: compiled
modules call each other directly, so one stale module would keep its old code running inside the others.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Literal

COMPILED_MODULES = ("analyse", "checks", "mentions", "normalise", "reissues", "rules", "serials")
STAMP_FILE = "_compiled.json"
HERE = Path(__file__).resolve().parent

Build = Literal["compiled", "source"]


def _compiled_file(name: str, directory: Path = HERE) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = directory / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def source_digest(directory: Path, name: str) -> str:
    """What the stamp records of a module's source: its SHA-256."""
    return hashlib.sha256((directory / f"{name}.py").read_bytes()).hexdigest()


def compiled_is_current(directory: Path = HERE) -> bool:
    """Whether every compiled module is there and was built from the source beside it."""
    try:
        stamp = json.loads((directory / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    for name in COMPILED_MODULES:
        if _compiled_file(name, directory) is None:
            return False
        if stamp.get(name) != source_digest(directory, name):
            return False
    return True


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Finds `pipeline.<compiled module>` as its .py file, ahead of the compiled one."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != __package__ or name not in COMPILED_MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, HERE / f"{name}.py")


def choose_build() -> Build:
    """Called once by `pipeline/__init__.py`, before any analyser module is imported."""
    if not any(_compiled_file(name) for name in COMPILED_MODULES):
        return "source"  # a pure-Python build: nothing to choose
    if compiled_is_current():
        return "compiled"
    sys.meta_path.insert(0, _SourceFinder())
    return "source"
