"""Incident holds on the CLI: place, extend, release, list and show, their errors, roles and audit."""

from __future__ import annotations

import json
import re

import pytest

from facility.errors import InputError
from facility.sources.macs import normalise_mac
from facility.store import db
from facility.trail import audit
from tests.factories import OLD, H, add, door, loan, visit

FROM, TO = "2026-06-01T08:00Z", "2026-06-01T18:00Z"


def _place(cli, case="INC-2026-0042", *scopes, code=0, **kw):
    args = ["hold", "place", case, "--reason", kw.get("reason", "laptop stolen")]
    args += ["--from", kw.get("start", FROM), "--to", kw.get("end", TO), *scopes]
    return cli(*args, code=code)


def _json(result) -> object:
    return json.loads(result.stdout)


def _audit_entries(cli, action: str) -> list[dict]:
    engine = db.make_engine(cli.url)
    try:
        with db.session_scope(engine) as session:
            return [json.loads(e.details) for e in audit.entries(session, action=action)]
    finally:
        engine.dispose()


def test_place_then_list_as_json_in_the_documented_shape(cli):
    _place(cli, "INC-1", "--camera", "front", "--door", "D1", "--kind", "wifi", "--review-by", TO)
    (item,) = _json(cli("hold", "list", "--format", "json"))
    assert set(item) == {
        "case",
        "reason",
        "from",
        "to",
        "status",
        "placed_by",
        "placed_at",
        "review_by",
        "released_at",
        "scopes",
    }
    assert item["case"] == "INC-1" and item["status"] == "active"
    assert item["from"] == "2026-06-01T08:00:00Z" and item["to"] == "2026-06-01T18:00:00Z"
    assert item["review_by"] == item["to"] and item["released_at"] is None
    assert item["scopes"] == [
        {"kind": "camera", "selector": "front"},
        {"kind": "door_events", "selector": "D1"},
        {"kind": "wifi", "selector": None},
    ]


def test_selectors_are_normalised_and_the_audit_holds_no_personal_data(cli):
    result = _place(
        cli,
        "INC-7",
        "--mac",
        "3C-22-FB-01-02-0A",
        "--mac",
        "3c22.fb01.020a",  # the same device in Cisco form: stored once
        "--visitor",
        "  Ann   SMITH ",
        "--badge",
        "B-17",
        reason="Ann Smith was seen taking it",
    )
    assert "INC-7 placed" in result.stdout
    (item,) = _json(cli("hold", "list", "--format", "json"))
    assert {(s["kind"], s["selector"]) for s in item["scopes"]} == {
        ("wifi", "3c:22:fb:01:02:0a"),
        ("visits", "ann smith"),
        ("badges", "B-17"),
    }
    (entry,) = _audit_entries(cli, "hold.place")
    assert entry["case"] == "INC-7"
    assert entry["scopes"] == {"wifi": 1, "visits": 1, "badges": 1}
    text = json.dumps(entry).lower()
    for personal in ("ann", "smith", "3c:22", "b-17", "seen taking"):
        assert personal not in text


def test_place_refuses_bad_input_with_exit_2_naming_the_argument(cli):
    bad = [
        (dict(start=TO, end=FROM), ["--kind", "visits"], "--to"),
        ({}, ["--kind", "videos"], "--kind"),
        ({}, ["--mac", "3c:22:fb:01:02"], "--mac"),
        ({}, ["--mac", "zz:22:fb:01:02:03"], "--mac"),
        ({}, [], "at least one"),
        (dict(start="yesterday"), ["--kind", "visits"], "--from"),
        (dict(reason="  "), ["--kind", "visits"], "--reason"),
        ({}, ["--visitor", "   "], "--visitor"),
    ]
    for overrides, scopes, expected in bad:
        result = _place(cli, "INC-1", *scopes, code=2, **overrides)
        assert expected in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert "CASE" in _place(cli, "has space", "--kind", "visits", code=2).stderr
    assert _json(cli("hold", "list", "--all", "--format", "json")) == []
    assert _audit_entries(cli, "hold") == []


def test_case_references_are_unique(cli):
    _place(cli, "INC-1", "--kind", "camera")
    result = _place(cli, "INC-1", "--kind", "visits", code=2)
    assert "already exists" in result.stderr


def test_an_unknown_case_is_exit_2_for_extend_release_and_show(cli):
    for args in (
        ["extend", "NOPE", "--to", TO],
        ["release", "NOPE", "--reason", "x"],
        ["show", "NOPE"],
    ):
        assert "no hold 'NOPE'" in cli("hold", *args, code=2).stderr


def test_extend_adds_scopes_and_moves_the_end_later_never_earlier(cli):
    _place(cli, "INC-1", "--camera", "front")
    result = cli("hold", "extend", "INC-1", "--to", "2026-06-02T18:00Z", "--camera", "back")
    assert "1 scope added" in result.stdout
    cli("hold", "extend", "INC-1", "--camera", "back", "--camera", "front")  # nothing new
    (item,) = _json(cli("hold", "list", "--format", "json"))
    assert item["to"] == "2026-06-02T18:00:00Z"
    assert [s["selector"] for s in item["scopes"]] == ["front", "back"]
    earlier = cli("hold", "extend", "INC-1", "--to", "2026-06-02T17:59Z", code=2)
    assert "only grow" in earlier.stderr
    assert "--to and/or scopes" in cli("hold", "extend", "INC-1", code=2).stderr
    (entry,) = _audit_entries(cli, "hold.extend")
    assert entry["case"] == "INC-1" and entry["scopes"] == {"camera": 1}
    assert entry["window_to_before"] == "2026-06-01T18:00:00Z"


def test_release_keeps_the_hold_listed_while_it_still_protects(cli):
    _place(cli, "INC-1", "--kind", "door_events")
    assert "--reason" in cli("hold", "release", "INC-1", code=2).stderr  # a reason is required
    assert "protecting until" in cli("hold", "release", "INC-1", "--reason", "closed").stdout
    (item,) = _json(cli("hold", "list", "--format", "json"))
    assert item["status"] == "released" and item["released_at"] is not None
    assert "already released" in cli("hold", "release", "INC-1", "--reason", "x", code=2).stderr
    assert "was released" in cli("hold", "extend", "INC-1", "--to", TO, code=2).stderr
    (entry,) = _audit_entries(cli, "hold.release")
    assert entry == {"case": "INC-1"}


def test_a_mistaken_release_is_undone_by_reinstate_within_the_grace(cli):
    _place(cli, "INC-1", "--kind", "door_events")
    released = cli("hold", "release", "INC-1", "--reason", "wrong case closed").stdout
    assert "facility hold reinstate INC-1" in released
    # Placing it again, as the README once said, is refused but points the way.
    again = _place(cli, "INC-1", "--kind", "door_events", code=2).stderr
    assert "run: facility hold reinstate INC-1" in again
    assert "reinstated: active again" in cli("hold", "reinstate", "INC-1").stdout
    shown = _json(cli("hold", "show", "INC-1", "--format", "json"))
    assert (shown["status"], shown["protects"], shown["released_at"]) == ("active", True, None)
    assert [step["action"] for step in shown["history"]] == ["place", "release", "reinstate"]
    assert "history:    placed" in cli("hold", "show", "INC-1").stdout
    (entry,) = _audit_entries(cli, "hold.reinstate")
    assert entry["case"] == "INC-1" and entry["released_at"] is not None
    assert "is not released" in cli("hold", "reinstate", "INC-1", code=2).stderr
    # Active again, it can be released again, and extended.
    cli("hold", "extend", "INC-1", "--to", "2026-06-02T18:00Z")


def test_reinstate_after_the_grace_is_refused_with_a_clear_line(cli):
    config = cli.config('[holds]\nrelease_grace = "0s"\n')
    _place(cli, "INC-1", "--kind", "door_events")
    cli("hold", "release", "INC-1", "--reason", "closed", config=config)
    refused = cli("hold", "reinstate", "INC-1", config=config, code=2).stderr
    assert refused.startswith("facility: CASE: hold INC-1 was released at ")
    assert "stopped protecting at" in refused and "place a new hold" in refused
    assert len(refused.strip().splitlines()) == 1
    assert "+00:00" not in refused  # site time
    shown = _json(cli("hold", "show", "INC-1", "--format", "json", config=config))
    assert shown["status"] == "released" and shown["protects"] is False
    assert _audit_entries(cli, "hold.reinstate") == []
    assert "CASE: there is no hold" in cli("hold", "reinstate", "INC-404", code=2).stderr


def test_show_tells_when_by_whom_and_why_a_hold_was_released(cli):
    _place(cli, "INC-1", "--kind", "door_events")
    cli("hold", "release", "INC-1", "--reason", "suspect identified, case closed")
    shown = _json(cli("hold", "show", "INC-1", "--format", "json"))
    assert shown["release_reason"] == "suspect identified, case closed"
    assert shown["released_by"] and shown["released_at"]
    line = next(x for x in cli("hold", "show", "INC-1").stdout.splitlines() if "released:" in x)
    assert re.fullmatch(
        rf"released: +\d{{4}}-\d\d-\d\d \d\d:\d\d(:\d\d)? [A-Z+-][A-Za-z0-9]+ "
        rf"by {re.escape(shown['released_by'])}: "
        "suspect identified, case closed",
        line,
    ), line


def test_a_hold_released_longer_ago_than_the_grace_is_listed_only_with_all(cli):
    config = cli.config('[holds]\nrelease_grace = "0s"\n')
    _place(cli, "INC-1", "--kind", "door_events")
    cli("hold", "release", "INC-1", "--reason", "closed", config=config)
    assert _json(cli("hold", "list", "--format", "json", config=config)) == []
    assert "no hold protects" in cli("hold", "list", config=config).stdout
    (item,) = _json(cli("hold", "list", "--all", "--format", "json", config=config))
    assert item["case"] == "INC-1" and item["status"] == "released"
    shown = _json(cli("hold", "show", "INC-1", "--format", "json", config=config))
    assert shown["protects"] is False and set(shown["keeps"].values()) == {0}


def test_show_counts_the_records_the_hold_keeps(cli):
    engine = db.make_engine(cli.url)
    ann = add(engine, visit("Ann Smith", OLD, OLD + H))[0]  # 12:00-13:00
    add(engine, loan("B1", ann, OLD, OLD + H))
    add(engine, door("D1", "B1", OLD + H / 60), door("D1", "B1", OLD + 2 * H))
    engine.dispose()
    _place(cli, "INC-1", "--visitor", "ann smith", start=FROM, end="2026-06-01T13:00Z")
    shown = _json(cli("hold", "show", "INC-1", "--format", "json"))
    assert shown["keeps"] == {"visits": 1, "badges": 1, "door_events": 1, "camera": 0, "wifi": 0}
    assert shown["protects"] is True and shown["reason"] == "laptop stolen"
    table = cli("hold", "show", "INC-1").stdout
    assert "visits 1, badges 1, door_events 1" in table and "visits:ann smith" in table


def test_list_as_csv(cli):
    _place(cli, "INC-1", "--camera", "front", "--kind", "wifi")
    lines = cli("hold", "list", "--format", "csv").stdout.splitlines()
    assert lines[0].startswith("case,reason,from,to,status")
    assert lines[1].startswith("INC-1,laptop stolen,") and lines[1].endswith("camera:front wifi:*")


def test_every_hold_command_needs_the_security_role(cli):
    config = cli.config('[roles]\nsecurity = ["nobody"]\n')
    for args in (
        ["place", "INC-1", "--reason", "r", "--from", FROM, "--to", TO, "--kind", "camera"],
        ["extend", "INC-1", "--to", TO],
        ["release", "INC-1", "--reason", "r"],
        ["list"],
        ["show", "INC-1"],
        ["reinstate", "INC-1"],
    ):
        result = cli("hold", *args, code=3, config=config)
        assert "needs role security" in result.stderr
    refused = _audit_entries(cli, "refused")
    assert [e["command"] for e in refused] == [
        "hold place",
        "hold extend",
        "hold release",
        "hold list",
        "hold show",
        "hold reinstate",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "3c:22:fb:01:02:0a",
        "3C-22-FB-01-02-0A",
        "3c22.fb01.020a",
        "3C22FB01020A",
        " 3c:22:fb:01:02:0a ",
    ],
)
def test_mac_forms_normalise_to_lower_case_colons(text):
    assert normalise_mac(text) == "3c:22:fb:01:02:0a"


@pytest.mark.parametrize(
    "text", ["", "3c:22:fb:01:02", "3c:22:fb:01:02:0g", "3c:22-fb:01:02:0a", "3c22.fb01.020a.01"]
)
def test_malformed_macs_are_refused(text):
    with pytest.raises(InputError, match="--mac"):
        normalise_mac(text)
