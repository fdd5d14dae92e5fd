"""The build: the analyser's hot modules compiled with mypyc, about twice as fast as interpreted.

The compiled modules sit beside their sources (in place, for an editable install). `pipeline/_compiled.json`
records the SHA-256 of each source as compiled; `pipeline/_build.py` loads the whole package from source
whenever a source no longer matches, so an edit is never silently ignored. Set KORGWATCH_PURE_PYTHON=1 to
build without compiling (no C compiler at hand, or to debug the analyser).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # pipeline/_build.py names the compiled modules and the stamp file

from pipeline._build import COMPILED_MODULES, STAMP_FILE, source_digest  # noqa: E402


def compiled_extensions() -> list[Any]:
    if os.environ.get("KORGWATCH_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:  # pragma: no cover - mypy is a build requirement
        print(f"korgwatch: mypyc unavailable ({exc}); building pure Python", file=sys.stderr)
        return []
    stamp = {name: source_digest(HERE / "pipeline", name) for name in COMPILED_MODULES}
    (HERE / "pipeline" / STAMP_FILE).write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    paths = [f"pipeline/{name}.py" for name in COMPILED_MODULES]
    return list(mypycify(paths, opt_level="3", group_name="korgwatch_pipeline"))


setup(ext_modules=compiled_extensions())
