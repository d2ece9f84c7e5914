"""How names and badge numbers are compared: exactly, after Unicode normalisation and case folding."""

from __future__ import annotations

import unicodedata

from facility.errors import InputError


def name_key(name: str) -> str:
    """The form two visitor names are compared in: NFKC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def clean_text(value: str | None, *, what: str, limit: int = 200) -> str | None:
    """A trimmed single-line text, or None for blank; InputError naming `what` if too long."""
    if value is None:
        return None
    cleaned = " ".join(value.split())
    if len(cleaned) > limit:
        raise InputError(f"{what} is longer than {limit} characters")
    return cleaned or None
