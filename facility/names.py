"""How text from people is cleaned on input, folded for matching, and made safe for a terminal.

Three steps, each in one place:

- `clean_text` on input: Unicode NFKC (fullwidth, ligatures, mathematical letters become plain
  ones), control, format and other invisible characters removed (zero-width spaces, soft hyphens,
  bidi overrides, ANSI escape sequences), whitespace runs made one space, length capped. What is
  stored is what a person sees.
- `name_key` for matching: the cleaned text, case-folded, with the accents of Latin, Greek and
  Cyrillic letters dropped, so 'José Núñez', 'JOSE NUNEZ' and 'Jose\u200b Nunez' share one key.
  Marks that carry meaning in other scripts (Thai vowels, Devanagari signs) are kept. The key is
  stored beside each visit and in visitor hold scopes; changing it needs a migration that
  recomputes both (0002_privacy did, for the accent folding).
- `printable` on output to a terminal: whatever is not printable is shown escaped, so a name
  stored before cleaning, or a host name from a lease file, can never move the cursor.
"""

from __future__ import annotations

import re
import unicodedata

from facility.errors import InputError

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties) outside the Cc/Cf categories:
# invisible fillers and selectors that make two names look the same and compare different.
_IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
# Invisible categories: controls, format characters, lone surrogates, private use.
_INVISIBLE = frozenset(("Cc", "Cf", "Cs", "Co"))
# ESC [ ... final byte, and ESC ] ... BEL/ST: an escape sequence goes whole, not just its ESC.
_ESCAPE_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
# The accents folded for matching: the combining marks used by Latin, Greek and Cyrillic.
_ACCENTS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Latin letters that carry their accent in the letter itself (NFD leaves them whole).
_LETTERS = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ı": "i", "ŧ": "t", "ƀ": "b", "ɨ": "i", "æ": "ae"}
    | {"œ": "oe", "þ": "th", "ð": "d", "ŀ": "l", "ĸ": "k", "ŉ": "n"}
)
# Raw input longer than this many times the cap is refused before any work is done on it.
_RAW_FACTOR = 8


def clean_text(value: str | None, *, what: str, limit: int = 200) -> str | None:
    """Text as stored: NFKC, invisible characters removed, one line, at most `limit` characters.

    None for None or what is blank once cleaned; InputError naming `what` if too long.
    """
    if value is None:
        return None
    if len(value) > limit * _RAW_FACTOR:
        raise InputError(f"{what} is longer than {limit} characters")
    cleaned = " ".join(_visible(value).split())
    if len(cleaned) > limit:
        raise InputError(f"{what} is longer than {limit} characters")
    return cleaned or None


def _visible(value: str) -> str:
    """`value` in NFKC without control, format or other invisible characters (spaces stay)."""
    value = _ESCAPE_SEQUENCE.sub("", value)
    # Whitespace controls (tab, newline) become spaces first, so words do not run together.
    value = "".join(" " if ch.isspace() else ch for ch in value)
    # Invisible characters go before NFKC, so that a letter and its accent split by a zero-width
    # space compose; and after it, for what NFKC itself produces.
    for _ in range(2):
        value = _IGNORABLE.sub("", value)
        value = "".join(ch for ch in value if unicodedata.category(ch) not in _INVISIBLE)
        value = unicodedata.normalize("NFKC", value)
    return value


def name_key(name: str) -> str:
    """The form names are matched in: cleaned, case-folded, accents dropped, single spaces."""
    folded = _visible(name).casefold()
    folded = _ACCENTS.sub("", unicodedata.normalize("NFD", folded)).translate(_LETTERS)
    return " ".join(unicodedata.normalize("NFKC", folded).casefold().split())


def printable(value: object) -> str:
    """`value` as text safe to write to a terminal: non-printable characters shown escaped."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
