"""Start-up (issue 14, target 5): a read command imports only what it needs, and the schema check on a current
store needs no Alembic. Behaviour checks (which modules a real process imported), never timings: the figures
are printed by benchmarks/bench_startup.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.main

from db.migrate import VERSIONS_DIR, head_in, head_revision, script_head
from korgwatch.cli import COMMAND_MODULES, app
from korgwatch.lazy import load_command

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples" / "listings.jsonl"
HEAVY = ("scrapy", "twisted", "alembic", "starlette")  # what no read command may import
ANALYSER = ("pipeline.analyse", "pipeline.rules", "db.ingest")  # what a read command imports only when it needs it

# Runs one korgwatch command in a fresh interpreter, then writes the names of the loaded modules to a file.
PROBE = """
import json, sys
from korgwatch.cli import app
try:
    app(sys.argv[2:], prog_name="korgwatch")
except SystemExit as exit:
    code = exit.code
else:
    code = 0
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def imported_by(tmp_path: Path, *args: str) -> set[str]:
    """The modules a fresh `korgwatch ARGS...` process had imported when it finished (it must succeed)."""
    report = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(report.read_text())
    assert found["code"] in (0, None), (done.stdout, done.stderr)
    return set(found["modules"])


def heavy_in(modules: set[str], roots: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in roots or m in roots)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A current store with a few flagged listings (the shipped example file)."""
    path = tmp_path_factory.mktemp("startup") / "k.sqlite"
    done = subprocess.run(
        [sys.executable, "-m", "korgwatch.cli", "ingest", str(EXAMPLES), "--db", str(path), "-f", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return str(path)


@pytest.mark.parametrize(
    "args",
    [
        ("queue", "--help"),
        ("queue",),
        ("queue", "--all", "-f", "csv"),
        ("history", "730144"),
        ("export", "--since", "2000-01-01", "-f", "json"),
        ("db", "upgrade"),  # on a current store: it says so without Alembic
    ],
    ids=lambda args: " ".join(args),
)
def test_a_read_command_imports_no_crawler_server_or_alembic(tmp_path: Path, store: str, args: tuple[str, ...]) -> None:
    modules = imported_by(tmp_path, *args, "--db", store) if args[-1] != "--help" else imported_by(tmp_path, *args)
    assert heavy_in(modules) == []
    assert "korgwatch.commands.crawling" not in modules and "crawler" not in {m.split(".")[0] for m in modules}


@pytest.mark.parametrize("args", [("queue",), ("history", "730144"), ("export", "--since", "2000-01-01", "-f", "csv")])
def test_a_read_command_without_model_filters_loads_no_analyser(
    tmp_path: Path, store: str, args: tuple[str, ...]
) -> None:
    assert heavy_in(imported_by(tmp_path, *args, "--db", store), ANALYSER) == []


def test_the_analyser_rules_are_loaded_when_a_filter_needs_them(tmp_path: Path, store: str) -> None:
    """The other side of the lazy import: --model still knows every alias (the rules were loaded for it)."""
    modules = imported_by(tmp_path, "queue", "--model", "ms20", "--db", store)
    assert "pipeline.rules" in modules
    assert heavy_in(modules) == []


def test_an_outdated_store_is_still_upgraded(tmp_path: Path) -> None:
    """Alembic is imported when the store is behind (here: empty), and the upgrade reaches the head."""
    path = tmp_path / "new.sqlite"
    modules = imported_by(tmp_path, "db", "upgrade", "--db", str(path))
    assert "alembic" in modules
    from db.engine import make_engine
    from db.migrate import current_revision

    engine = make_engine(f"sqlite:///{path}")
    try:
        assert current_revision(engine) == script_head()
    finally:
        engine.dispose()


# --- the head revision, read without Alembic -----------------------------------------------------------


def test_head_read_from_the_scripts_is_alembics_head() -> None:
    assert head_revision() == script_head()


def test_a_new_migration_moves_the_head(tmp_path: Path) -> None:
    """No constant to forget: a script that revises the head becomes the head (as the integrator re-chains)."""
    versions = tmp_path / "versions"
    shutil.copytree(VERSIONS_DIR, versions)
    before = head_in(versions)
    assert before == script_head()
    (versions / "9999_next.py").write_text(
        f'"""A later migration."""\n\nrevision: str = "9999_next"\ndown_revision: str | None = "{before}"\n'
    )
    assert head_in(versions) == "9999_next"


def test_two_heads_are_left_to_alembic(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    shutil.copytree(VERSIONS_DIR, versions)
    (versions / "9999_branch.py").write_text('revision = "9999_branch"\ndown_revision = "0001"\n')
    assert head_in(versions) is None  # head_revision() then asks Alembic


def test_a_merge_revises_both_heads(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    shutil.copytree(VERSIONS_DIR, versions)
    head = head_in(versions)
    (versions / "9998_branch.py").write_text(f'revision = "9998_branch"\ndown_revision = "{head}"\n')
    (versions / "9999_other.py").write_text(f'revision = "9999_other"\ndown_revision = "{head}"\n')
    (versions / "9999_merge.py").write_text('revision = "9999_merge"\ndown_revision = ("9998_branch", "9999_other")\n')
    assert head_in(versions) == "9999_merge"


# --- the lazy command table -----------------------------------------------------------------------------


def _registered(module_name: str) -> set[str]:
    """The top-level names `korgwatch/commands/<module>.register(app)` adds."""
    import importlib

    probe = typer.Typer()
    importlib.import_module(f"korgwatch.commands.{module_name}").register(probe)
    return set(typer.main.get_group(probe).commands)


def test_command_table_names_every_command_of_every_module() -> None:
    """COMMAND_MODULES (what the lazy group imports for each name) says what the modules really register."""
    modules = {names[0] for names in COMMAND_MODULES.values()}
    for module_name in sorted(modules):
        expected = {name for name, names in COMMAND_MODULES.items() if names[0] == module_name}
        assert _registered(module_name) == expected, module_name
    commands_dir = REPO_ROOT / "korgwatch" / "commands"
    defined = {p.stem for p in commands_dir.glob("*.py") if p.stem != "__init__"}
    helpers = {"common"}  # shared helpers, no commands
    listed = {m for names in COMMAND_MODULES.values() for m in names}
    assert defined - helpers == listed, "a module of korgwatch/commands/ is missing from COMMAND_MODULES"


def test_lazy_commands_are_the_commands_typer_would_build() -> None:
    """The review group is whole (storage's decisions and reviewing's reopen/verify-log), as registered eagerly."""
    review = load_command("review", COMMAND_MODULES["review"])
    assert {"confirm", "correct", "dismiss", "kind", "unit", "note", "reopen", "verify-log"} <= set(
        review.commands  # type: ignore[attr-defined]
    )
    group = typer.main.get_command(app)
    assert list(group.commands) == list(COMMAND_MODULES)  # type: ignore[attr-defined]
