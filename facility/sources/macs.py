"""MAC addresses as the store keeps them: six lower-case hex octets joined by colons."""

from __future__ import annotations

import re
from functools import lru_cache

from facility.errors import InputError

# aa:bb:cc:dd:ee:ff and aa-bb-cc-dd-ee-ff (Windows), where an octet may drop its leading zero as
# `ip neigh`, macOS `arp` and ISC dhcpd print it (0:c:29:1:2:3); aabb.ccdd.eeff (Cisco); bare
# aabbccddeeff. One separator throughout: aa:bb-cc… is a typo, not a MAC.
_SEPARATED = re.compile(r"[0-9a-f]{1,2}([:-])[0-9a-f]{1,2}(?:\1[0-9a-f]{1,2}){4}")
_DOTTED = re.compile(r"[0-9a-f]{4}(?:\.[0-9a-f]{4}){2}")
_BARE = re.compile(r"[0-9a-f]{12}")


def normalise_mac(text: str, *, what: str = "--mac") -> str:
    """`text` as `aa:bb:cc:dd:ee:ff`; InputError naming `what` if it is not a MAC address."""
    mac = canonical_mac(text) if isinstance(text, str) else None
    if mac is None:
        raise InputError(
            f"{what}: {text!r} is not a MAC address (six hex octets, e.g. 3c:22:fb:01:02:03)"
        )
    return mac


@lru_cache(maxsize=65536)  # lease data names the same few thousand devices over and over
def canonical_mac(text: str) -> str | None:
    """`text` as `aa:bb:cc:dd:ee:ff`, or None if it is not a MAC address."""
    cleaned = text.strip().lower()
    if _SEPARATED.fullmatch(cleaned):
        return ":".join(part.zfill(2) for part in re.split("[:-]", cleaned))
    if _DOTTED.fullmatch(cleaned) or _BARE.fullmatch(cleaned):
        digits = cleaned.replace(".", "")
        return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
    return None
