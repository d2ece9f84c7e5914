"""What every command's arguments go through at the CLI edge, whichever module declares them.

Walked once over the whole command tree when the command line is parsed, so a new command is
covered without doing anything:

- text (and paths) with a lone surrogate (bytes that were not UTF-8 in argv) or a control
  character is refused, naming the argument (exit 2): neither can be stored, and an escape
  sequence in a name would rewrite the receptionist's terminal later;
- an integer outside what the database can store (a signed 64-bit id) is refused the same way;
- help shows conventional metavars: `NAME` and `[NAME]` in the usage line, `TEXT`, `INTEGER`,
  `PATH` or the choices after an option, nothing after a flag such as `--help`.

Typer 0.29 offers no setting for its help metavars (`{name}`, `<str>`, `<bool>`), so each
parameter is given a subclass of its own Typer class that only changes how it is displayed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperArgument, TyperOption

if TYPE_CHECKING:  # the context TyperGroup's methods are declared with (Typer's own click)
    from typer._click import Context as ClickContext

from facility.errors import InputError

INT64 = (-(2**63), 2**63 - 1)
# Commands that take raw input from a program and must answer 0 whatever it sends: dnsmasq's
# --dhcp-script passes client-chosen host names, and the hook records what it cannot use.
RAW_INPUT = frozenset({("wifi", "dnsmasq-hook")})
_TYPE_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "PATH"}


def harden(command: Any, ctx: ClickContext, path: tuple[str, ...] = ()) -> None:
    """Give every parameter of `command` and its subcommands the edge checks and help display."""
    if getattr(command, "_facility_edge", False):
        return
    command._facility_edge = True
    raw = path in RAW_INPUT
    help_option = command.get_help_option(ctx)
    for param in [*command.params, *([help_option] if help_option else [])]:
        _adopt(param, checked=not raw)
    for name, sub in getattr(command, "commands", {}).items():
        harden(sub, ctx, (*path, name))


def label(param: Any) -> str:
    """How a parameter is named to the user: `--output`, or `NAME` for an argument."""
    if isinstance(param, TyperArgument):
        return (param.metavar or param.name.upper()).strip("[]")
    option: str = next((opt for opt in param.opts if opt.startswith("--")), param.opts[0])
    return option


def _adopt(param: Any, *, checked: bool) -> None:
    if isinstance(param, TyperArgument):
        if param.metavar is None:
            param.metavar = param.name.upper()
        param.__class__ = _Argument
    elif isinstance(param, TyperOption):
        param.__class__ = _Option
    if checked:
        param.callback = partial(_checked, param.callback)


def _checked(
    original: Callable[..., Any] | None, ctx: typer.Context, param: Any, value: Any
) -> Any:
    _check(param, value)
    return original(ctx, param, value) if original is not None else value


def _check(param: Any, value: Any) -> None:
    if isinstance(value, list | tuple):
        for item in value:
            _check(param, item)
        return
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not INT64[0] <= value <= INT64[1]:
            raise InputError(f"{label(param)}: {value} is too large a number to be an id")
        return
    text = value if isinstance(value, str) else str(value)
    problem = unprintable(text)
    if problem:
        raise InputError(f"{label(param)}: {problem}")


def unprintable(text: str) -> str | None:
    """Why `text` cannot be taken as typed (undecodable bytes, control characters), or None."""
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cs":
            return "contains bytes that are not valid UTF-8"
        if category == "Cc":
            return f"contains control characters ({ch!r}); type it without them"
    return None


def _type_label(param: Any, ctx: Any) -> str | None:
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    shown = param.display_type(ctx).strip("<>")
    inner = shown.removeprefix("list[").removesuffix("]").removesuffix(" range")
    name: str = _TYPE_NAMES.get(inner, inner)
    return name


class _Argument(TyperArgument):
    """A Typer argument shown the conventional way: `NAME`, `[NAME]`, `NAME...`."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if name.startswith("[") or " " in name:
            return name  # the command spelled it out itself
        if not self.required:
            name = f"[{name}]"
        return f"{name}..." if self.nargs != 1 else name

    def display_type_rich(self, ctx: Any) -> str | None:
        return _type_label(self, ctx)


class _Option(TyperOption):
    """A Typer option shown the conventional way: `--at TEXT`, `--format table|json`, `--yes`."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.metavar is not None:
            return self.metavar
        return _type_label(self, ctx)
