"""Help that reads well: flags show no `<bool>` placeholder (Typer's rich help prints one for every flag).

A flag takes no value, so a type beside it suggests one (`--force <bool>`); options that take a value keep
their `<int>`/`<str>` hint. Imported once by `korgwatch.cli`.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption

_display_type_rich = TyperOption.display_type_rich


def _flag_without_placeholder(self: TyperOption, ctx: Any) -> str | None:
    if self.is_flag and not self.count:
        return None
    return _display_type_rich(self, ctx)


def install() -> None:
    """Drop the placeholder of flags in every command's help (idempotent)."""
    TyperOption.display_type_rich = _flag_without_placeholder  # type: ignore[method-assign]
