"""Commands imported when they are used: `korgwatch queue` must not pay for Scrapy, Twisted, Alembic or Starlette.

Typer builds every command of an app, so importing every command module, before it runs one. The top-level
group here knows each command's name and the modules that define it, and imports those modules the first time
the command is looked up (to run it, or to list it in `korgwatch --help`). The modules keep their
`register(app)` functions: a command is built by registering its modules on a throwaway app and taking the one
command from the group Typer makes of it, so it behaves exactly as if it had been registered eagerly.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import typer
import typer.main
from typer import _click as click  # Typer carries its own Click: its groups hold these commands
from typer.core import TyperGroup

COMMANDS_PACKAGE = "korgwatch.commands"


def load_command(name: str, modules: tuple[str, ...]) -> click.Command:
    """Import `modules` (in order), register each on a fresh app, and return the command called `name`.

    Only that command is built: the module's other commands are left out before Typer turns them into Click's.
    """
    app = typer.Typer()
    for module_name in modules:
        importlib.import_module(f"{COMMANDS_PACKAGE}.{module_name}").register(app)
    app.registered_commands = [
        info
        for info in app.registered_commands
        if (info.name or typer.main.get_command_name(getattr(info.callback, "__name__", ""))) == name
    ]
    app.registered_groups = [info for info in app.registered_groups if info.name in (None, name)]
    command = typer.main.get_group(app).commands.get(name)
    if command is None:
        raise LookupError(f"{', '.join(modules)} define no command {name!r}")
    return command


class LazyCommands(MutableMapping[str, click.Command]):
    """Name → command, where a command named in `sources` is loaded when it is first looked up.

    Keys are known without importing anything, so listing the names, Click's "did you mean" and
    `name in commands` stay cheap; only a value costs its modules' import.
    """

    def __init__(self, sources: Mapping[str, tuple[str, ...]], loaded: MutableMapping[str, click.Command]) -> None:
        self._sources = sources
        self._loaded = loaded

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            if name not in self._sources:
                raise KeyError(name)
            self._loaded[name] = load_command(name, self._sources[name])
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in self._loaded or name in self._sources

    def __iter__(self) -> Iterator[str]:
        yield from self._sources
        yield from (name for name in self._loaded if name not in self._sources)

    def __len__(self) -> int:
        return len(set(self._sources) | set(self._loaded))


class LazyGroup(TyperGroup):
    """A Typer group whose commands named in `sources` are imported on first use (see the module docstring)."""

    sources: Mapping[str, tuple[str, ...]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.sources, dict(self.commands))

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The names, in the order of `sources` (TyperGroup's own would build every command to list them)."""
        return list(self.commands)


def lazy_group(sources: Mapping[str, tuple[str, ...]]) -> type[LazyGroup]:
    """A LazyGroup class for `typer.Typer(cls=...)` that loads each command name from its modules."""
    return type("KorgwatchGroup", (LazyGroup,), {"sources": dict(sources)})
