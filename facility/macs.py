"""MAC addresses as the store keeps them: six lower-case hex octets joined by colons."""

from __future__ import annotations

import re

from facility.errors import InputError

# aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff (Windows), aabb.ccdd.eeff (Cisco) and bare aabbccddeeff.
_FORMS = (
    re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}"),
    re.compile(r"[0-9a-f]{2}(-[0-9a-f]{2}){5}"),
    re.compile(r"[0-9a-f]{4}(\.[0-9a-f]{4}){2}"),
    re.compile(r"[0-9a-f]{12}"),
)


def normalise_mac(text: str, *, what: str = "--mac") -> str:
    """`text` as `aa:bb:cc:dd:ee:ff`; InputError naming `what` if it is not a MAC address."""
    cleaned = text.strip().lower()
    if not any(form.fullmatch(cleaned) for form in _FORMS):
        raise InputError(
            f"{what}: {text!r} is not a MAC address (six hex octets, e.g. 3c:22:fb:01:02:03)"
        )
    digits = re.sub(r"[:.\-]", "", cleaned)
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
