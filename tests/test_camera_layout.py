"""Recording file paths to segments: each layout, DST, rejections, and fuzzing for crashes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from connectors import camera_layout
from connectors.camera_layout import (
    compile_pattern,
    end_from_next,
    layout_for,
    relpath_problem,
)
from facility.errors import ConfigError, RejectedInput
from facility.sources.records import SegmentIn
from tests.factories import utc

SITE = ZoneInfo("Europe/Amsterdam")
TEN = timedelta(seconds=10)
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
FRIGATE = layout_for("frigate", site_zone=SITE)
MOTIONEYE = layout_for("motioneye", site_zone=SITE, segment_length=timedelta(minutes=5))
PATTERN = compile_pattern("{camera}/%Y/%m/%d/%H-%M-%S.mp4", site_zone=SITE, segment_length=TEN)


def rejected(layout, path: str) -> RejectedInput:
    with pytest.raises(RejectedInput) as info:
        layout.parse(path)
    assert info.value.source == "camera"
    assert "\n" not in info.value.reason
    return info.value


# --- frigate ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "camera", "start"),
    [
        ("2024-06-01/13/front_door/05.30.mp4", "front_door", utc(2024, 6, 1, 13, 5, 30)),
        ("2024-02-29/23/cam-2/59.59.mp4", "cam-2", utc(2024, 2, 29, 23, 59, 59)),
        ("2026-01-01/00/Garage/00.00.mp4", "Garage", utc(2026, 1, 1)),
        # Frigate names by UTC: a night of a DST change is nothing special.
        ("2024-03-31/01/yard/30.00.mp4", "yard", utc(2024, 3, 31, 1, 30)),
    ],
)
def test_frigate(path, camera, start):
    assert FRIGATE.parse(path) == SegmentIn(camera, path, start, start + TEN)


def test_frigate_segment_length_is_configurable():
    layout = layout_for("frigate", site_zone=SITE, segment_length=timedelta(seconds=4))
    segment = layout.parse("2024-06-01/13/front_door/05.30.mp4")
    assert segment.end - segment.start == timedelta(seconds=4)


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("2024-06-01/13/front.door/05.30.mp4", "bad camera name 'front.door'"),
        ("2024-06-01/13/front door/05.30.mp4", "bad camera name"),
        ("2024-02-30/13/front_door/05.30.mp4", "no such date or time"),
        ("2023-02-29/13/front_door/05.30.mp4", "no such date or time"),
        ("2024-06-01/24/front_door/05.30.mp4", "no such date or time"),
        ("2024-06-01/13/front_door/60.00.mp4", "no such date or time"),
        ("2024-06-01/13/front_door/05.60.mp4", "no such date or time"),
        ("1970-01-01/00/front_door/00.00.mp4", "year 1970 is outside 2000..2099"),
        ("9999-12-31/23/front_door/59.59.mp4", "year 9999 is outside"),
        ("2024-06-01/13/front_door/05.30.mkv", "does not match the frigate layout"),
        ("2024-06-01/13/front_door/5.30.mp4", "does not match"),
        ("2024-06-01/front_door/05.30.mp4", "does not match"),
        ("2024-06-01/13/front_door/sub/05.30.mp4", "does not match"),
        ("2024-06-01/13/front_door/05.30.mp4.tmp", "does not match"),
        ("/media/frigate/recordings/2024-06-01/13/front_door/05.30.mp4", "absolute path"),
        ("2024-06-01/13/../05.30.mp4", "'..' part"),
        ("2024-06-01\\13\\front_door\\05.30.mp4", "backslash"),
        ("./2024-06-01/13/front_door/05.30.mp4", "empty or '.' part"),
        ("2024-06-01//13/front_door/05.30.mp4", "empty or '.' part"),
        ("2024-06-01/13/front_door/", "empty or '.' part"),
        ("2024-06-01/13/front_door/05.30.mp4\x00", "NUL"),
        ("2024-06-01/13/front\ndoor/05.30.mp4", "control character"),
        ("", "empty path"),
        ("a/" * 600, "longer than 1024"),
        ("２０２４-06-01/13/front_door/05.30.mp4", "does not match"),  # non-ASCII digits
    ],
)
def test_frigate_rejections(path, words):
    error = rejected(FRIGATE, path)
    assert words in error.reason
    assert error.raw == path[:512]


# --- motioneye -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "start"),
    [
        ("Camera1/2024-06-01/13-05-30.mp4", utc(2024, 6, 1, 11, 5, 30)),  # CEST, +2
        ("Camera12/2024-01-15/08-00-00.avi", utc(2024, 1, 15, 7, 0)),  # CET, +1
        ("Camera3/2024-12-31/23-59-59.mkv", utc(2024, 12, 31, 22, 59, 59)),
        ("Camera1/2024-06-01/13-05-30.jpg", utc(2024, 6, 1, 11, 5, 30)),
        # The preview motionEye writes beside a movie shows the same people: it expires with it.
        ("Camera1/2024-06-01/13-05-30.mp4.thumb", utc(2024, 6, 1, 11, 5, 30)),
    ],
)
def test_motioneye(path, start):
    segment = MOTIONEYE.parse(path)
    assert segment == SegmentIn(path.split("/")[0], path, start, start + timedelta(minutes=5))


@pytest.mark.parametrize(
    ("wall", "instant"),
    [
        # 31 March 2024: 02:00 CET jumps to 03:00 CEST.
        ("2024-03-31/01-59-59", utc(2024, 3, 31, 0, 59, 59)),
        ("2024-03-31/03-00-00", utc(2024, 3, 31, 1, 0, 0)),
        ("2024-03-31/03-30-00", utc(2024, 3, 31, 1, 30, 0)),
        # A skipped wall time cannot come from a correct clock; it reads at the earlier offset.
        ("2024-03-31/02-30-00", utc(2024, 3, 31, 1, 30, 0)),
        # 27 October 2024: 03:00 CEST falls back to 02:00 CET; 02:xx happens twice.
        ("2024-10-27/01-59-59", utc(2024, 10, 26, 23, 59, 59)),
        ("2024-10-27/02-30-00", utc(2024, 10, 27, 0, 30, 0)),  # the first (CEST) 02:30
        ("2024-10-27/03-00-00", utc(2024, 10, 27, 2, 0, 0)),
        ("2024-10-27/12-00-00", utc(2024, 10, 27, 11, 0, 0)),
    ],
)
def test_motioneye_across_dst_changes(wall, instant):
    assert MOTIONEYE.parse(f"Camera1/{wall}.mp4").start == instant


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("camera1/2024-06-01/13-05-30.mp4", "bad camera name 'camera1'"),
        ("Front/2024-06-01/13-05-30.mp4", "bad camera name 'Front'"),
        ("Camera/2024-06-01/13-05-30.mp4", "bad camera name"),
        ("Camera1/2024-06-01/13-05-30.mov", "unexpected file extension 'mov'"),
        ("Camera1/2024-06-01/13-05-30.mp4.thumb.x", "unexpected file extension"),
        ("Camera1/2024-06-01/13-05-30", "does not match the motioneye layout"),
        ("Camera1/lastsnap.jpg", "does not match"),
        ("Camera1/2024-06-31/13-05-30.mp4", "no such date or time"),
        ("Camera1/1999-12-31/23-59-59.mp4", "year 1999 is outside"),
        ("Camera1/2000-01-01/00-30-00.mp4", "is outside 2000..2099"),  # 1999-12-31 23:30 UTC
        ("Camera1/../2024-06-01/13-05-30.mp4", "'..' part"),
    ],
)
def test_motioneye_rejections(path, words):
    assert words in rejected(MOTIONEYE, path).reason


# --- pattern ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "camera", "start"),
    [
        (
            "{camera}/%Y/%m/%d/%H-%M-%S.mp4",
            "lobby/2024/06/01/13-05-30.mp4",
            "lobby",
            utc(2024, 6, 1, 11, 5, 30),
        ),
        (
            "rec/{camera}/%Y%m%d/%H%M.mkv",
            "rec/gate_2/20240115/0800.mkv",
            "gate_2",
            utc(2024, 1, 15, 7),
        ),
        (
            "%Y/{camera}/%Y-%m-%d_%H.{ext}",
            "2024/yard/2024-06-01_13.avi",
            "yard",
            utc(2024, 6, 1, 11),
        ),
        (
            "{camera}/100%%/%Y-%m-%dT%H.%M.%S.ts",
            "c/100%/2024-06-01T13.05.30.ts",
            "c",
            utc(2024, 6, 1, 11, 5, 30),
        ),
        (
            "{camera}/%Y-%m-%d/%H-%M-%S.mp4",
            "lobby/2024-03-31/03-00-00.mp4",
            "lobby",
            utc(2024, 3, 31, 1),
        ),
    ],
)
def test_pattern(pattern, path, camera, start):
    layout = compile_pattern(pattern, site_zone=SITE, segment_length=TEN)
    assert layout.parse(path) == SegmentIn(camera, path, start, start + TEN)


def test_pattern_through_layout_for():
    layout = layout_for("pattern", pattern="{camera}/%Y/%m/%d/%H-%M-%S.mp4", site_zone=SITE)
    assert layout.parse("lobby/2024/06/01/13-05-30.mp4").start == utc(2024, 6, 1, 11, 5, 30)
    assert layout.segment_length == TEN


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("lobby/2024/02/30/13-05-30.mp4", "no such date or time"),
        ("lob by/2024/06/01/13-05-30.mp4", "bad camera name 'lob by'"),
        ("lobby/2024/06/01/13-05-30.mkv", "does not match the pattern layout"),
        ("lobby/extra/2024/06/01/13-05-30.mp4", "does not match"),
        ("/lobby/2024/06/01/13-05-30.mp4", "absolute path"),
        ("lobby/2024/06/../13-05-30.mp4", "'..' part"),
    ],
)
def test_pattern_rejections(path, words):
    assert words in rejected(PATTERN, path).reason


def test_repeated_field_must_agree():
    layout = compile_pattern("%Y/{camera}/%Y-%m-%d_%H.mp4", site_zone=SITE)
    assert "does not match" in rejected(layout, "2023/yard/2024-06-01_13.mp4").reason


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("{camera}/%Y/%m/%d/%H-%Q.mp4", "unsupported directive %Q"),
        ("%Y/%m/%d/%H.mp4", "lacks {camera}"),
        ("{camera}/%Y/%m/%d.mp4", "lacks %H"),
        ("{camera}/%m/%d/%H.mp4", "lacks %Y"),
        ("{camera}/%Y/%m/%d/%H%", "lone '%'"),
        ("{camera}/{date}/%Y%m%d%H.mp4", "unknown placeholder {date}"),
        ("/srv/{camera}/%Y%m%d%H.mp4", "absolute path"),
        ("../{camera}/%Y%m%d%H.mp4", "'..' part"),
        ("{camera}//%Y%m%d%H.mp4", "empty or '.' part"),
    ],
)
def test_bad_patterns_fail_at_start(pattern, words):
    with pytest.raises(ConfigError, match=r"camera\.pattern") as info:
        compile_pattern(pattern, site_zone=SITE)
    assert words in str(info.value)


def test_bad_layout_settings():
    with pytest.raises(ConfigError, match="unknown layout 'zoneminder'"):
        layout_for("zoneminder", site_zone=SITE)
    with pytest.raises(ConfigError, match="needs a pattern"):
        layout_for("pattern", pattern=None, site_zone=SITE)
    with pytest.raises(ConfigError, match="segment_length: must be positive"):
        layout_for("frigate", site_zone=SITE, segment_length=timedelta(0))


def test_pattern_is_compiled_once_not_per_file(monkeypatch):
    layout = compile_pattern("{camera}/%Y/%m/%d/%H-%M-%S.mp4", site_zone=SITE)

    def no_compiling(*args, **kwargs):
        raise AssertionError("parse compiled a regex")

    monkeypatch.setattr(camera_layout.re, "compile", no_compiling)
    for path in ("a/2024/06/01/13-05-30.mp4", "b/2024/06/01/13-05-40.mp4"):
        assert layout.parse(path).path == path
    assert "does not match" in rejected(layout, "nope").reason


def test_parse_rejects_a_non_string():
    with pytest.raises(RejectedInput, match="path is a bytes"):
        FRIGATE.parse(b"2024-06-01/13/front_door/05.30.mp4")


# --- end_from_next ---------------------------------------------------------------------------


def seg(
    camera: str, start: datetime, length: timedelta = TEN, path: str | None = None
) -> SegmentIn:
    return SegmentIn(camera, path or f"{camera}/{start.isoformat()}", start, start + length)


def test_end_from_next_cuts_at_the_next_start_of_the_same_camera():
    t = utc(2024, 6, 1, 12)
    a1 = seg("a", t)
    a2 = seg("a", t + timedelta(seconds=4))  # a1 really lasted 4 s
    a3 = seg("a", t + timedelta(seconds=20))  # a gap after a2: a2 keeps its 10 s
    b1 = seg("b", t + timedelta(seconds=1))  # another camera does not cut a1
    shuffled = [a3, b1, a2, a1]
    random.Random(4).shuffle(shuffled)
    assert end_from_next(shuffled) == [
        SegmentIn("a", a1.path, t, t + timedelta(seconds=4)),
        a2,
        a3,
        b1,
    ]


def test_end_from_next_ties_and_edges():
    t = utc(2024, 6, 1, 12)
    movie = seg("a", t, path="a/1.mp4")
    thumb = seg("a", t, path="a/1.mp4.thumb")
    later = seg("a", t + timedelta(seconds=3))
    # Same start: neither is cut to zero; both end where the next later segment starts.
    cut = end_from_next([later, thumb, movie])
    assert [(s.path, s.end - s.start) for s in cut] == [
        ("a/1.mp4", timedelta(seconds=3)),
        ("a/1.mp4.thumb", timedelta(seconds=3)),
        (later.path, TEN),
    ]
    assert end_from_next([]) == []
    assert end_from_next([movie]) == [movie]
    # Never lengthened: a next start after the end leaves the end alone.
    assert end_from_next([seg("a", t, timedelta(seconds=2)), later])[0].end == t + timedelta(
        seconds=2
    )


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 60), st.integers(1, 20)), max_size=30)
)
def test_end_from_next_properties(items):
    t = utc(2024, 6, 1)
    segments = [
        seg(cam, t + timedelta(seconds=s), timedelta(seconds=n), f"{cam}/{i}")
        for i, (cam, s, n) in enumerate(items)
    ]
    result = end_from_next(segments)
    assert sorted(s.path for s in result) == sorted(s.path for s in segments)
    assert result == sorted(result, key=lambda s: (s.camera, s.start, s.path))
    by_path = {s.path: s for s in segments}
    for out in result:
        original = by_path[out.path]
        assert (out.camera, out.start) == (original.camera, original.start)
        assert out.start < out.end <= original.end
        later = [s.start for s in segments if s.camera == out.camera and s.start > out.start]
        assert out.end == min([original.end, *later])


# --- fuzzing ---------------------------------------------------------------------------------

LAYOUTS = {"frigate": FRIGATE, "motioneye": MOTIONEYE, "pattern": PATTERN}


def check(layout, path) -> None:
    """Only a valid segment or RejectedInput comes out of `parse`."""
    try:
        segment = layout.parse(path)
    except RejectedInput as err:
        assert err.source == "camera" and err.reason and "\n" not in err.reason
        return
    assert segment.path == path and relpath_problem(path) is None
    assert layout.camera_re.fullmatch(segment.camera)
    assert segment.start.utcoffset() == timedelta(0)
    assert utc(2000, 1, 1) <= segment.start < segment.end < utc(2100, 1, 1)
    assert segment.end - segment.start == layout.segment_length


@pytest.mark.parametrize("name", list(LAYOUTS))
@FUZZ
@given(path=st.text(max_size=60))
def test_fuzz_any_text(name, path):
    check(LAYOUTS[name], path)


@pytest.mark.parametrize("name", list(LAYOUTS))
@FUZZ
@given(data=st.data())
def test_fuzz_paths_shaped_like_the_layout(name, data):
    """Paths that fit the layout's shape, with any digits: impossible dates, odd names."""
    layout = LAYOUTS[name]
    check(layout, data.draw(st.from_regex(layout.regex, fullmatch=True)))


@FUZZ
@given(st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31), timezones=st.just(UTC)))
def test_frigate_round_trip(instant):
    instant = instant.replace(microsecond=0)
    path = instant.strftime("%Y-%m-%d/%H/cam_1/%M.%S.mp4")
    assert FRIGATE.parse(path).start == instant


@FUZZ
@given(st.datetimes(datetime(2000, 1, 2), datetime(2099, 12, 30), timezones=st.just(UTC)))
def test_motioneye_round_trip(instant):
    local = instant.replace(microsecond=0).astimezone(SITE)
    assume(local.fold == 0)  # the repeated hour's second pass cannot be told from the first
    path = local.strftime("Camera7/%Y-%m-%d/%H-%M-%S.mp4")
    assert MOTIONEYE.parse(path).start == instant.replace(microsecond=0)
