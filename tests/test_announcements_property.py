"""Property: whatever MQTT segment announcements arrive, a purge deletes no held file and no file
the recordings layout rejects (invariant 11).

Each example feeds a sequence of announcements (any camera in the topic, the path of any file in
the tree or of none, starts and ends true or made up, whole or fractional seconds) through the
connector's own path minus the network: `connectors.mqtt.parser_for` and the batching writer,
which parse, check against the clock and store as the daemon does (the real broker and daemon:
tests/test_source_claims.py). Then a real purge runs over real files under an active hold.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import delete

from connectors.camera_layout import layout_for
from connectors.mqtt import parser_for
from connectors.writer import BatchWriter, Incoming
from facility.errors import RejectedInput
from facility.retention import holds, purge
from facility.settings import Settings
from facility.store import db
from facility.store.models import CameraSegment, Rejection

NOW = datetime(2026, 6, 20, 12, tzinfo=UTC)
INCIDENT = NOW - timedelta(days=20, hours=2)  # past the camera policy (14 days)
WINDOW = (INCIDENT - timedelta(minutes=5), INCIDENT + timedelta(minutes=5))
S = timedelta(seconds=1)
PREFIX = "facility"


def frigate(camera: str, start: datetime) -> str:
    return f"{start:%Y-%m-%d}/{start:%H}/{camera}/{start:%M.%S}.mp4"


# Held: cam1 inside the window. Not held: cam1 outside it, cam2 inside it. Rejected by the layout.
FILES = [
    *(frigate("cam1", INCIDENT + k * 10 * S) for k in range(-1, 3)),
    frigate("cam1", INCIDENT - timedelta(hours=3)),
    frigate("cam2", INCIDENT),
    "exports/incident.mp4",
    "cam1/notes.mp4",
    frigate("cam1", INCIDENT).replace(".mp4", ".mkv"),
]
LAYOUT = layout_for("frigate", site_zone=UTC)


def reading(path: str):
    try:
        return LAYOUT.parse(path)
    except RejectedInput:
        return None


REJECTED = [path for path in FILES if reading(path) is None]
HELD = [
    path
    for path in FILES
    if (r := reading(path)) and r.camera == "cam1" and r.start <= WINDOW[1] and r.end >= WINDOW[0]
]
assert len(HELD) == 4 and len(REJECTED) == 3


def start_of(path: str) -> datetime:
    found = reading(path)
    return found.start if found else INCIDENT


instants = st.one_of(
    st.sampled_from([INCIDENT, datetime(2000, 1, 1, tzinfo=UTC), NOW - timedelta(days=400)]),
    st.datetimes(datetime(2000, 1, 1), datetime(2026, 6, 20), timezones=st.just(UTC)),
)


@st.composite
def announcements(draw) -> tuple[str, bytes]:
    """One message on `<prefix>/cameras/<camera>/segments`, true in some parts, made up in others."""
    camera = draw(st.sampled_from(["cam1", "cam2", "cam3"]))
    path = draw(st.sampled_from([*FILES, frigate("cam1", INCIDENT + 7 * S), "a/b.mp4"]))
    start = draw(st.one_of(st.just(start_of(path)), instants))
    start_value = start.timestamp() + draw(st.sampled_from([0, 0, 0.5]))
    end = start + draw(st.sampled_from([S * 0, 10 * S, timedelta(days=1)]))
    payload = {"path": path, "start": start_value, "end": end.timestamp()}
    if draw(st.booleans()):
        payload["start"] = start.isoformat()
    return f"{PREFIX}/cameras/{camera}/segments", json.dumps(payload).encode()


@pytest.fixture
def site(engine, tmp_path):
    """An engine with the hold placed once, a recordings root, and the settings for both."""
    root = tmp_path / "recordings"
    settings = Settings(
        timezone="UTC",
        camera={"root": str(root)},
        mqtt={"topic_prefix": PREFIX},
    )
    with db.session_scope(engine) as session:
        holds.place(
            session,
            now=NOW - timedelta(days=1),
            actor="tests",
            case="INC-7",
            reason="break-in",
            window_from=WINDOW[0],
            window_to=WINDOW[1],
            scopes=[holds.Scope("camera", "cam1")],
        )
    return engine, settings, root


def _fresh(engine, root: Path) -> None:
    """No rows, every file back in place."""
    with db.session_scope(engine) as session:
        session.execute(delete(CameraSegment))
        session.execute(delete(Rejection))
    shutil.rmtree(root, ignore_errors=True)
    for relpath in FILES:
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42")
        stamp = INCIDENT.timestamp()
        os.utime(path, (stamp, stamp))


@hsettings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(messages=st.lists(announcements(), min_size=1, max_size=12))
def test_no_announcement_gets_a_held_or_unreadable_file_deleted(site, messages):
    engine, settings, root = site
    _fresh(engine, root)
    writer = BatchWriter(
        engine,
        parser_for(settings),
        clock=lambda: NOW,
        limits=settings.limits,
        site_zone=settings.site_zone,
    )
    writer.start()
    for topic, payload in messages:
        writer.submit(Incoming(topic, payload))
    assert writer.stop(timeout=20), "the writer did not store every announcement"
    assert writer.counters()["received"] == len(messages)
    purge.run(engine, settings, now=NOW, actor="tests")
    gone = [path for path in HELD + REJECTED if not (root / path).exists()]
    assert gone == [], f"deleted {gone} after {[json.loads(p) | {'t': t} for t, p in messages]}"
