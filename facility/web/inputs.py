"""What the web edge accepts before anything reaches the core or the database.

Whatever the core's parsers do, a request never gets further than here with a value that would
fail deep down (and answer 500): ids beyond what the id columns hold, instants outside the years
anyone means, text with NUL or unpaired surrogates (no database stores them). Each refusal is an
InputError or a validation error naming the field, so the answer is a 400 with one line.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any, TypeVar

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator
from starlette.datastructures import FormData

from facility.errors import InputError
from facility.timeutil import EARLIEST_PLAUSIBLE, parse_instant, typed_instant

MAX_ID = 2**31 - 1  # the largest PostgreSQL INTEGER, the type of every record id column
EARLIEST = EARLIEST_PLAUSIBLE
LATEST = datetime(2200, 1, 1, tzinfo=UTC)  # far enough for any hold; far from datetime's end


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate, which is not text"
    return None


_T = TypeVar("_T")


def _clean(value: _T) -> _T:
    if isinstance(value, str) and (problem := text_problem(value)):
        raise ValueError(problem)
    if isinstance(value, list):
        for item in value:
            _clean(item)
    return value


def _path_text(value: str) -> str:
    return _clean(value)


PathText = Annotated[str, AfterValidator(_path_text)]
RecordId = Annotated[int, Path(ge=1, le=MAX_ID)]


class Body(BaseModel):
    """A JSON body: no unknown fields, and every string storable as text."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return _clean(value)


def form_text(form: FormData, name: str) -> str:
    """A form field's text, stripped ("" when missing or a file)."""
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def check_form(form: FormData) -> None:
    """InputError naming the first field of `form` whose value cannot be stored as text."""
    for key, value in form.multi_items():
        if isinstance(value, str) and (problem := text_problem(value)):
            raise InputError(f"{_label(key)}: {problem}")


def instant(text: str, site_zone: tzinfo, *, what: str, now: datetime | None = None) -> datetime:
    """A typed time as aware UTC, within the years anyone means; InputError naming `what`.

    With `now` (a person typing into a form) it is read as the CLI reads `--at`: `09:00` is today,
    and a wall time a DST change skips or repeats is refused with both readings; without it (the
    JSON API), strict ISO 8601.
    """
    if problem := text_problem(text):
        raise InputError(f"{what}: {problem}")
    try:
        if now is None:
            value = parse_instant(text, site_zone, what=what)
        else:
            value = typed_instant(text, site_zone, now=now, what=what)
    except (OverflowError, ValueError) as err:  # the zone pushes it past datetime's range
        raise InputError(f"{what}: {_shown(text)} is out of range") from err
    if not EARLIEST <= value < LATEST:
        raise InputError(
            f"{what}: {_shown(text)} is out of range "
            f"({EARLIEST:%Y-%m-%d} to {LATEST.year - 1}-12-31)"
        )
    return value


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _label(key: str) -> str:
    return key if len(key) <= 40 and not text_problem(key) else "a form field"
