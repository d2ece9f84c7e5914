"""HTTP range requests (RFC 9110, section 14): which bytes of a file a `Range` header asks for.

A browser's video element asks for the part it needs (`bytes=0-`, `bytes=1048576-`, a suffix
`bytes=-500` for an index at the end) and seeks by asking again. One range per request is what
players send and what is answered; a header asking for several, or in another unit, gets the
whole file (200), as the RFC allows. A range that starts beyond the end is unsatisfiable (416).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ONE = re.compile(r"bytes=(\d*)-(\d*)")


class Unsatisfiable(Exception):
    """The range asks for nothing the file has (416, with the file's size)."""


@dataclass(frozen=True)
class Span:
    """Bytes `start` to `end` inclusive, as Content-Range writes them."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """How many bytes."""
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        """The Content-Range header of this span of a file of `size` bytes."""
        return f"bytes {self.start}-{self.end}/{size}"


def requested(header: str | None, size: int) -> Span | None:
    """The one span `header` asks for within a file of `size` bytes; None: send it whole.

    Unsatisfiable when the span lies beyond the end (or the file is empty).
    """
    if not header:
        return None
    found = _ONE.fullmatch(header.strip().replace(" ", ""))
    if found is None:
        return None  # several ranges, another unit, or garbage: the whole file
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            raise Unsatisfiable(header)
        return Span(max(0, size - count), size - 1)
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if last and int(last) < start:
        return None  # invalid: ignored, as the RFC says
    if start >= size:
        raise Unsatisfiable(header)
    return Span(start, end)
