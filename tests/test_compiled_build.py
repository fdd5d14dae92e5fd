"""The analyser's mypyc-compiled modules are used only while they match their sources (pipeline/_build.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline
from pipeline._build import COMPILED_MODULES, STAMP_FILE, compiled_is_current, source_digest

PACKAGE = Path(pipeline.__file__).resolve().parent
PROBE = (
    "import pipeline, pipeline.analyse, pipeline.serials;"
    "from pipeline.analyse import analyser_for; from pipeline.rules import load_rules;"
    "result = analyser_for(load_rules()).analyse('Korg MS-20 SN 730144');"
    "print(pipeline.BUILD, pipeline.analyse.__file__, getattr(pipeline.serials, 'EDITED', False),"
    " result.instruments[0].flags[0].code)"
)


def _compiled_present() -> bool:
    return any(PACKAGE.glob("analyse.*.so"))


def _probe(path: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(path)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def _copy_build(tmp_path: Path) -> Path:
    """The installed package as it stands (sources, compiled modules, stamp), in a folder of the test's own."""
    root = tmp_path / "site"
    shutil.copytree(PACKAGE, root / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    for shared in PACKAGE.parent.glob("korgwatch_pipeline__mypyc.*"):
        shutil.copy2(shared, root / shared.name)
    shutil.copytree(PACKAGE.parent / "config", root / "config")
    return root


@pytest.fixture
def compiled() -> None:
    if not _compiled_present():
        if os.environ.get("CI") and not os.environ.get("KORGWATCH_PURE_PYTHON"):
            pytest.fail("CI installs the compiled analyser, but pipeline/ holds no compiled module")
        pytest.skip("a pure-Python build (KORGWATCH_PURE_PYTHON, or no compiler): nothing compiled to choose")


def test_the_installed_build_is_compiled_and_current(compiled: None) -> None:
    assert pipeline.BUILD == "compiled"
    assert compiled_is_current()


def test_unedited_sources_run_compiled(compiled: None, tmp_path: Path) -> None:
    build, module_file, edited, code = _probe(_copy_build(tmp_path))
    assert (build, module_file.endswith(".so"), edited, code) == ("compiled", True, "False", "serial_outside_blocks")


def test_an_edited_source_makes_the_package_load_from_source(compiled: None, tmp_path: Path) -> None:
    root = _copy_build(tmp_path)
    with (root / "pipeline" / "serials.py").open("a", encoding="utf-8") as source:
        source.write("\nEDITED = True\n")
    build, module_file, edited, code = _probe(root)
    # analyse.py is unchanged, yet loads from source too: compiled modules would call the stale serials.
    assert (build, module_file, edited, code) == (
        "source", str(root / "pipeline" / "analyse.py"), "True", "serial_outside_blocks"
    )


def test_the_stamp_names_every_compiled_module_by_its_source_digest(tmp_path: Path) -> None:
    for name in COMPILED_MODULES:
        (tmp_path / f"{name}.py").write_text(f"X = {name!r}\n", encoding="utf-8")
    stamp = {name: source_digest(tmp_path, name) for name in COMPILED_MODULES}
    (tmp_path / STAMP_FILE).write_text(json.dumps(stamp), encoding="utf-8")
    assert not compiled_is_current(tmp_path)  # sources match, but no compiled module stands beside them
