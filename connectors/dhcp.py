"""Pure parsers for DHCP lease data: ISC dhcpd, dnsmasq, Kea memfile and dnsmasq's --dhcp-script.

The lease-file parsers take the bytes an incremental reader has read and return a `ParseResult`:
the leases for the core to ingest, a counted `RejectedInput` for each unit (ISC block, dnsmasq
line, Kea row) they could not read, and how many bytes they fully consumed. A half-written last
unit is neither consumed nor rejected, so the reader can keep it for its next read. Nothing here
opens files, touches the database or reads the clock.

Rules shared by all parsers:

- Per address, the last valid unit in the data wins (the files are logs or get rewritten); a
  rejected unit is reported and changes nothing else.
- A unit that frees an address without naming a client (an ISC `{ deleted; }` rubout or a freed
  block without `hardware`, a Kea declined row with its hardware address wiped) releases the lease
  that an earlier unit for that address described in the same data. With no earlier unit there is
  nothing to report, so it is skipped: it is how the servers write such records, not bad input.
- MACs are six lower-case colon-separated octets (`normalise_mac`); client ids are lower-case
  colon-separated hex of the bytes the server recorded (ISC's octal-escaped `uid` included).
- IPv6 leases name a client by DUID, not MAC. The MAC is the link-layer address inside a DUID-LLT
  (type 1) or DUID-LL (type 3) with an Ethernet/IEEE 802 hardware type, unless the server also
  recorded the hardware address (Kea's `hwaddr`, dnsmasq's `DNSMASQ_MAC`), which is preferred.
  DUID-EN and DUID-UUID carry no MAC: such a lease is rejected with that reason. A DUID-LLT holds
  the MAC of *an* interface of the client when the DUID was made, usually but not always the one
  in use. The DUID itself becomes the lease's `client_id`. A delegated prefix (ISC `ia-pd`, Kea
  lease type 2) is a lease whose `ip` is the prefix in CIDR form, e.g. `2001:db8:ff00::/56`.
"""

from __future__ import annotations

import csv
import ipaddress
import operator
import re
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from itertools import repeat
from typing import Any

from facility.errors import RejectedInput
from facility.sources.macs import canonical_mac
from facility.sources.records import LeaseIn
from facility.timeutil import EARLIEST_PLAUSIBLE

RAW_EXCERPT = 512  # bytes of a rejected unit kept for the `rejections` table
HOOK_SOURCE = "dnsmasq-hook"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_EPOCH = -62135596800  # 0001-01-01: datetime's range, so conversions cannot overflow
_MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59
_INFINITE_LIFETIME = 0xFFFFFFFF  # Kea and dnsmasq spell "never ends" as the largest uint32
_PLAUSIBLE_EPOCH = int(EARLIEST_PLAUSIBLE.timestamp())


@dataclass(slots=True)
class ParseResult:
    """What one parser call made of its input."""

    leases: list[LeaseIn] = field(default_factory=list)
    rejects: list[RejectedInput] = field(default_factory=list)
    consumed: int = 0  # bytes of complete units; the rest is a half-written tail to read again


# --- shared value parsing -------------------------------------------------------------------

# dnsmasq writes non-Ethernet hardware as `<type>-<address>`, e.g. 06-01:23:45:67:89:ab.
_HWTYPE_PREFIX = re.compile(r"[0-9a-f]{2}-(?=[0-9a-f]{1,2}:)")
_HEX_OCTETS = re.compile(r"[0-9a-fA-F]{1,2}(?::[0-9a-fA-F]{1,2})*")


def _canonical_mac(text: str) -> str | None:
    """The MAC in `text` (dnsmasq's hardware type prefix allowed), or None."""
    lowered = text.strip().lower()
    prefix = _HWTYPE_PREFIX.match(lowered)
    return canonical_mac(lowered[prefix.end() :] if prefix else lowered)


def normalise_mac(text: str) -> str:
    """A MAC address in any common spelling as six lower-case colon-separated octets.

    The spellings are the core's (`facility.sources.macs`, so lease data and `--mac` always agree) plus
    the hardware type prefix dnsmasq writes for non-Ethernet hardware.
    """
    mac = _canonical_mac(text) if isinstance(text, str) else None
    if mac is None:
        raise RejectedInput(
            f"{text!r} is not a MAC address (expected six octets, e.g. aa:bb:cc:dd:ee:ff)",
            raw=str(text)[:RAW_EXCERPT],
        )
    return mac


@lru_cache(maxsize=65536)
def _canonical_ip(text: str) -> tuple[str, int] | None:
    """(canonical text, version) of an IP address, or None."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return str(address), address.version


def _ip(text: str, *, version: int | None = None) -> tuple[str, int]:
    parsed = _canonical_ip(text)
    if parsed is None or (version is not None and parsed[1] != version):
        kind = f"an IPv{version}" if version else "an IP"
        raise RejectedInput(f"{text!r} is not {kind} address")
    return parsed


def _prefix(text: str) -> str:
    try:
        return str(ipaddress.IPv6Network(text))
    except ValueError as err:
        raise RejectedInput(f"{text!r} is not an IPv6 prefix") from err


@lru_cache(maxsize=65536)
def _hex_bytes(text: str) -> bytes | None:
    """The bytes of colon-separated hex such as `01:aa:b:cc`, or None."""
    if not _HEX_OCTETS.fullmatch(text):
        return None
    return bytes(int(part, 16) for part in text.split(":"))


def _hex_text(value: bytes) -> str:
    return value.hex(":")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def hostname_text(text: str) -> str | None:
    """A host name as the store can keep it (None when empty or `*`).

    Neither engine takes every string: PostgreSQL refuses NUL and both refuse lone surrogates
    (undecodable argv bytes), so control characters and invalid bytes become U+FFFD rather than
    making the whole lease unstorable.
    """
    if not text.isprintable():  # rare: the check is the fast path for every Kea row
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        text = _CONTROL.sub("\ufffd", text)
    text = text.strip()
    return text if text and text != "*" else None


def _client_id(text: str) -> str | None:
    """A client id field as canonical hex; empty and `*` mean none."""
    if text in ("", "*"):
        return None
    value = _hex_bytes(text)
    if value is None:
        raise RejectedInput(f"client id {text!r} is not colon-separated hex")
    return _hex_text(value)


def mac_from_duid(duid: bytes) -> str | None:
    """The MAC inside a DUID-LLT or DUID-LL with an Ethernet/IEEE 802 hardware type, or None."""
    if len(duid) < 4:
        return None
    duid_type = int.from_bytes(duid[:2], "big")
    hw_type = int.from_bytes(duid[2:4], "big")
    address = {1: duid[8:], 3: duid[4:]}.get(duid_type)
    if address is None or hw_type not in (1, 6) or len(address) != 6:
        return None
    return _hex_text(address)


def _duid_mac(duid: bytes) -> str:
    mac = mac_from_duid(duid)
    if mac is None:
        kind = {1: "LLT", 2: "EN", 3: "LL", 4: "UUID"}.get(int.from_bytes(duid[:2], "big"), "?")
        raise RejectedInput(f"DUID {_hex_text(duid) or '(empty)'} (type {kind}) carries no MAC")
    return mac


def _epoch(seconds: int, what: str) -> datetime:
    if not _MIN_EPOCH <= seconds <= _MAX_EPOCH:
        raise RejectedInput(f"{what} {seconds} is out of range")
    return _EPOCH + timedelta(seconds=seconds)


def _int(text: str | bytes, what: str) -> int:
    """A non-negative decimal integer; 20 digits are plenty for any epoch or lifetime."""
    if not (text.isascii() and text.isdigit() and len(text) <= 20):
        raise RejectedInput(f"{what} {text[:40]!r} is not a whole number")
    return int(text)


def _excerpt(raw: bytes | str) -> bytes | str:
    return raw[:RAW_EXCERPT]


class _Latest:
    """Per address, the last valid lease seen, plus every rejection: what a parse call returns."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.by_address: dict[str, LeaseIn] = {}
        self.rejects: list[RejectedInput] = []

    def put(self, lease: LeaseIn) -> None:
        self.by_address[lease.ip] = lease

    def release(self, ip: str, ends: datetime | None) -> None:
        """A client-less unit freed `ip`: release the earlier lease on it, if there was one."""
        previous = self.by_address.get(ip)
        if previous is not None:
            ends = ends if ends is not None else previous.ends
            self.by_address[ip] = previous._replace(released=True, ends=ends)

    def reject(self, reason: str, raw: bytes | str) -> None:
        self.rejects.append(RejectedInput(reason, source=self.source, raw=_excerpt(raw)))

    def result(self, consumed: int) -> ParseResult:
        return ParseResult(list(self.by_address.values()), self.rejects, consumed)


# --- ISC dhcpd.leases -----------------------------------------------------------------------

# One token, after optional white space. ISC escapes every non-printable byte in a string, so a
# string never spans lines: an open quote with a newline after it is corruption (`bad`), one with
# no newline after it is a write still in progress (`open`).
_ISC_TOKEN = re.compile(
    rb"""\s*(?:
        (?P<comment>\#[^\n]*)
      | "(?P<string>(?:[^"\\\n]|\\[^\n])*)"
      | (?P<punct>[{};])
      | (?P<word>[^\s{};"\#]+)
      | (?P<bad>"[^\n]*\n)
      | (?P<open>")
      | (?P<end>\Z)
    )""",
    re.VERBOSE,
)
_ISC_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_ISC_SIMPLE_ESCAPES = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"b": b"\b"}
_ISC_LEASES = frozenset({b"lease", b"ia-na", b"ia-ta", b"ia-pd"})
_ISC_IGNORED = frozenset(
    {
        b"host",
        b"failover",
        b"server-duid",
        b"authoring-byte-order",
        b"lease-id-format",
        b"db-time-format",
        b"class",
        b"subclass",
    }
)
_ISC_TOP = _ISC_LEASES | _ISC_IGNORED
_ISC_RELEASED = frozenset({b"free", b"released", b"expired", b"abandoned", b"reset", b"backup"})
_ISC_MAX_DEPTH = 16

_Token = tuple[str, bytes]  # (kind, value); a string's value is still escaped
_Stmt = tuple[list[_Token], "list[_Stmt] | None"]  # words, and the block body if any


@dataclass(slots=True)
class _IscUnit:
    start: int
    end: int
    tokens: list[_Token]
    error: str | None = None


class _IscUnits:
    """The complete top-level statements of data, one at a time.

    Only the tokens of the statement being read are held, so memory stays that of one block
    however large the data. `consumed` is the bytes they cover, once iterated to the end.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.consumed = 0

    def __iter__(self) -> Iterator[_IscUnit]:
        data = self.data
        tokens: list[_Token] = []
        error: str | None = None
        depth, start, consumed = 0, -1, len(data)
        for match in _ISC_TOKEN.finditer(data):
            kind = match.lastgroup or ""
            at = match.start(kind)
            if kind == "open" or (kind == "comment" and match.end() == len(data)):
                consumed = start if start >= 0 else at  # may still be being written
                break
            if kind in ("comment", "end"):
                continue
            value = match[kind]
            if kind == "word" and depth > 0 and value in _ISC_TOP and data[at - 1 : at] == b"\n":
                # Statements inside a block are indented, so a keyword at the start of a line
                # means the block before it was cut off (dhcpd died mid-write): drop it, resume.
                yield _IscUnit(start, at, tokens, "block cut off by the next statement")
                tokens, error, depth, start = [], None, 0, -1
            if start < 0:
                start = at
            tokens.append((kind, value))
            if kind == "bad":
                error = "string not closed on its line"
            elif kind == "punct":
                depth += {b"{": 1, b"}": -1, b";": 0}[value]
                if depth <= 0 and value != b"{":
                    yield _IscUnit(start, match.end(), tokens, error)
                    tokens, error, depth, start = [], None, 0, -1
        else:
            consumed = start if start >= 0 else len(data)
        self.consumed = consumed


def _isc_statements(tokens: list[_Token], pos: int = 0, depth: int = 0) -> tuple[list[_Stmt], int]:
    """Statements from tokens[pos:] up to the `}` closing this depth (or the end at depth 0)."""
    if depth > _ISC_MAX_DEPTH:
        raise RejectedInput("blocks nested too deep")
    statements: list[_Stmt] = []
    words: list[_Token] = []
    while pos < len(tokens):
        kind, value = tokens[pos]
        pos += 1
        if kind != "punct":
            words.append((kind, value))
        elif value == b";":
            statements.append((words, None))
            words = []
        elif value == b"{":
            body, pos = _isc_statements(tokens, pos, depth + 1)
            statements.append((words, body))
            words = []
        elif depth == 0 or words:
            raise RejectedInput("unbalanced '}'" if depth == 0 else "statement without ';'")
        else:
            return statements, pos
    if depth > 0 or words:
        raise RejectedInput("statement not complete")
    return statements, pos


def _isc_unescape(value: bytes) -> bytes:
    def one(match: re.Match[bytes]) -> bytes:
        if match[1]:
            return bytes([int(match[1], 8) & 0xFF])
        if match[2]:
            return bytes([int(match[2], 16)])
        return _ISC_SIMPLE_ESCAPES.get(match[3], match[3])

    return _ISC_ESCAPE.sub(one, value) if b"\\" in value else value


def _isc_word(token: _Token, what: str) -> str:
    kind, value = token
    if kind != "word" or not value.isascii():
        raise RejectedInput(f"{what}: expected a plain word, got {value[:40]!r}")
    return value.decode("ascii")


def _isc_bytes(token: _Token, what: str) -> bytes:
    """An id written as an octal-escaped string or (lease-id-format hex) as colon hex."""
    if token[0] == "string":
        return _isc_unescape(token[1])
    value = _hex_bytes(_isc_word(token, what))
    if value is None:
        raise RejectedInput(f"{what} {token[1][:40]!r} is neither a string nor hex")
    return value


def _isc_time(args: list[_Token], what: str) -> datetime | None:
    """`W YYYY/MM/DD HH:MM:SS` (UTC), `epoch N` or `never` (None)."""
    words = [_isc_word(token, what) for token in args]
    if words == ["never"]:
        return None
    if len(words) == 2 and words[0] == "epoch":
        return _epoch(_int(words[1], what), what)
    try:
        _weekday, date, clock = words
        year, month, day = (int(part) for part in date.split("/"))
        hour, minute, second = (int(part) for part in clock.split(":"))
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (ValueError, OverflowError) as err:
        raise RejectedInput(f"{what}: {' '.join(words)[:80]!r} is not a dhcpd time") from err


@dataclass(slots=True)
class _IscFields:
    """The statements of a `lease` or `iaaddr`/`iaprefix` block that matter here."""

    times: dict[str, datetime | None] = field(default_factory=dict)  # starts/ends/cltt given
    state: bytes = b"active"
    deleted: bool = False
    mac: str | None = None
    client_id: str | None = None
    hostname: str | None = None
    max_life: int | None = None

    @property
    def released(self) -> bool:
        return self.deleted or self.state in _ISC_RELEASED


def _isc_fields(body: list[_Stmt]) -> _IscFields:
    fields = _IscFields()
    for words, _block in body:
        key = words[0][1] if words and words[0][0] == "word" else b""
        args = words[1:]
        if key in (b"starts", b"ends", b"cltt"):
            fields.times[key.decode()] = _isc_time(args, key.decode())
        elif key == b"binding" and len(args) == 2 and args[0][1] == b"state":
            fields.state = args[1][1]
        elif key in (b"deleted", b"abandoned"):
            fields.deleted = True
        elif key == b"hardware" and len(args) == 2:
            fields.mac = normalise_mac(_isc_word(args[1], "hardware"))
        elif key == b"uid" and len(args) == 1:
            fields.client_id = _hex_text(_isc_bytes(args[0], "uid")) or None
        elif key == b"client-hostname" and len(args) == 1 and args[0][0] == "string":
            fields.hostname = hostname_text(_isc_unescape(args[0][1]).decode("utf-8", "replace"))
        elif key == b"max-life" and len(args) == 1:
            fields.max_life = _int(_isc_word(args[0], "max-life"), "max-life")
    return fields


def _isc_lease(words: list[_Token], body: list[_Stmt] | None, latest: _Latest) -> None:
    if body is None or len(words) != 2:
        raise RejectedInput("expected 'lease ADDRESS { ... }'")
    ip, _ = _ip(_isc_word(words[1], "lease"), version=4)
    try:
        fields = _isc_fields(body)
        times = fields.times
        if fields.mac is None:
            if not fields.released:
                raise RejectedInput("no hardware address")
            latest.release(ip, times.get("ends"))
            return
        starts = times.get("starts")
        if starts is None:
            raise RejectedInput("no 'starts'")
    except RejectedInput as err:
        raise RejectedInput(f"lease {ip}: {err.reason}") from err
    # No `ends`: dhcpd's parse_lease_declaration (server/confpars.c) starts from a zeroed lease
    # (lease_allocate, dmalloc's memset) and only an `ends` statement sets lease->ends, so the
    # lease ends at time 0, before now; with no binding state it is made FTS_FREE (`ends >
    # cur_time` is false), with one it is expired at startup. Either way it is over, and it says
    # nothing of when: a release at the last sighting (cltt) or else at its start.
    over = "ends" not in times
    latest.put(
        LeaseIn(
            source=latest.source,
            mac=fields.mac,
            ip=ip,
            starts=starts,
            ends=None if over else times["ends"],
            hostname=fields.hostname,
            client_id=fields.client_id,
            last_seen=times.get("cltt"),
            released=fields.released or over,
        )
    )


def _isc_ia(words: list[_Token], body: list[_Stmt] | None, latest: _Latest, raw: bytes) -> None:
    """An `ia-na`/`ia-ta`/`ia-pd` block: one lease per nested `iaaddr`/`iaprefix`."""
    if body is None or len(words) != 2:
        raise RejectedInput(f"expected '{words[0][1].decode()} ID {{ ... }}'")
    ident = _isc_bytes(words[1], "IA id")
    if len(ident) < 5:
        raise RejectedInput("IA id is too short to hold an IAID and a DUID")
    duid = ident[4:]  # the first four bytes are the IAID
    cltt = _isc_fields(body).times.get("cltt")  # the IA's last transaction
    for sub_words, sub_body in body:
        if sub_words[:1] in ([("word", b"iaaddr")], [("word", b"iaprefix")]):
            try:
                _isc_iaaddr(sub_words, sub_body, duid, cltt, latest)
            except RejectedInput as err:
                latest.reject(err.reason, raw)


def _isc_iaaddr(
    words: list[_Token],
    body: list[_Stmt] | None,
    duid: bytes,
    cltt: datetime | None,
    latest: _Latest,
) -> None:
    """One `iaaddr`/`iaprefix` block inside an IA whose client is `duid`."""
    kind = words[0][1].decode()
    if body is None or len(words) != 2:
        raise RejectedInput(f"expected '{kind} ADDRESS {{ ... }}'")
    address = _isc_word(words[1], kind)
    ip = _prefix(address) if kind == "iaprefix" else _ip(address, version=6)[0]
    try:
        _isc_iaaddr_lease(ip, _isc_fields(body), duid, cltt, latest)
    except RejectedInput as err:
        raise RejectedInput(f"{kind} {ip}: {err.reason}") from err
    except OverflowError as err:  # cltt + max-life beyond year 9999
        raise RejectedInput(f"{kind} {ip}: lease times out of range") from err


def _isc_iaaddr_lease(
    ip: str, fields: _IscFields, duid: bytes, cltt: datetime | None, latest: _Latest
) -> None:
    times = fields.times
    mac = mac_from_duid(duid)
    if mac is None and fields.released:
        latest.release(ip, times.get("ends"))
        return
    mac = mac or _duid_mac(duid)
    life = timedelta(seconds=fields.max_life) if fields.max_life is not None else None
    if "ends" in times:
        ends = times["ends"]
    elif cltt and life:
        ends = cltt + life
    else:
        raise RejectedInput("no 'ends', and no 'cltt' and 'max-life' to compute it")
    starts = times.get("starts") or cltt or (ends - life if ends and life else None)
    if starts is None:
        raise RejectedInput("no 'starts', and no 'cltt' or 'max-life' to compute it")
    latest.put(
        LeaseIn(
            source=latest.source,
            mac=mac,
            ip=ip,
            starts=starts,
            ends=ends,
            client_id=_hex_text(duid),
            last_seen=cltt,
            released=fields.released,
        )
    )


def _isc_unit(unit: _IscUnit, latest: _Latest, raw: bytes) -> None:
    if unit.error:
        raise RejectedInput(unit.error)
    statements, _ = _isc_statements(unit.tokens)
    words, body = statements[0]
    keyword = words[0][1] if words and words[0][0] == "word" else None
    if keyword == b"lease":
        _isc_lease(words, body, latest)
    elif keyword in _ISC_LEASES:
        _isc_ia(words, body, latest, raw)
    elif keyword not in _ISC_IGNORED:
        shown = keyword.decode("ascii", "replace") if keyword else "(none)"
        raise RejectedInput(f"unknown statement {shown[:40]!r}")


def parse_isc(data: bytes, *, source: str, site_zone: tzinfo | None = None) -> ParseResult:
    """Leases in ISC dhcpd `dhcpd.leases` / `dhcpd6.leases` data.

    dhcpd writes times as UTC (`W YYYY/MM/DD HH:MM:SS`) or, under `db-time-format local`, as
    `epoch N`, so `site_zone` is not needed to read them; it is accepted for callers that pass it.
    `cltt` (the client's last transaction) is the lease's `last_seen`. IPv6 `starts` is the
    address's own `starts` if written, else the IA's `cltt`, else `ends - max-life`.
    """
    del site_zone  # see the docstring: the format carries UTC or epoch seconds
    latest = _Latest(source)
    units = _IscUnits(data)
    for unit in units:
        raw = data[unit.start : unit.end]
        try:
            _isc_unit(unit, latest, raw)
        except RejectedInput as err:
            latest.reject(err.reason, raw)
    return latest.result(units.consumed)


# --- dnsmasq lease file ---------------------------------------------------------------------


def _complete_lines(data: bytes) -> tuple[list[bytes], int]:
    """The newline-terminated lines of data and the bytes they cover (a last partial line waits)."""
    end = data.rfind(b"\n") + 1
    return data[:end].split(b"\n")[:-1], end


def _dnsmasq_ends(expiry: int, now_hint: datetime | None) -> datetime | None:
    if expiry == 0:
        return None
    if expiry < _PLAUSIBLE_EPOCH:
        # dnsmasq built with HAVE_BROKEN_RTC writes the lease length instead of the expiry.
        if now_hint is None:
            raise RejectedInput(f"expiry {expiry} is a lease length (HAVE_BROKEN_RTC build)")
        return now_hint.astimezone(UTC) + timedelta(seconds=expiry)
    return _epoch(expiry, "expiry")


def _dnsmasq_line(
    line: bytes, source: str, now_hint: datetime | None, read_at: datetime | None
) -> LeaseIn | None:
    fields = [value.decode("utf-8", "replace") for value in line.split()]
    if fields[0] == "duid" and len(fields) == 2:
        return None  # the server's own DUID: starts the IPv6 section, names no client
    if len(fields) != 5:
        raise RejectedInput(f"expected 5 fields, got {len(fields)}")
    expiry_text, hw_or_iaid, address, hostname, client = fields
    ends = _dnsmasq_ends(_int(expiry_text, "expiry"), now_hint)
    # Decided per line by address family, so a read that starts after the `duid` line still works.
    ip, version = _ip(address)
    client_id: str | None
    if version == 6:
        _int(hw_or_iaid.removeprefix("T"), "IAID")  # T marks a temporary address
        duid = _hex_bytes(client) if client != "*" else None
        if not duid:
            raise RejectedInput(f"IPv6 lease {ip} has no client DUID")
        mac, client_id = _duid_mac(duid), _hex_text(duid)
    else:
        mac, client_id = normalise_mac(hw_or_iaid), _client_id(client)
    return LeaseIn(
        source=source,
        mac=mac,
        ip=ip,
        starts=_dnsmasq_starts(ends, read_at),
        ends=ends,
        hostname=hostname_text(hostname),
        client_id=client_id,
    )


def _dnsmasq_starts(ends: datetime | None, read_at: datetime | None) -> datetime:
    if read_at is None:
        return ends or EARLIEST_PLAUSIBLE
    read_at = read_at.astimezone(UTC)
    return read_at if ends is None else min(read_at, ends)


def parse_dnsmasq(
    data: bytes,
    *,
    source: str,
    now_hint: datetime | None = None,
    read_at: datetime | None = None,
) -> ParseResult:
    """Leases in a dnsmasq lease file (`dnsmasq.leases`), IPv4 and IPv6 sections.

    dnsmasq records only when a lease expires, not when it started or was renewed, and
    `last_seen` is None (reading a file is not a sighting). `starts` is `ends`
    (`EARLIEST_PLAUSIBLE` for a never-ending lease, expiry `0`): stable across reads. A reader
    that knows when it read the file passes `read_at`, and `starts` becomes `min(read_at, ends)`
    (`read_at` for a never-ending lease): the lease ran at least from then, and a renewal read
    later starts inside the stored lease, so the core merges it there instead of opening a new
    one. `now_hint` (default `read_at`) is used only for builds with HAVE_BROKEN_RTC, which write
    a lease length instead of an expiry epoch: `ends = now_hint + length`; without either such
    lines are rejected.
    """
    now_hint = now_hint or read_at
    latest = _Latest(source)
    lines, consumed = _complete_lines(data)
    for line in lines:
        if not line.strip():
            continue
        try:
            lease = _dnsmasq_line(line, source, now_hint, read_at)
        except RejectedInput as err:
            latest.reject(err.reason, line)
        else:
            if lease is not None:
                latest.put(lease)
    return latest.result(consumed)


# --- Kea memfile CSV ------------------------------------------------------------------------

_KEA_ESCAPE = re.compile(r"&#x([0-9a-fA-F]{2})")
_KEA_RELEASED_STATES = {"0": False, "1": True, "2": True, "3": True, "4": False}
_KEA_REQUIRED = {
    4: ("address", "hwaddr", "client_id", "valid_lifetime", "expire"),
    6: ("address", "duid", "valid_lifetime", "expire", "lease_type", "prefix_len"),
}


_KEA_FIELDS = (
    "address",
    "hwaddr",
    "client_id",
    "valid_lifetime",
    "expire",
    "hostname",
    "state",
    "lease_type",
    "prefix_len",
)


# A typical IPv4 row, column by column: what Kea writes for a lease with a MAC, in the canonical
# form the checks would return unchanged and valid by construction (a lifetime of at most nine
# digits is never the infinite one and keeps cltt in range; eleven digits of expiry stay below
# year 9999; no `&` means no escape). Once its address is known to be canonical, a row like this
# cannot be rejected, and is read as written.
_HEX2 = "[0-9a-f][0-9a-f]"
_MAC_TEXT = ":".join([_HEX2] * 6)  # unrolled: a repeated group is slower in `re`
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # what inet_ntop writes
# Addresses one per line, each as inet_ntop writes it: checked once per address, not per row.
_CANONICAL_IPV4_LINES = re.compile(rf"(?:{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}\n)*+")
_KEA_TYPICAL4 = {
    "address": r"[0-9]{1,3}+\.[0-9]{1,3}+\.[0-9]{1,3}+\.[0-9]{1,3}+",  # canonical: see above
    "hwaddr": f"({_MAC_TEXT})",
    "client_id": r"(?:01:\1)?+",  # none, or the usual one (RFC 2132): hardware type 1, hwaddr
    "valid_lifetime": "[0-9]{1,9}+",
    "expire": "[0-9]{1,11}+",
    "hostname": "[-.0-9A-Za-z_]{0,255}+",  # one that hostname_text returns as it is
    "state": "[0-4]?+",
}
# A column the parser does not read: any field that csv.reader returns as written, well under
# its field_size_limit (a longer one is a csv.Error, so the row must take the full path).
_KEA_UNREAD = "[^,\r\n\x00]{0,1024}+"
# Lines that are not typical rows, up to the next typical row or just past a header line.
_KEA_OTHER = r"(?:{not_typical}(?!address)[^\n]*+\n)*+(?:address[^\n]*+\n)?"


@dataclass(frozen=True, slots=True)
class _KeaScan:
    """Where runs of typical rows and of other lines end, under one header."""

    typical: re.Pattern[str] | None  # None: no row is typical (IPv6, or no header yet)
    other: re.Pattern[str]


@lru_cache(maxsize=64)
def _kea_scan(names: tuple[str, ...]) -> _KeaScan:
    """The scan patterns for the rows under these (stripped) header names."""
    if "duid" in names or not names or names[0] != "address":
        return _KeaScan(None, re.compile(_KEA_OTHER.format(not_typical="")))
    columns = dict(_KEA_TYPICAL4)
    if names.index("client_id") < names.index("hwaddr"):  # nothing to refer back to yet
        columns["client_id"] = ""
    line = ",".join(columns.get(name, _KEA_UNREAD) for name in names) + "\n"
    other = _KEA_OTHER.format(not_typical=f"(?!{line})")
    return _KeaScan(re.compile(f"(?:{line})*+"), re.compile(other))


_KEA_NO_HEADER = _kea_scan(())


@dataclass(frozen=True, slots=True)
class _KeaLayout:
    """How to read the rows under one header line."""

    version: int
    width: int
    # row -> the _KEA_FIELDS values (v6: `duid` for `client_id`); a column this Kea version did
    # not write reads index `width`, where the reader appends "" to every row.
    fields: Callable[[list[str]], tuple[str, ...]]
    client: Callable[[str], tuple[str | None, str | None]]  # client_id/duid -> (client id, MAC)
    scan: _KeaScan


def _kea_layout(header: list[str]) -> _KeaLayout:
    names = [name.strip() for name in header]
    version = 6 if "duid" in names else 4
    missing = [name for name in _KEA_REQUIRED[version] if name not in names]
    if missing:
        raise RejectedInput(f"Kea header lacks column(s) {', '.join(missing)}")
    wanted = [("duid" if name == "client_id" and version == 6 else name) for name in _KEA_FIELDS]
    positions = [names.index(name) if name in names else len(names) for name in wanted]
    client = _kea_duid if version == 6 else _kea_client_id
    fields = operator.itemgetter(*positions)
    return _KeaLayout(version, len(names), fields, client, _kea_scan(tuple(names)))


def kea_header(data: bytes) -> list[str] | None:
    """The column names if data starts with a complete Kea CSV header line, else None."""
    lines, _ = _complete_lines(data[: data.find(b"\n") + 1])
    if not lines:
        return None
    names = lines[0].decode("utf-8", "replace").strip().split(",")
    return names if names[0] == "address" else None


def _kea_unescape(value: str) -> str:
    return _KEA_ESCAPE.sub(lambda match: chr(int(match[1], 16)), value)


_CANONICAL_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
_CANONICAL_HEX = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2})*")
_MEMO_LIMIT = 1 << 16  # entries per memo before it starts over: bounds memory on huge files

# A row reduced to checked plain values; LeaseIn is built only for the last row per address.
_KeaRow = tuple[str, str, str | None, str | None, int, int | None, bool]  # mac ip cid host s e rel


def _remember(memo: dict[str, Any], text: str, check: Callable[[str], Any]) -> Any:
    """check(text), stored in memo; a RejectedInput from check propagates and is not stored."""
    value = check(text)
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[text] = value
    return value


class _KeaRows:
    """Checks Kea rows, keeping the last valid row per address.

    Runs of typical rows are taken whole (`add_typical`), any other row one by one (`add`).
    Lease files name the same devices and addresses over and over, so field checks are memoised
    per call (only successes: a bad value is checked again and rejected again).
    """

    def __init__(self) -> None:
        self.layout: _KeaLayout | None = None
        self.width = -1  # of a data row under the current header
        self.no_layout = "no Kea header line before this row"
        # A str is a typical row under the current layout, after its address: read when needed.
        self.latest: dict[str, _KeaRow | str] = {}
        self._ips: dict[str, str] = {}
        self._macs: dict[str, str] = {}
        self._clients: dict[int, dict[str, tuple[str | None, str | None]]] = {4: {}, 6: {}}

    def use_header(self, names: list[str]) -> None:
        """Read the rows that follow under this header line."""
        for ip, row in self.latest.items():  # typical rows kept as text: read under their header
            if isinstance(row, str):
                self._settle(ip, row)
        self.layout, self.width = None, -1
        self.no_layout = "the Kea header line before this row was rejected"
        self.layout = _kea_layout(names)
        self.width = self.layout.width

    def other(self, row: list[str]) -> None:
        """A line that is not a data row under the current header."""
        if row[0] == "address":  # a header line: at the start, or after the file was rewritten
            self.use_header(row)
        elif self.layout is None:
            raise RejectedInput(self.no_layout)
        else:
            raise RejectedInput(f"expected {self.width} fields, got {len(row)}")

    def add(self, row: list[str]) -> None:
        """Check one data row and record it as the latest for its address."""
        layout = self.layout
        assert layout is not None
        row.append("")  # see _KeaLayout.fields
        address, hwaddr, client, valid, expire, hostname, state, lease_type, plen = layout.fields(
            row
        )
        if layout.version == 6:
            address = _kea_address6(address, lease_type, plen)
        ip = self._ips.get(address) or _remember(self._ips, address, _kea_ip)
        try:
            ends = int(expire)
            starts = ends - int(valid)  # cltt: Kea writes expire = cltt + valid_lifetime
        except ValueError as err:
            raise RejectedInput("valid_lifetime and expire must be whole numbers") from err
        if not (_MIN_EPOCH <= starts <= ends <= _MAX_EPOCH and ends - starts <= _INFINITE_LIFETIME):
            raise RejectedInput(f"valid_lifetime {valid} / expire {expire} out of range")
        released = _kea_released(state, starts, ends)
        memo = self._clients[layout.version]
        client_id, mac = memo.get(client) or _remember(memo, client, layout.client)
        if hwaddr:
            mac = self._macs.get(hwaddr) or _remember(self._macs, hwaddr, _kea_mac)
        if mac is None:
            self._release(ip, starts, released)
            return
        end = None if ends - starts == _INFINITE_LIFETIME else ends  # None: it never ends
        self.latest[ip] = (mac, ip, client_id, hostname_text(hostname), starts, end, released)

    def add_typical(self, text: str) -> bool:
        """Record a run of rows that the layout's typical pattern matched; False if it cannot.

        None of them can be rejected and none releases another, so per address only the last
        row matters: it is found at C speed and kept as text. An address not written canonically
        (False, nothing recorded) leaves the run to `add`, row by row.
        """
        lines = text.split("\n")
        lines.pop()  # after the last newline
        last = dict(map(str.split, lines, repeat(","), repeat(1)))  # address -> rest of last row
        if not _CANONICAL_IPV4_LINES.fullmatch("\n".join(last) + "\n"):
            return False
        self.latest.update(last)
        return True

    def _settle(self, ip: str, rest: str) -> None:
        """Read a typical row kept as text by add_typical the full way, before anything changes it."""
        self.add(f"{ip},{rest}".split(","))

    def _typical_lease(self, source: str, ip: str, rest: str) -> LeaseIn:
        """The lease of a typical row kept as text by add_typical: as written, nothing to check."""
        # A typical row was matched under a layout, so there is one (unchecked: once per address).
        fields = self.layout.fields(f"{ip},{rest},".split(","))  # type: ignore[union-attr]
        _, mac, client_id, valid, expire, hostname, state, _, _ = fields
        ends = int(expire)
        starts = ends - int(valid)
        released = _kea_released(state, starts, ends)
        return _kea_lease(
            source, mac, ip, client_id or None, hostname or None, starts, ends, released
        )

    def _release(self, ip: str, at: int, released: bool) -> None:
        """A row without hardware: Kea wipes the client of declined and deleted leases."""
        if not released:
            raise RejectedInput("no hwaddr, and the client id or DUID names no MAC")
        kept = self.latest.get(ip)
        if isinstance(kept, str):
            self._settle(ip, kept)
        previous = self.latest.get(ip)
        if previous is not None:
            self.latest[ip] = (*previous[:5], at, True)

    def leases(self, source: str) -> dict[str, LeaseIn]:
        """The last valid row per address as leases."""
        typical = self._typical_lease
        return {
            ip: typical(source, ip, row) if isinstance(row, str) else _kea_lease(source, *row)
            for ip, row in self.latest.items()
        }


def _kea_released(state: str, starts: int, ends: int) -> bool:
    """States 1-3 (declined, expired-reclaimed, released) and valid_lifetime 0 (deleted)."""
    released = _KEA_RELEASED_STATES.get(state or "0")  # no state column before Kea 2.0
    if released is None:
        raise RejectedInput(f"unknown state {state!r}")
    return released or ends == starts


def _kea_address6(address: str, lease_type: str, prefix_len: str) -> str:
    if lease_type == "2":  # a delegated prefix
        return f"{address}/{prefix_len}"
    if lease_type not in ("0", "1"):
        raise RejectedInput(f"unknown lease_type {lease_type!r}")
    return address


def _kea_ip(text: str) -> str:
    if "/" in text:
        return _prefix(text)
    try:  # fast path: a dotted quad that round-trips is already what ipaddress would return
        if socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, text)) == text:
            return text
    except (OSError, ValueError):
        pass
    parsed = _canonical_ip(text)
    if parsed is None:
        raise RejectedInput(f"{text!r} is not an IP address")
    return parsed[0]


def _kea_mac(text: str) -> str:
    if _CANONICAL_MAC.fullmatch(text):
        return text
    mac = _canonical_mac(text)
    if mac is None:
        raise RejectedInput(f"hwaddr {text!r} is not a 6-octet MAC")
    return mac


def _kea_client_id(text: str) -> tuple[str | None, str | None]:
    """(client_id, mac it names): RFC 2132 type 1 ids are an Ethernet address."""
    client_id = text if _CANONICAL_HEX.fullmatch(text) else _client_id(text)
    if client_id and len(client_id) == 20 and client_id.startswith("01:"):
        return client_id, client_id[3:]
    return client_id, None


def _kea_duid(text: str) -> tuple[str | None, str | None]:
    """(client_id, mac) from a v6 DUID column."""
    duid = _hex_bytes(text) if text else None
    if text and duid is None:
        raise RejectedInput(f"duid {text!r} is not colon-separated hex")
    return (_hex_text(duid), mac_from_duid(duid)) if duid else (None, None)


def _kea_lease(
    source: str,
    mac: str,
    ip: str,
    client_id: str | None,
    hostname: str | None,
    starts: int,
    ends: int | None,
    released: bool,
) -> LeaseIn:
    """The lease of a row (see _KeaRow)."""
    cltt = datetime.fromtimestamp(starts, UTC)  # add() checked the range
    ends_at = None if ends is None else cltt + _lifetime(ends - starts)
    # Positional: keywords cost noticeably more, and this runs once per address and chunk.
    # cltt is the client's last transaction with the server: a sighting, so also last_seen.
    return LeaseIn(source, mac, ip, cltt, ends_at, hostname, client_id, cltt, released)


@lru_cache(maxsize=1024)
def _lifetime(seconds: int) -> timedelta:
    """A lease's valid lifetime: a server hands out few distinct ones."""
    return timedelta(seconds=seconds)


def _kea_read(text: str, rows: _KeaRows, result: _Latest) -> None:
    """Feed every line to `rows` one by one, switching layout at each header line."""
    lines = text.split("\n")[:-1]
    escaped = "&#x" in text  # escapes are rare: only unescape fields when the lines have any
    reader = csv.reader(lines, quoting=csv.QUOTE_NONE)  # Kea never quotes: it escapes commas
    while True:
        try:
            for row in reader:
                try:
                    if len(row) == rows.width and row[0] != "address":  # a data row: most lines
                        try:
                            rows.add([_kea_unescape(value) for value in row] if escaped else row)
                        except RejectedInput as err:  # address is Kea's first column
                            raise RejectedInput(f"lease {row[0][:64]}: {err.reason}") from err
                    elif row:
                        rows.other(row)
                except RejectedInput as err:
                    line = lines[reader.line_num - 1]
                    result.reject(err.reason, line.encode("utf-8", "replace"))
            return
        except csv.Error as err:
            line = lines[reader.line_num - 1]
            result.reject(f"not CSV: {err}", line.encode("utf-8", "replace"))


def _kea_scan_lines(text: str, rows: _KeaRows, result: _Latest) -> None:
    """Feed every line to `rows` in file order: typical rows by the run, the others one by one."""
    pos = 0
    while pos < len(text):
        scan = rows.layout.scan if rows.layout is not None else _KEA_NO_HEADER
        stop = _run_end(scan.typical, text, pos) if scan.typical is not None else pos
        if stop > pos:
            if not rows.add_typical(text[pos:stop]):
                _kea_read(text[pos:stop], rows, result)
        else:  # not typical, so `other` takes at least this line
            stop = _run_end(scan.other, text, pos)
            _kea_read(text[pos:stop], rows, result)
        pos = stop


def _run_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where the run of lines `pattern` matches at `pos` ends."""
    found = pattern.match(text, pos)
    assert found is not None, "a scan pattern matches the empty string, so it always matches"
    return found.end()


def parse_kea(data: bytes, *, source: str, header: list[str] | None = None) -> ParseResult:
    """Leases in Kea memfile CSV (`kea-leases4.csv` / `kea-leases6.csv`), read by header.

    The data must start with the header line unless `header` (see `kea_header`) is given, as an
    incremental reader does for data after the first line. `valid_lifetime` 0 and states 1-3
    (declined, expired-reclaimed, released) mean released; 4294967295 means it never ends.
    """
    result = _Latest(source)
    end = data.rfind(b"\n") + 1
    text = data[:end].decode("utf-8", "replace")
    rows = _KeaRows()
    if header is not None:
        try:
            rows.use_header(header)
        except RejectedInput as err:
            result.reject(err.reason, ",".join(header).encode("utf-8", "replace"))
    _kea_scan_lines(text, rows, result)
    result.by_address = rows.leases(source)
    return result.result(end)


# --- dnsmasq --dhcp-script ------------------------------------------------------------------

_HOOK_ACTIONS = frozenset({"add", "old", "del"})  # init, tftp, arp-*, relay-snoop: not leases


def _env_int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name, "").strip()
    return _int(value, name) if value else None


def _hook_times(
    action: str, env: Mapping[str, str], now: datetime
) -> tuple[datetime, datetime | None]:
    """(starts, ends) from the lease times dnsmasq put in the environment."""
    expires = _env_int(env, "DNSMASQ_LEASE_EXPIRES")
    length = _env_int(env, "DNSMASQ_LEASE_LENGTH")  # instead of EXPIRES on HAVE_BROKEN_RTC builds
    remaining = _env_int(env, "DNSMASQ_TIME_REMAINING")
    if length in (0, _INFINITE_LIFETIME):
        length = None  # a never-ending lease has no length to count back from
    ends: datetime | None
    if action == "del":
        ends = now
    elif expires is not None:
        ends = _epoch(expires, "DNSMASQ_LEASE_EXPIRES") if expires else None
    elif remaining is not None:
        ends = now + timedelta(seconds=remaining)
    elif length is not None:
        ends = now + timedelta(seconds=length)
    else:
        ends = None  # no end given: the core's max_lease_silence limit closes it
    starts = now
    if action != "add" and length is not None:
        if expires:
            starts = _epoch(expires - length, "lease start")
        elif remaining is not None:
            starts = now - timedelta(seconds=max(length - remaining, 0))
    return starts, ends


def _hook_client(mac_arg: str, version: int, env: Mapping[str, str]) -> tuple[str, str | None]:
    """(mac, client_id): for IPv6 dnsmasq passes the client DUID where the MAC would be."""
    if version == 4:
        return normalise_mac(mac_arg), _client_id(env.get("DNSMASQ_CLIENT_ID", "").strip())
    duid = _hex_bytes(mac_arg)
    if not duid:
        raise RejectedInput(f"IPv6 client DUID {mac_arg!r} is not colon-separated hex")
    env_mac = env.get("DNSMASQ_MAC", "").strip()
    return (normalise_mac(env_mac) if env_mac else _duid_mac(duid)), _hex_text(duid)


def _hook_lease(argv: list[str], env: Mapping[str, str], now: datetime, source: str) -> LeaseIn:
    action = argv[0]
    if len(argv) not in (3, 4):
        raise RejectedInput(f"'{action}' takes MAC IP [HOSTNAME], got {len(argv) - 1} arguments")
    ip, version = _ip(argv[2].strip())
    mac, client_id = _hook_client(argv[1], version, env)
    try:
        starts, ends = _hook_times(action, env, now)
    except OverflowError as err:
        raise RejectedInput("lease times in the environment are out of range") from err
    # A `del` may be an expiry rather than the client leaving, and the `old` replay at start-up
    # repeats the lease file: neither is a sighting of the device.
    sighting = action != "del" and env.get("DNSMASQ_DATA_MISSING", "").strip() != "1"
    return LeaseIn(
        source=source,
        mac=mac,
        ip=ip,
        starts=starts,
        ends=ends,
        hostname=hostname_text(argv[3]) if len(argv) == 4 else None,
        client_id=client_id,
        last_seen=now if sighting else None,
        released=action == "del",
    )


def parse_hook(
    argv: list[str], env: Mapping[str, str], *, now: datetime, source: str = HOOK_SOURCE
) -> LeaseIn | None:
    """The lease in one dnsmasq `--dhcp-script` call, or None for actions that are not leases."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not argv:
        raise RejectedInput("dnsmasq hook called without an action", source=source)
    if argv[0] not in _HOOK_ACTIONS:
        return None
    try:
        return _hook_lease(list(argv), env, now.astimezone(UTC), source)
    except RejectedInput as err:
        raise RejectedInput(err.reason, source=source, raw=_excerpt(" ".join(argv))) from err
