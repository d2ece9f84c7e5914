"""Turn one MQTT message (topic, payload bytes) into a core input value, purely.

`parse_message` routes a topic to the adapter whose base topic is the longest match, and returns a
`DoorEventIn`, `LeaseIn` or `SegmentIn`, or None for a message that is knowingly ignored. Anything
else raises `RejectedInput` with a one-line reason, the adapter's name as `source` and the first
512 bytes of the payload as `raw`; no other exception escapes, whatever the bytes.

Our own topics (`<prefix>` defaults to `facility` and may contain slashes):

- `<prefix>/doors/<door>/events` `{"event_id", "badge", "at", "result": "granted"|"denied"}`.
  `<door>` may span levels (`<prefix>/doors/405419896/4/events` is door `405419896/4`).
  `event_id` and `badge` are strings; an integer is accepted and written in decimal.
- `<prefix>/wifi/leases` `{"mac", "ip", "hostname"?, "action": "add"|"old"|"del", "at",
  "expires"?}`. `at`, when the DHCP server reported the lease, is both `starts` and `last_seen`.
  add/old: `ends` = `expires`; absent or null means the server gave no end, stored as None, which
  the open-lease silence limit closes. del: `released`, and `ends` = the earlier of `expires` and
  `at`, since a lease deleted before it expired ended when it was deleted.
- `<prefix>/cameras/<camera>/segments` `{"path", "start", "end"}`: path relative to the recordings
  root (no absolute path, `.`/`..`/empty parts, backslash or control character), end >= start.
  An announcement only confirms what the recordings layout reads from the path (invariant 11):
  the path must fit the layout, the camera in the topic must be the one the layout reads, and
  `start` must be the layout's start to the precision the path gives (a second in Frigate's). The
  segment handed on is the layout's reading, camera and times alike; `end` is checked, not used.
  Without a layout (no recordings root configured) every announcement is rejected: a row whose
  file facility cannot reach would never be purged.
- `<prefix>/status` (our own status / last will) is ignored, and so is a zero-length payload on
  any topic: that is how MQTT clears a retained message, and it carries no data.

Times are ISO 8601 strings (without an offset: wall time in `site_zone`) or epoch seconds (int or
float, never true/false), and must fall in 2000..2099: earlier is an unsynchronised device clock.

Adapters for equipment, each under a configurable base topic (None turns it off):

- esp-rfid (`esp_rfid_topic`, default `esprfid`): events arrive on `<base>/send`, on
  `<base>/<device>/send` for per-device bases, or on `<base>` itself (old firmware). `type` other
  than "access" (INFO, WARN, boot, heartbeat, ...) and the other subtopics (cmd, accesslist, sync,
  io, avty, tag) are ignored. door = `hostname`, else `door` (newer firmware), else the topic
  without `/send`. badge = `uid`; a blank uid is a remote "opendoor" command, not a badge, and is
  ignored. granted = `isKnown` ("true"/"false", or a JSON boolean) and `access` in Admin/Always:
  the firmware reports known-but-refused cards as "Disabled" or "Expired", so anything else is a
  refusal. at = epoch `time`; before 2000 (no NTP yet) is rejected, never stored as 1970.
  esp-rfid has no event id, so event_id = `esp-rfid:<door>:<uid>:<time>`: the same message
  redelivered gets the same id, and the same card at the same door within one second is one event.
- uhppoted-mqtt (`uhppoted_topic`, default `uhppoted/gateway`): `<base>/events` and its subtopics
  (live/feed); the event may be bare (as in the samples) or in uhppoted's `{"message": {"event":
  ...}}` envelope (its HMAC is not checked: broker ACLs are the trust boundary; an encrypted event
  is rejected). door = `<device-id>/<door-id>`, badge = card number, granted = `access-granted`,
  event_id = `uhppoted:<device-id>:<event-id>`. `timestamp` is controller wall time
  (`2019-08-09 16:18:55 PDT`): read in `controller_zone` (default `site_zone`), because zone
  abbreviations are ambiguous; UTC/GMT/Z and numeric offsets are honoured. A record with card
  number 0 has no card (door sensor, button, alarm) and is ignored.
- Frigate (`frigate_topic`, default `frigate`): `frigate/events` are object detections (a person
  seen from start_time to end_time), not recording files. Segments come from the camera scanner,
  which sees the files that exist and must be deleted; a segment row made from a detection would
  have no file behind it (invariant 5). So they are checked to be JSON objects and ignored, as is
  every other Frigate topic.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import partial
from typing import Any

from connectors.camera_layout import LATEST_PLAUSIBLE, Layout, relpath_problem
from facility.errors import InputError, RejectedInput
from facility.sources.macs import normalise_mac
from facility.sources.records import DoorEventIn, LeaseIn, SegmentIn
from facility.timefmt import site_text
from facility.timeutil import EARLIEST_PLAUSIBLE, from_epoch, parse_instant, to_utc

SOURCE_MQTT = "mqtt"
SOURCE_ESP_RFID = "esp-rfid"
SOURCE_UHPPOTED = "uhppoted"
SOURCE_FRIGATE = "frigate"
MAX_PAYLOAD = 64 * 1024  # far above any real message; bounds the cost of a hostile one
RAW_EXCERPT = 512
MAX_NAME = 200
MAX_DIGITS = 20  # no field needs more; stops a 4000-digit integer before Python converts it
ESP_GRANTING = frozenset({"Admin", "Always"})

Parsed = DoorEventIn | LeaseIn | SegmentIn | None
_EPOCH_FLOOR = EARLIEST_PLAUSIBLE.timestamp()
_EPOCH_CEILING = LATEST_PLAUSIBLE.timestamp()
_BAD_CHAR_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_UHPPOTED_TIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[ T]([0-9]{2}:[0-9]{2}:[0-9]{2})(?: +(\S{1,10}))?"
)
_OFFSET = re.compile(r"([+-])([0-9]{2}):?([0-9]{2})?")
_UTC_NAMES = frozenset({"UTC", "GMT", "Z", "UT"})


class _Bad(Exception):
    """Internal: a reason to reject; `parse_message` adds the source and the raw excerpt."""


@dataclass(frozen=True, slots=True)
class _Zones:
    site: tzinfo
    controller: tzinfo
    layout: Layout | None = None


def parse_message(
    topic: str,
    payload: bytes,
    *,
    prefix: str = "facility",
    site_zone: tzinfo,
    controller_zone: tzinfo | None = None,
    esp_rfid_topic: str | None = "esprfid",
    uhppoted_topic: str | None = "uhppoted/gateway",
    frigate_topic: str | None = "frigate",
    layout: Layout | None = None,
) -> Parsed:
    """The core input one MQTT message carries, None if ignored; `RejectedInput` if it is bad.

    `layout` reads segment paths; without one, segment announcements are rejected.
    """
    raw = bytes(payload[:RAW_EXCERPT]) if isinstance(payload, bytes | bytearray) else b""
    zones = _Zones(site_zone, controller_zone or site_zone, layout)
    routes: dict[str | None, tuple[str, _Adapter]] = {
        frigate_topic: (SOURCE_FRIGATE, _frigate),
        uhppoted_topic: (SOURCE_UHPPOTED, _uhppoted),
        esp_rfid_topic: (SOURCE_ESP_RFID, _esp_rfid),
        prefix: (SOURCE_MQTT, _own),
    }
    source = SOURCE_MQTT
    try:
        source, handler = _route(topic, routes)
        if not isinstance(payload, bytes | bytearray):
            raise _Bad(f"payload is a {type(payload).__name__}, not bytes")
        return handler(bytes(payload), zones)
    except _Bad as bad:
        raise RejectedInput(str(bad), source=source, raw=raw) from None


def topic_filters(
    prefix: str = "facility",
    *,
    esp_rfid_topic: str | None = "esprfid",
    uhppoted_topic: str | None = "uhppoted/gateway",
) -> list[str]:
    """The MQTT subscriptions that carry what `parse_message` stores (Frigate is not needed)."""
    filters = [f"{prefix}/#"]
    if esp_rfid_topic:
        filters += [esp_rfid_topic, f"{esp_rfid_topic}/+/send", f"{esp_rfid_topic}/send"]
    if uhppoted_topic:
        filters += [f"{uhppoted_topic}/events", f"{uhppoted_topic}/events/#"]
    return filters


# --- routing ---------------------------------------------------------------------------------

_Adapter = Callable[[str, str, bytes, "_Zones"], Parsed]
_Handler = Callable[[bytes, "_Zones"], Parsed]


def _route(topic: str, routes: dict[str | None, tuple[str, _Adapter]]) -> tuple[str, _Handler]:
    """The adapter whose base topic is the longest one `topic` lies under, and its source name."""
    if not isinstance(topic, str):
        raise _Bad(f"topic is a {type(topic).__name__}, not a string")
    matches = [base for base in routes if base and (topic == base or topic.startswith(base + "/"))]
    if not matches:
        raise _Bad(f"no adapter for topic {_show(topic)}")
    base = max(matches, key=len)
    source, adapter = routes[base]
    return source, partial(adapter, topic, base)


def _own(topic: str, prefix: str, payload: bytes, zones: _Zones) -> Parsed:
    rest = topic[len(prefix) + 1 :].split("/") if topic != prefix else []
    if rest == ["status"]:
        return None
    parse = _own_parser(rest, topic, prefix)
    if not payload:
        return None  # a zero-length message clears a retained one; it carries no data
    return parse(_decode(payload), zones)


def _own_parser(
    rest: list[str], topic: str, prefix: str
) -> Callable[[dict[str, Any], _Zones], Parsed]:
    """The parser for one of our topics, given the levels after the prefix."""
    if len(rest) >= 3 and rest[0] == "doors" and rest[-1] == "events":
        door = "/".join(_name(part, "door (in the topic)") for part in rest[1:-1])
        return partial(_door_event, door)
    if rest == ["wifi", "leases"]:
        return _lease
    if len(rest) == 3 and rest[0] == "cameras" and rest[2] == "segments":
        return partial(_segment, _name(rest[1], "camera (in the topic)"))
    raise _Bad(f"unknown topic {_show(topic)} under prefix {_show(prefix)}")


# --- our own payloads ------------------------------------------------------------------------


def _door_event(door: str, doc: dict[str, Any], zones: _Zones) -> DoorEventIn:
    site_zone = zones.site
    result = _field(doc, "result")
    if result not in ("granted", "denied"):
        raise _Bad(f'result: expected "granted" or "denied", got {_show(result)}')
    return DoorEventIn(
        event_id=_name_or_int(_field(doc, "event_id"), "event_id"),
        door=door,
        badge=_name_or_int(_field(doc, "badge"), "badge"),
        at=_instant(_field(doc, "at"), "at", site_zone),
        granted=result == "granted",
        source=SOURCE_MQTT,
    )


def _lease(doc: dict[str, Any], zones: _Zones) -> LeaseIn:
    site_zone = zones.site
    action = _field(doc, "action")
    if action not in ("add", "old", "del"):
        raise _Bad(f'action: expected "add", "old" or "del", got {_show(action)}')
    at = _instant(_field(doc, "at"), "at", site_zone)
    expires = doc.get("expires")
    ends = None if expires is None else _instant(expires, "expires", site_zone)
    if action == "del":
        ends = at if ends is None else min(ends, at)
    return LeaseIn(
        source=SOURCE_MQTT,
        mac=_mac(_field(doc, "mac")),
        ip=_ip(_field(doc, "ip")),
        starts=at,
        ends=ends,
        hostname=_hostname(doc.get("hostname")),
        last_seen=at,
        released=action == "del",
    )


def _segment(camera: str, doc: dict[str, Any], zones: _Zones) -> SegmentIn:
    path = _field(doc, "path")
    if not isinstance(path, str):
        raise _Bad(f"path: expected a string, got {_kind(path)}")
    problem = relpath_problem(path)
    if problem:
        raise _Bad(f"path: {problem}")
    start = _instant(_field(doc, "start"), "start", zones.site)
    end = _instant(_field(doc, "end"), "end", zones.site)
    if end < start:
        raise _Bad(
            f"end {site_text(end, zones.site)} is before start {site_text(start, zones.site)}"
        )
    return _confirmed(zones, camera, path, start)


def _confirmed(zones: _Zones, camera: str, path: str, start: datetime) -> SegmentIn:
    """The layout's reading of `path`, if the announcement agrees with it in camera and start."""
    layout = zones.layout
    if layout is None:
        raise _Bad("no recordings root is configured (camera.root): segments cannot be indexed")
    try:
        reading = layout.parse(path)
    except RejectedInput as err:
        raise _Bad(f"path: {err.reason}") from None
    if reading.camera != camera:
        raise _Bad(
            f"camera {_show(camera)} in the topic is not {_show(reading.camera)}, "
            f"the camera the {layout.name} layout reads from the path"
        )
    if not reading.start <= start < reading.start + layout.resolution:
        raise _Bad(
            f"start {site_text(start, zones.site)} is not {site_text(reading.start, zones.site)}, "
            f"the start the {layout.name} layout reads from the path"
        )
    return reading


# --- esp-rfid --------------------------------------------------------------------------------


def _esp_rfid(topic: str, base: str, payload: bytes, zones: _Zones) -> Parsed:
    if topic != base and not topic.endswith("/send"):
        return None  # the device's other traffic: commands, user lists, I/O states, availability
    if not payload:
        return None
    doc = _decode(payload)
    kind = _field(doc, "type")
    if not isinstance(kind, str):
        raise _Bad(f"type: expected a string, got {_kind(kind)}")
    if kind != "access":
        return None
    uid = _field(doc, "uid")
    if isinstance(uid, str) and not uid.strip():
        return None  # a remote "opendoor" command is reported with a blank uid: no badge
    uid = _name(uid, "uid")
    door = _esp_door(doc, topic)
    at, stamp = _esp_time(_field(doc, "time"))
    granted = _esp_granted(doc)
    return DoorEventIn(f"esp-rfid:{door}:{uid}:{stamp}", door, uid, at, granted, SOURCE_ESP_RFID)


def _esp_door(doc: dict[str, Any], topic: str) -> str:
    for key in ("hostname", "door"):
        value = doc.get(key)
        if value not in (None, ""):
            return _name(value, key)
    return _name(topic.removesuffix("/send"), "door (from the topic)")


def _esp_time(value: Any) -> tuple[datetime, str]:
    """The event time, and its text as it goes into the event id."""
    if not _is_number(value):
        raise _Bad(f"time: expected epoch seconds, got {_kind(value)}")
    at = _epoch(value, "time")
    stamp = str(int(value)) if float(value).is_integer() else repr(float(value))
    return at, stamp


def _esp_granted(doc: dict[str, Any]) -> bool:
    """Whether the door opened: a known card with an access level that opens (fail closed)."""
    known = _field(doc, "isKnown")
    if isinstance(known, str) and known in ("true", "false"):
        known = known == "true"
    if not isinstance(known, bool):
        raise _Bad(f'isKnown: expected "true" or "false", got {_show(known)}')
    access = _field(doc, "access")
    if not isinstance(access, str):
        raise _Bad(f"access: expected a string, got {_kind(access)}")
    return known and access in ESP_GRANTING


# --- uhppoted-mqtt ---------------------------------------------------------------------------


def _uhppoted(topic: str, base: str, payload: bytes, zones: _Zones) -> Parsed:
    if topic != f"{base}/events" and not topic.startswith(f"{base}/events/"):
        return None  # requests, replies and system messages of the gateway
    if not payload:
        return None
    doc = _uhppoted_event(_decode(payload))
    device = _uint(doc, "device-id", low=1)
    door = _uint(doc, "door-id", low=1, high=4)
    event = _uint(doc, "event-id")
    card = _uint(doc, "card-number")
    granted = _field(doc, "access-granted")
    if not isinstance(granted, bool):
        raise _Bad(f"access-granted: expected true or false, got {_kind(granted)}")
    at = _uhppoted_time(_field(doc, "timestamp"), zones.controller)
    if card == 0:
        return None  # no card: a door sensor, button or alarm record
    return DoorEventIn(
        f"uhppoted:{device}:{event}", f"{device}/{door}", str(card), at, granted, SOURCE_UHPPOTED
    )


def _uhppoted_event(doc: dict[str, Any]) -> dict[str, Any]:
    """The event object, out of uhppoted's `{"message": {"event": ...}}` envelope if present."""
    if "message" not in doc:
        return doc
    message = doc["message"]
    event = message.get("event") if isinstance(message, dict) else None
    if isinstance(event, str):
        raise _Bad("event is encrypted: turn off encryption of the uhppoted events topic")
    if not isinstance(event, dict):
        raise _Bad('message: expected an object with an "event" object')
    inner = event.get("event")
    return inner if isinstance(inner, dict) else event


def _uhppoted_time(value: Any, controller_zone: tzinfo) -> datetime:
    if not isinstance(value, str):
        raise _Bad(f"timestamp: expected a string, got {_kind(value)}")
    match = _UHPPOTED_TIME.fullmatch(value)
    if match is None:
        raise _Bad(f"timestamp: {_show(value)} is not 'YYYY-MM-DD HH:MM:SS [zone]'")
    day, clock, zone_name = match.groups()
    zone = _uhppoted_zone(zone_name, controller_zone)
    try:
        wall = datetime.fromisoformat(f"{day}T{clock}")
    except ValueError as err:
        raise _Bad(f"timestamp: {_show(value)}: {err}") from None
    return _wall_to_utc(wall, zone, "timestamp")


def _uhppoted_zone(name: str | None, controller_zone: tzinfo) -> tzinfo:
    """The zone a timestamp's tag names: UTC and offsets exactly; abbreviations mean local."""
    if name is None or name.isalpha():
        return UTC if name in _UTC_NAMES else controller_zone
    offset = _OFFSET.fullmatch(name)
    if offset is None:
        raise _Bad(f"timestamp: unrecognised zone {_show(name)}")
    sign, hours, minutes = offset.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
    if delta >= timedelta(hours=24):
        raise _Bad(f"timestamp: zone offset {_show(name)} is out of range")
    return timezone(-delta if sign == "-" else delta)


# --- Frigate ---------------------------------------------------------------------------------


def _frigate(topic: str, base: str, payload: bytes, zones: _Zones) -> None:
    if topic == f"{base}/events" and payload:
        _decode(payload)  # garbage is still counted; a well-formed detection is ignored
    return None


# --- values ----------------------------------------------------------------------------------


def _decode(payload: bytes) -> dict[str, Any]:
    """The JSON object in `payload`: strict UTF-8, finite numbers, no duplicate keys."""
    if len(payload) > MAX_PAYLOAD:
        raise _Bad(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _Bad(f"payload is not UTF-8 (bad byte at offset {err.start})") from None
    if not text.strip():
        raise _Bad("payload is blank")
    try:
        doc = json.loads(
            text,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise _Bad("payload JSON is nested too deeply") from None
    except ValueError as err:
        raise _Bad(f"payload is not JSON ({_one_line(str(err))})") from None
    if not isinstance(doc, dict):
        raise _Bad(f"payload is {_kind(doc)}, expected a JSON object")
    return doc


def _no_constant(name: str) -> float:
    raise _Bad(f"payload contains {name}, which is not a number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Bad(f"number {text[:40]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _Bad(f"integer with more than {MAX_DIGITS} digits")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # {"result": "granted", "result": "denied"} is ambiguous: refuse rather than pick one.
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _Bad(f"duplicate key {_show(key)}")
        seen.add(key)
    return dict(pairs)


def _field(doc: dict[str, Any], key: str) -> Any:
    if key not in doc:
        raise _Bad(f"missing field {key!r}")
    return doc[key]


def _name(value: Any, what: str) -> str:
    """A door, badge, camera or event id: non-empty printable text without surrounding space."""
    if not isinstance(value, str):
        raise _Bad(f"{what}: expected a string, got {_kind(value)}")
    if not value:
        raise _Bad(f"{what}: is empty")
    if len(value) > MAX_NAME:
        raise _Bad(f"{what}: longer than {MAX_NAME} characters")
    if value != value.strip():
        raise _Bad(f"{what}: {_show(value)} has leading or trailing whitespace")
    if any(unicodedata.category(ch) in _BAD_CHAR_CATEGORIES for ch in value):
        raise _Bad(f"{what}: contains a control character or lone surrogate")
    return value


def _name_or_int(value: Any, what: str) -> str:
    if _is_number(value) and isinstance(value, int):
        if value < 0:
            raise _Bad(f"{what}: {value} is negative")
        return str(value)
    return _name(value, what)


def _uint(doc: dict[str, Any], key: str, *, low: int = 0, high: int = 2**32 - 1) -> int:
    value = _field(doc, key)
    if not (_is_number(value) and isinstance(value, int)):
        raise _Bad(f"{key}: expected an integer, got {_kind(value)}")
    if not low <= value <= high:
        raise _Bad(f"{key}: {value} is outside {low}..{high}")
    return value


def _mac(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(f"mac: expected a string, got {_kind(value)}")
    try:
        return normalise_mac(value, what="mac")
    except InputError as err:
        raise _Bad(_one_line(str(err))) from None


def _ip(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(f"ip: expected a string, got {_kind(value)}")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise _Bad(f"ip: {_show(value)} is not an IPv4 or IPv6 address") from None


def _hostname(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return _name(value, "hostname")


def _instant(value: Any, what: str, site_zone: tzinfo) -> datetime:
    """An ISO 8601 string or epoch seconds as aware UTC within 2000..2099."""
    if _is_number(value):
        return _epoch(value, what)
    if not isinstance(value, str):
        raise _Bad(f"{what}: expected an ISO 8601 string or epoch seconds, got {_kind(value)}")
    if len(value) > 64:
        raise _Bad(f"{what}: time text longer than 64 characters")
    try:
        at = parse_instant(value, site_zone, what=what)
    except InputError as err:  # not a time, or beyond the calendar in UTC or site time
        raise _Bad(str(err)) from None
    if not EARLIEST_PLAUSIBLE <= at < LATEST_PLAUSIBLE:
        raise _Bad(
            f"{what}: {site_text(at, site_zone)} is outside 2000..2099 (device clock not set?)"
        )
    return at


def _epoch(value: float | int, what: str) -> datetime:
    if not math.isfinite(value):
        raise _Bad(f"{what}: {value} is not a time")
    if value < _EPOCH_FLOOR:
        raise _Bad(f"{what}: epoch {value} is before 2000 (device clock not set?)")
    if value >= _EPOCH_CEILING:
        raise _Bad(f"{what}: epoch {value} is after 2099")
    return from_epoch(value, what=what)


def _wall_to_utc(value: datetime, zone: tzinfo, what: str) -> datetime:
    """`value` (naive: wall time in `zone`) as UTC, if within 2000..2099."""
    if not EARLIEST_PLAUSIBLE.year - 1 <= value.year <= LATEST_PLAUSIBLE.year:
        raise _Bad(f"{what}: {value.isoformat()} is outside 2000..2099")
    at = to_utc(value, zone)
    if not EARLIEST_PLAUSIBLE <= at < LATEST_PLAUSIBLE:
        raise _Bad(f"{what}: {site_text(at, zone)} is outside 2000..2099 (device clock not set?)")
    return at


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    """The JSON name of `value`'s type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {_show(value)}"
    return "an array" if isinstance(value, list) else "an object"


def _show(value: Any) -> str:
    """A short one-line repr of `value`."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]
