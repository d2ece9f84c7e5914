"""Names from people: cleaned on input, folded one way for matching, never a terminal's command.

Issue 13.12 (control and invisible characters; forms of a name that missed records), issue 20.7
(sign-out by name: accents, partial names, signing out twice) and the migration that recomputes
the stored keys, run on a database filled at revision 0001.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from facility.names import clean_text
from facility.privacy import subjects
from facility.retention import holds
from facility.store import db
from facility.store.models import HoldScope, Visit
from facility.visitors import reception
from tests.conftest import ENGINES, Cli, database_at
from tests.factories import NOW, D, H, add, visit

pytestmark = pytest.mark.usefixtures("fixed_clock")

ESC = "\x1b"
# Characters that make two names look the same and compare different.
INVISIBLE = ["\u200b", "\u00ad", "\u2060", "\ufeff", "\u200d", "\u202e", "\u202c", "\u034f"]
# How a person may type each letter of the names below without its accent.
BARE = {"é": "e", "ú": "u", "ñ": "n", "Å": "A", "ø": "o", "ł": "l", "ö": "o", "Ø": "O", "ü": "u"}
NAMES = ["José Núñez", "Åsa Berg", "Jørgen Łukasz", "Anne-Marie Müller"]


# --- cleaning on input, and the terminal --------------------------------------------------------


def test_escape_sequences_and_invisible_characters_never_reach_the_store_or_terminal(cli, engine):
    # Control characters (an escape sequence) are refused at the CLI edge, naming the argument;
    # nothing is stored and nothing of them is echoed.
    refused = cli("visitor", "sign-in", f"Mallory{ESC}[1A{ESC}[2K", code=2)
    assert "NAME: contains control characters" in refused.stderr and ESC not in refused.output
    refused = cli("visitor", "sign-in", "Mallory", "--company", f"Evil{ESC}]0;pwned\x07", code=2)
    assert "--company: contains control characters" in refused.stderr
    assert ESC not in refused.output
    with db.session_scope(engine) as session:
        assert session.execute(select(Visit.name)).first() is None
    # Invisible format characters (bidi override, zero-width space) are removed on input.
    out = cli("visitor", "sign-in", "Mallory\u202e\u200b", "--company", "Evil\u200b Corp").stdout
    assert "\u202e" not in out and "\u200b" not in out
    with db.session_scope(engine) as session:
        stored = session.execute(select(Visit.name, Visit.company)).one()
    assert tuple(stored) == ("Mallory", "Evil Corp")
    for fmt in ("table", "json", "csv"):
        assert "\u202e" not in cli("onsite", "--format", fmt).stdout


def test_a_name_stored_before_cleaning_is_shown_escaped_everywhere(cli, engine):
    # Rows written by an older version (or straight into the database) keep their bytes.
    add(engine, visit(f"Old{ESC}[2J\u202eName", NOW - H))
    for args in (
        ["onsite"],
        ["onsite", "--format", "json"],
        ["onsite", "--format", "csv"],
        ["visitor", "sign-out", "1"],
        ["subject", "export", "--name", "oldname"],
    ):
        out = cli(*args).stdout
        assert ESC not in out and "\u202e" not in out, args
    assert "\\x1b[2J" in cli("subject", "export", "--name", "oldname", "--format", "csv").stdout


def test_clean_text_caps_length_after_normalising():
    assert clean_text("ﬁ" * 100, what="NAME") == "fi" * 100  # NFKC: 200 characters, allowed
    with pytest.raises(Exception, match="longer than 200"):
        clean_text("ﬁ" * 101, what="NAME")
    with pytest.raises(Exception, match="longer than 200"):
        clean_text("\u200b" * 10_000, what="NAME")  # refused before any work is done on it


# --- differently written forms of one name ------------------------------------------------------


@st.composite
def written(draw, name: str) -> str:
    """`name` as someone may type or paste it: case, accents, decomposed, fullwidth, invisibles."""
    out = []
    for ch in name:
        forms = [ch, ch.upper(), ch.lower(), unicodedata.normalize("NFD", ch)]
        if ch in BARE:
            forms += [BARE[ch], BARE[ch].upper()]
        if ch.isascii() and ch.isalpha():
            forms.append(chr(ord(ch) + 0xFEE0))  # fullwidth, a look-alike NFKC undoes
        if ch == " ":
            forms += ["  ", "\u00a0", "\u3000"]
        out.append(draw(st.sampled_from(forms)))
        if draw(st.integers(0, 4)) == 0:
            out.append(draw(st.sampled_from(INVISIBLE)))
    return "".join(out)


def _seed_people(engine) -> dict[str, tuple[int, int]]:
    """Each name with a past visit and one on site now, and a longer name that must not match."""
    t = NOW - 2 * D
    add(engine, visit("Jose Nunez-Garcia", t, t + H), visit("José Núñez Garcia", NOW - H))
    past = add(engine, *(visit(n, t, t + H) for n in NAMES))
    present = add(engine, *(visit(n, NOW - H) for n in NAMES))
    return {n: (p, q) for n, p, q in zip(NAMES, past, present, strict=True)}


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_written_form_finds_the_same_records_for_export_and_sign_out(engine, data):
    owned = _seed_people_once(engine)
    name = data.draw(st.sampled_from(NAMES))
    form = data.draw(written(name))
    with db.session_scope(engine) as session:
        subject = subjects.subject_from(name=form)
        found = subjects.export(
            session, subject, now=NOW, grace=timedelta(hours=24), actor="t", key=b"k" * 32
        )
        assert sorted(r["id"] for r in found.records["visits"]) == sorted(owned[name]), form
        assert reception.find_open_visit(session, name=form).id == owned[name][1], form


_SEEDED: dict[str, dict] = {}


def _seed_people_once(engine) -> dict[str, tuple[int, int]]:
    """Hypothesis runs the test body many times on one fixture database: seed it once."""
    url = str(engine.url)
    if url not in _SEEDED:
        _SEEDED[url] = _seed_people(engine)
    return _SEEDED[url]


# --- signing out by name (issue 20.7) -----------------------------------------------------------


def test_sign_out_by_a_name_without_its_accents(cli):
    cli("visitor", "sign-in", "José Núñez")
    out = cli("visitor", "sign-out", "--name", "Jose Nunez").stdout
    assert "José Núñez signed out" in out


def test_a_partial_name_signs_out_the_one_it_fits_and_lists_them_when_several(cli):
    cli("visitor", "sign-in", "José Núñez", "--company", "ACME")
    cli("visitor", "sign-in", "Jose Garcia")
    cli("visitor", "sign-in", "Anne Jansen")
    result = cli("visitor", "sign-out", "--name", "jose", code=2)
    assert "2 people on site match 'jose'" in result.stderr
    assert "visit 1 José Núñez (ACME)" in result.stderr and "visit 2 Jose Garcia" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "José Núñez signed out" in cli("visitor", "sign-out", "--name", "NUNEZ").stdout
    # Words match whole: "Ann" is not "Anne".
    assert "nobody called 'Ann'" in cli("visitor", "sign-out", "--name", "Ann", code=2).stderr


def test_signing_out_twice_says_the_same_by_id_name_or_badge(cli):
    cli("visitor", "sign-in", "José Núñez", "--badge", "B7")
    cli("visitor", "sign-out", "--name", "Jose Nunez")
    answers = {
        cli("visitor", "sign-out", *how, code=2).stderr
        for how in (["1"], ["--name", "José Núñez"], ["--name", "jose nunez"], ["--badge", "B7"])
    }
    assert answers == {"facility: visit 1 (José Núñez) was already signed out\n"}


# --- the migration keeps rows stored under the old key matchable --------------------------------


def _old_key(name: str) -> str:
    """names.name_key at revision 0001: NFKC and case folding, accents and invisibles kept."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


@pytest.fixture(params=ENGINES)
def url_at_0001(request, tmp_path) -> Iterator[str]:
    yield from database_at(request.param, tmp_path, "0001")


def test_the_migration_recomputes_keys_of_a_database_filled_at_0001(url_at_0001, tmp_path):
    engine = db.make_engine(url_at_0001)
    t = (NOW - 2 * D).replace(tzinfo=None)
    with engine.connect() as conn, conn.begin():
        for i, name in enumerate(["José Núñez", "JOSÉ\u200b NÚÑEZ", "Åsa Berg"], start=1):
            conn.execute(
                text(
                    "INSERT INTO visits (id, name, name_key, signed_in_at) VALUES (:i, :n, :k, :t)"
                ),
                {"i": i, "n": name, "k": _old_key(name), "t": t},
            )
        conn.execute(
            text(
                'INSERT INTO holds (id, "case", reason, window_from, window_to, placed_by, '
                "placed_at) VALUES (1, 'INC-1', 'r', :f, :t, 'sec', :f)"
            ),
            {"f": t - timedelta(days=1), "t": t + timedelta(days=1)},
        )
        conn.execute(
            text("INSERT INTO hold_scopes (hold_id, kind, selector) VALUES (1, 'visits', :k)"),
            {"k": _old_key("José Núñez")},
        )
    Cli(url_at_0001, tmp_path)("init")
    engine = db.make_engine(url_at_0001)
    with db.session_scope(engine) as session:
        keys = session.execute(select(Visit.id, Visit.name_key).order_by(Visit.id)).all()
        assert [k for _, k in keys] == ["jose nunez", "jose nunez", "asa berg"]
        assert session.execute(select(HoldScope.selector)).scalar_one() == "jose nunez"
        hold = holds.get(session, "INC-1")
        assert holds.keeps(session, hold, now=NOW, grace=timedelta(hours=24))["visits"] == 2
        assert reception.find_open_visit(session, name="asa berg").id == 3
    with db.session_scope(engine) as session:
        subject = subjects.subject_from(name="jose nunez")
        found = subjects.export(
            session, subject, now=NOW, grace=timedelta(hours=24), actor="t", key=b"k" * 32
        )
    assert sorted(r["id"] for r in found.records["visits"]) == [1, 2]
    engine.dispose()


def test_subject_export_csv_and_json_of_a_folded_name(cli, engine):
    add(engine, visit("José Núñez", NOW - 2 * D, NOW - 2 * D + H))
    body = json.loads(cli("subject", "export", "--name", "JOSE NUNEZ").stdout)
    assert body["matched_names"] == ["José Núñez"]
