"""config/notify.yaml: the shipped file, moving it, problems named by file and line, secrets from the environment."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from korgwatch.cli import app
from korgwatch.notify.config import (
    EVENT_KINDS,
    MissingSecret,
    NotifyConfigError,
    load_notify,
    notify_config_path,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_shipped_file_loads_and_sends_nothing_until_a_target_is_added() -> None:
    config = load_notify(REPO_ROOT / "config" / "notify.yaml")
    assert config.targets == ()
    text = (REPO_ROOT / "config" / "notify.yaml").read_text(encoding="utf-8")
    for scheme in ("ntfy://", "tgram://", "mailtos://", "matrixs://", "discord://", "slack://", "json://"):
        assert f'#     url: "{scheme}' in text  # a commented example per kind


def test_the_file_is_moved_by_its_variable_or_with_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KORGWATCH_CONFIG", str(tmp_path))
    assert notify_config_path() == tmp_path / "notify.yaml"
    assert load_notify().targets == ()  # a missing default file: nothing to send
    other = tmp_path / "elsewhere.yaml"
    other.write_text('targets:\n  - url: "json://127.0.0.1:9/x"\n', encoding="utf-8")
    monkeypatch.setenv("KORGWATCH_NOTIFY_CONFIG", str(other))
    config = load_notify()
    assert [t.name for t in config.targets] == ["json-1"]
    assert config.rules[0].events == EVENT_KINDS  # no rules: everything to every target
    monkeypatch.setenv("KORGWATCH_NOTIFY_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(NotifyConfigError, match=r"missing\.yaml: cannot read"):
        load_notify()


def test_every_problem_is_named_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text(
        "targets:\n"
        "  - name: a\n"
        "    url: 'json://127.0.0.1/x'\n"
        "  - url: 'not a url'\n"
        "rules:\n"
        "  - events: [new_sighting, nonsense]\n"
        "    targets: [b]\n"
        "    price_min: cheap\n"
        "    digest: weekly\n"
        "review_backlog: -1\n"
        "colour: red\n",
        encoding="utf-8",
    )
    with pytest.raises(NotifyConfigError) as caught:
        load_notify(path)
    problems = caught.value.problems
    expected = [
        (":4:", "not an Apprise URL"),
        (":6:", "unknown event 'nonsense'"),
        (":7:", "no target named 'b'"),
        (":8:", "price_min: expected a number"),
        (":9:", "digest: expected one of run, interval, none"),
        (":10:", "review_backlog"),
        (":11:", "unknown setting 'colour'"),
    ]
    for line, text in expected:
        assert any(f"{path}{line}" in p and text in p for p in problems), (line, text, problems)
    result = CliRunner().invoke(app, ["notify", "targets", "--notify-config", str(path)])
    assert result.exit_code == 2 and f"{path}:11:" in result.output and "Traceback" not in result.output


def test_rules_filter_events_by_model_source_flag_and_price(tmp_path: Path) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text(
        "targets:\n  - {name: a, url: 'json://127.0.0.1/a'}\n  - {name: b, url: 'json://127.0.0.1/b'}\n"
        "rules:\n"
        "  - {events: [new_sighting], models: [MS-20], sources: [reverb], price_min: 100, price_max: 900,"
        " targets: [a], digest: none}\n"
        "  - {events: [flag_opened], flags: [serial_outside_blocks]}\n",
        encoding="utf-8",
    )
    config = load_notify(path)
    sighting = {"kind": "new_sighting", "model": "MS-20", "source": "reverb", "price": "850.00"}
    assert config.routes(sighting) == {"a": "none"}
    assert config.routes({**sighting, "price": "950"}) == {}
    assert config.routes({**sighting, "price": None}) == {}
    assert config.routes({**sighting, "model": "MS-10"}) == {}
    assert config.routes({**sighting, "source": "ebay"}) == {}
    assert config.routes({"kind": "flag_opened", "flag": "serial_outside_blocks"}) == {"a": "run", "b": "run"}
    assert config.routes({"kind": "flag_opened", "flag": "serial_wrong_length"}) == {}
    assert config.rules[0].price_max == Decimal("900")


def test_secrets_come_from_the_environment_and_are_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text("targets:\n  - name: tg\n    url: 'tgram://${TG_TOKEN}/${TG_CHAT}'\n", encoding="utf-8")
    target = load_notify(path).targets[0]
    assert target.secrets == ("TG_TOKEN", "TG_CHAT")
    with pytest.raises(MissingSecret, match="TG_TOKEN is not set"):
        target.resolve({})
    environ = {"TG_TOKEN": "123:abcSECRET", "TG_CHAT": "42"}
    assert target.resolve(environ) == "tgram://123:abcSECRET/42"
    assert target.redact("failed: tgram://123:abcSECRET/42", environ) == "failed: tgram://${TG_TOKEN}/${TG_CHAT}"
    monkeypatch.setenv("TG_TOKEN", "123:abcSECRET")
    result = CliRunner().invoke(app, ["notify", "targets", "--notify-config", str(path), "-f", "json"])
    assert result.exit_code == 0 and "abcSECRET" not in result.output and "${TG_TOKEN}" in result.output
