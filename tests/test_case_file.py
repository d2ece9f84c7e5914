"""The case file: what a hold keeps, record by record; its footage preserved against the recorder;
the signed export for the police, checked; and the end of both once the hold is over.

A real recordings tree of real MP4 files (tests/footage.py), the real scanner, the CLI through
CliRunner and the purge, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors import camera as scanner
from facility.retention import camera_files, evidence, purge
from facility.store import db
from facility.store.models import AuditEntry, CaseExport, EvidenceCopy
from tests import footage
from tests.conftest import Cli
from tests.factories import NOW, H, add, door, lease, loan, segment, visit

pytestmark = pytest.mark.usefixtures("fixed_clock")
START = NOW - 3 * H  # the incident: footage and events from here on


@pytest.fixture
def site(db_url, tmp_path):
    """A recordings tree of 6 real segments of camera dock (indexed), the CLI configured for it."""
    settings = footage.settings(tmp_path)
    paths = footage.record(settings.camera.root, "dock", START, 6)
    engine = db.make_engine(db_url)
    report = scanner.scan(engine, settings, now=NOW)
    assert report.indexed == 6, report.as_json()
    cli = Cli(db_url, tmp_path)
    yield cli, footage.config(tmp_path, settings), settings, engine, paths
    engine.dispose()


def _place(cli, config, case="INC-1", *scopes):
    frm, to = START.isoformat(), (START + 2 * H).isoformat()
    scopes = scopes or ("--camera", "dock")
    return cli(
        "hold",
        "place",
        case,
        "--reason",
        "theft",
        "--from",
        frm,
        "--to",
        to,
        *scopes,
        config=config,
    )


def _rows(engine, model):
    with db.session_scope(engine) as session:
        return session.execute(select(model)).scalars().all()


def _actions(engine, action):
    with db.session_scope(engine) as session:
        rows = session.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars()
        return [(e.actor, json.loads(e.details)) for e in rows]


# --- what a hold keeps ---------------------------------------------------------------------------


def test_hold_records_lists_every_kind_it_keeps_with_times_and_identifiers(site):
    cli, config, _settings, engine, _paths = site
    (ada,) = add(engine, visit("Ada Lovelace", START, START + H))
    add(
        engine,
        loan("B17", ada, START, START + H),
        door("lobby", "B17", START + H / 6),
        door("roof", "B99", START + H),  # neither the door nor the badge is held
        lease("3c:22:fb:01:02:03", START, START + H),
    )
    _place(
        cli, config, "INC-1",
        "--camera", "dock", "--visitor", "ada lovelace", "--mac", "3C-22-FB-01-02-03",
    )  # fmt: skip
    found = json.loads(cli("hold", "records", "INC-1", "--format", "json", config=config).stdout)
    assert found["case"] == "INC-1"
    assert found["totals"] == {"visits": 1, "badges": 1, "door_events": 1, "camera": 6, "wifi": 1}
    assert found["records"]["visits"][0]["name"] == "Ada Lovelace"
    assert [e["door"] for e in found["records"]["door_events"]] == ["lobby"]
    cameras = found["records"]["camera"]
    assert {c["camera"] for c in cameras} == {"dock"} and cameras[0]["start"].endswith("Z")
    assert all(c["evidence"] == "link" for c in cameras)  # preserved when the hold was placed
    assert found["records"]["wifi"][0]["mac"] == "3c:22:fb:01:02:03"
    only = json.loads(
        cli(
            "hold", "records", "INC-1", "--kind", "door_events", "--format", "json", config=config
        ).stdout
    )
    assert list(only["records"]) == ["door_events"]
    csv = cli("hold", "records", "INC-1", "--format", "csv", config=config).stdout.splitlines()
    assert csv[0].startswith("kind,id,") and len(csv) == 1 + 10
    table = cli("hold", "records", "INC-1", config=config).stdout
    assert "camera segments: 6" in table and "lobby" in table and "B99" not in table
    bad = cli("hold", "records", "INC-1", "--kind", "rejections", code=2, config=config)
    assert "--kind" in bad.stderr
    assert "no hold" in cli("hold", "records", "INC-404", code=2, config=config).stderr


# --- preservation against the recorder -----------------------------------------------------------


def test_a_recorder_deleting_a_held_segment_leaves_it_listed_watchable_and_exported(site, tmp_path):
    cli, config, settings, engine, paths = site
    placed = _place(cli, config)
    assert (
        "6 segment file(s) preserved in the evidence directory (6 linked, 0 copied)"
        in placed.stdout
    )
    original = settings.camera.root / paths[2]
    copy = settings.evidence.root / "footage" / paths[2]
    assert os.stat(copy).st_ino == os.stat(original).st_ino  # a hard link: the same data
    before = original.read_bytes()
    original.unlink()  # the recorder's retention (or its disk-full cleanup) deletes it
    rescan = scanner.scan(engine, settings, now=NOW)
    assert (rescan.vanished, rescan.held_missing) == (0, 1)
    listed = json.loads(cli("hold", "records", "INC-1", "--format", "json", config=config).stdout)
    assert paths[2] in [c["path"] for c in listed["records"]["camera"]]
    fd, source = evidence.open_footage(settings, paths[2])
    with os.fdopen(fd, "rb") as served:
        assert (source, served.read()) == ("evidence", before)
    out = tmp_path / "handover"
    written = cli("hold", "export", "INC-1", "--output", str(out), config=config)
    assert "export 1 of INC-1 written" in written.stdout
    assert (out / "footage" / paths[2]).read_bytes() == before
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["missing_segments"] == []
    assert manifest["case"] == "INC-1" and manifest["window"]["from"].endswith("Z")
    verified = cli("export", "verify", str(out), config=config)
    assert verified.stdout.startswith("OK: ") and "this installation's key" in verified.stdout
    segments = json.loads((out / "records" / "camera.json").read_text())
    gone = next(s for s in segments if s["path"] == paths[2])
    assert gone["source"] == "evidence" and gone["file"] == f"footage/{paths[2]}"


def test_placing_and_extending_preserve_at_once_and_audit_it(site):
    cli, config, _settings, engine, paths = site
    _place(cli, config, "INC-1", "--door", "lobby")
    assert _rows(engine, EvidenceCopy) == []
    extended = cli("hold", "extend", "INC-1", "--camera", "dock", config=config)
    assert "6 segment file(s) preserved" in extended.stdout
    assert sorted(r.path for r in _rows(engine, EvidenceCopy)) == sorted(paths)
    (entry,) = _actions(engine, "evidence.preserve")
    assert entry[1]["case"] == "INC-1" and entry[1]["linked"] == 6
    again = cli("hold", "extend", "INC-1", "--to", (NOW + H).isoformat(), config=config)
    assert "preserved" not in again.stdout  # nothing new to preserve


def test_evidence_never_takes_a_path_outside_the_root_nor_follows_a_symlink(site, tmp_path):
    cli, config, settings, engine, _paths = site
    root = settings.camera.root
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "x.mp4").write_bytes(b"not footage: the operator's own file")
    (root / "sneaky").mkdir()
    (root / "sneaky" / "file.mp4").symlink_to(outside / "x.mp4")
    (root / "through").symlink_to(outside)
    add(
        engine,
        segment("dock", START + H, path="../secret/x.mp4"),
        segment("dock", START + H, path="/etc/passwd"),
        segment("dock", START + H, path="sneaky/file.mp4"),
        segment("dock", START + H, path="through/x.mp4"),
    )
    placed = _place(cli, config)
    assert "6 segment file(s) preserved" in placed.stdout and "4 could not be" in placed.stdout
    kept = footage.tree(settings.evidence.root)
    assert "link" not in kept.values()
    assert not any("secret" in p or "sneaky" in p or "through" in p or "etc" in p for p in kept)
    assert all(
        not (settings.evidence.root / p).samefile(outside / "x.mp4")
        for p, k in kept.items()
        if k == "file"
    )
    for bad in ("../secret/x.mp4", "sneaky/file.mp4", "through/x.mp4"):
        with pytest.raises(camera_files.PathRefused):
            evidence.open_footage(settings, bad)


def test_a_planted_symlink_in_the_evidence_directory_is_replaced_never_followed(site, tmp_path):
    cli, config, settings, _engine, paths = site
    target = tmp_path / "victim.txt"
    target.write_text("keep me")
    planted = settings.evidence.root / "footage" / paths[0]
    planted.parent.mkdir(parents=True)
    planted.symlink_to(target)
    _place(cli, config)
    assert target.read_text() == "keep me"
    assert not planted.is_symlink() and planted.samefile(settings.camera.root / paths[0])


def test_the_copy_fallback_when_evidence_is_on_another_file_system(db_url, tmp_path):
    """/dev/shm (tmpfs) is another file system than the test's directory: link() gives EXDEV."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.fail("this test needs /dev/shm on a file system of its own", pytrace=False)
    place = Path(os.path.realpath(shm)) / f"facility-evidence-{os.getpid()}-{tmp_path.name}"
    try:
        settings = footage.settings(tmp_path, evidence=place)
        paths = footage.record(settings.camera.root, "dock", START, 3)
        engine = db.make_engine(db_url)
        scanner.scan(engine, settings, now=NOW)
        cli = Cli(db_url, tmp_path)
        placed = _place(cli, footage.config(tmp_path, settings))
        assert (
            "3 segment file(s) preserved in the evidence directory (0 linked, 3 copied)"
            in placed.stdout
        )
        rows = _rows(engine, EvidenceCopy)
        assert {r.method for r in rows} == {"copy"} and all(len(r.sha256) == 64 for r in rows)
        copy = place / "footage" / paths[0]
        assert copy.read_bytes() == (settings.camera.root / paths[0]).read_bytes()
        assert os.stat(copy).st_mode & 0o777 == 0o600
        assert [p for p in footage.tree(place / "footage") if p.endswith(".part")] == []
        engine.dispose()
    finally:
        shutil.rmtree(place, ignore_errors=True)


def test_a_copy_that_does_not_read_back_as_the_original_is_not_kept(tmp_path, monkeypatch):
    source = tmp_path / "a.mp4"
    source.write_bytes(footage.mp4())
    target = tmp_path / "out"
    target.mkdir()
    monkeypatch.setattr(evidence, "hash_descriptor", lambda fd: "0" * 64)  # a disk that lies
    src, dst = os.open(source, os.O_RDONLY), os.open(target, os.O_RDONLY)
    try:
        with pytest.raises(Exception, match="does not read back"):
            evidence.copy_verified(src, dst, "a.mp4")
    finally:
        os.close(src), os.close(dst)
    assert list(target.iterdir()) == []


# --- the export and its check ---------------------------------------------------------------------


@pytest.fixture
def exported(site, tmp_path):
    cli, config, _settings, engine, _paths = site
    (ada,) = add(engine, visit("Ada Lovelace", START, START + H))
    add(engine, loan("B17", ada, START, START + H), door("dock", "B17", START + H))
    _place(cli, config, "INC-1", "--camera", "dock", "--door", "dock", "--visitor", "Ada Lovelace")
    out = tmp_path / "handover"
    cli("hold", "export", "INC-1", "--output", str(out), config=config)
    return cli, config, out


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        ("flip", "footage/{seg}: changed"),
        ("remove", "records/door_events.csv: missing"),
        ("add", "footage/extra.mp4: added"),
        ("link", "records/notes.txt: added"),
        ("manifest", "manifest.json: the signature does not match"),
        ("key", "public_key.pem: changed"),
        ("signature", "manifest.sig: missing"),
    ],
)
def test_export_verify_names_the_first_file_changed_missing_or_added(
    exported, tmp_path, tamper, named
):
    cli, config, out = exported
    copy = tmp_path / f"copy-{tamper}"
    shutil.copytree(out, copy, symlinks=True)
    seg = sorted(p for p, k in footage.tree(copy / "footage").items() if k == "file")[0]
    if tamper == "flip":
        path = copy / "footage" / seg
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    elif tamper == "remove":
        (copy / "records" / "door_events.csv").unlink()
    elif tamper == "add":
        (copy / "footage" / "extra.mp4").write_bytes(b"planted")
    elif tamper == "link":
        (copy / "records" / "notes.txt").symlink_to("/etc/hostname")
    elif tamper == "manifest":
        path = copy / "manifest.json"
        path.write_text(path.read_text().replace('"INC-1"', '"INC-2"'))
    elif tamper == "key":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from facility.trail import signing

        other = Ed25519PrivateKey.generate()
        (copy / "public_key.pem").write_bytes(signing.public_pem(other.public_key()))
        key = copy / "public_key.pem"
        body = (copy / "manifest.json").read_bytes()
        (copy / "manifest.sig").write_bytes(signing.sign(other, body))
        result = cli("export", "verify", str(copy), "--key", str(key), code=1, config=config)
        assert named.format(seg=seg) in result.stderr
        return
    else:
        (copy / "manifest.sig").unlink()
    result = cli("export", "verify", str(copy), code=1, config=config)
    assert named.format(seg=seg) in result.stderr, result.stderr
    assert cli("export", "verify", str(out), config=config).stdout.startswith("OK")


def test_an_export_signed_elsewhere_is_refused_with_this_installations_key(exported, tmp_path):
    cli, config, out = exported
    copy = tmp_path / "elsewhere"
    shutil.copytree(out, copy)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from facility.trail import signing

    other = Ed25519PrivateKey.generate()
    body = json.loads((copy / "manifest.json").read_text())
    body["installation"]["public_key_sha256"] = signing.fingerprint(other.public_key())
    text = (json.dumps(body, sort_keys=True, indent=2) + "\n").encode()
    (copy / "manifest.json").write_bytes(text)
    (copy / "manifest.sig").write_bytes(signing.sign(other, text))
    (copy / "public_key.pem").write_bytes(signing.public_pem(other.public_key()))
    result = cli("export", "verify", str(copy), code=1, config=config)
    assert "manifest.json: the signature does not match" in result.stderr
    included = cli(
        "export", "verify", str(copy), "--key", str(copy / "public_key.pem"), config=config
    )
    assert included.stdout.startswith("OK")


def test_the_export_holds_records_as_csv_and_json_and_the_public_key(exported):
    cli, config, out = exported
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["records"] == {
        "visits": 1,
        "badges": 1,
        "door_events": 1,
        "camera": 6,
        "wifi": 0,
    }
    listed = {f["path"] for f in manifest["files"]}
    for kind in ("visits", "badges", "door_events", "camera", "wifi"):
        assert {f"records/{kind}.csv", f"records/{kind}.json"} <= listed
    assert json.loads((out / "records" / "visits.json").read_text())[0]["name"] == "Ada Lovelace"
    key = cli("export", "key", config=config)
    assert (out / "public_key.pem").read_text() == key.stdout
    assert manifest["installation"]["public_key_sha256"] in key.stderr
    assert oct(os.stat(out).st_mode & 0o777) == "0o700"
    assert os.stat(out / "records" / "visits.csv").st_mode & 0o777 == 0o600
    (entry,) = [e for a, e in _actions_of(cli) if a == "hold.export"]
    assert entry["case"] == "INC-1" and entry["export"] == 1
    assert "Ada" not in json.dumps(entry) and str(out) not in json.dumps(entry)


def _actions_of(cli):
    engine = db.make_engine(cli.url)
    with db.session_scope(engine) as session:
        rows = session.execute(select(AuditEntry)).scalars().all()
        found = [(e.action, json.loads(e.details)) for e in rows]
    engine.dispose()
    return found


def test_export_refuses_a_directory_that_is_not_new_and_leaves_nothing_registered(
    exported, tmp_path
):
    cli, config, out = exported
    assert (
        "not empty"
        in cli("hold", "export", "INC-1", "--output", str(out), code=2, config=config).stderr
    )
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere-dir")
    assert (
        "symbolic link"
        in cli("hold", "export", "INC-1", "--output", str(link), code=2, config=config).stderr
    )
    listed = json.loads(cli("export", "list", "--format", "json", config=config).stdout)
    assert [x["id"] for x in listed] == [1]


# --- the end of evidence copies and exports -------------------------------------------------------


def _purge_at(engine, settings, when):
    return purge.run(engine, settings, now=when, actor="tests")


def test_release_plus_grace_removes_the_evidence_copies_and_the_export(site, tmp_path):
    cli, config, settings, engine, paths = site
    _place(cli, config)
    out = tmp_path / "handover"
    cli("hold", "export", "INC-1", "--output", str(out), config=config)
    cli("hold", "release", "INC-1", "--reason", "case closed", config=config)
    grace = settings.holds.release_grace
    early = _purge_at(engine, settings, NOW + grace - H / 60)
    assert early.evidence["removed"] == 0 and early.exports["removed"] == 0
    assert out.is_dir() and (settings.evidence.root / "footage" / paths[0]).exists()
    late = _purge_at(engine, settings, NOW + grace + H / 60)
    assert late.evidence["removed"] == 6 and late.exports["removed"] == 1
    assert not out.exists()
    assert footage.tree(settings.evidence.root / "footage") == {}  # emptied folders went too
    assert all((settings.camera.root / p).exists() for p in paths)  # the recordings are not ours
    (export,) = _rows(engine, CaseExport)
    assert export.removal == "purged" and export.removed_at is not None
    listed = cli("export", "list", config=config).stdout
    assert "no export is on disk here" in listed


def test_a_second_hold_on_the_same_footage_keeps_the_evidence_copies(site, tmp_path):
    cli, config, settings, engine, paths = site
    _place(cli, config, "INC-1")
    _place(cli, config, "INC-2")
    out = tmp_path / "first"
    cli("hold", "export", "INC-1", "--output", str(out), config=config)
    (settings.camera.root / paths[0]).unlink()  # only the evidence copy is left of this one
    cli("hold", "release", "INC-1", "--reason", "case closed", config=config)
    report = _purge_at(engine, settings, NOW + settings.holds.release_grace + H)
    assert report.evidence["removed"] == 0
    assert len(_rows(engine, EvidenceCopy)) == 6
    assert (settings.evidence.root / "footage" / paths[0]).exists()
    assert not out.exists()  # INC-1's own export ends with INC-1
    fd, source = evidence.open_footage(settings, paths[0])
    os.close(fd)
    assert source == "evidence"


def test_a_handed_over_export_is_deleted_by_the_next_purge_and_the_hand_over_kept(site, tmp_path):
    cli, config, settings, engine, _paths = site
    _place(cli, config)
    out = tmp_path / "handover"
    cli("hold", "export", "INC-1", "--output", str(out), config=config)
    said = cli(
        "export",
        "handed-over",
        "1",
        "--to",
        "DC Smith, Police",
        "--reference",
        "PV-2026-7",
        config=config,
    )
    assert "handed over to DC Smith, Police (PV-2026-7)" in said.stdout
    again = cli(
        "export", "handed-over", "1", "--to", "x", "--reference", "y", code=2, config=config
    )
    assert "already handed over" in again.stderr
    assert (
        "no export 9"
        in cli(
            "export", "handed-over", "9", "--to", "x", "--reference", "y", code=2, config=config
        ).stderr
    )
    report = _purge_at(engine, settings, NOW + H)
    assert report.exports["removed"] == 1 and not out.exists()
    assert report.evidence["removed"] == 0  # the hold still keeps the footage
    (item,) = json.loads(cli("export", "list", "--all", "--format", "json", config=config).stdout)
    assert item["handed_over_to"] == "DC Smith, Police" and item["removal"] == "purged"
    (entry,) = [e for a, e in _actions_of(cli) if a == "export.handed-over"]
    assert entry == {"case": "INC-1", "export": 1}  # the recipient stays in the register only


def test_an_export_directory_replaced_meanwhile_is_left_alone(site, tmp_path):
    cli, config, settings, engine, _paths = site
    _place(cli, config)
    out = tmp_path / "handover"
    cli("hold", "export", "INC-1", "--output", str(out), config=config)
    shutil.rmtree(out)
    out.mkdir()
    (out / "someone-elses.txt").write_text("mine")
    cli("export", "handed-over", "1", "--to", "DC Smith", "--reference", "PV-1", config=config)
    report = _purge_at(engine, settings, NOW + H)
    assert report.exports["refused"] == 1
    assert (out / "someone-elses.txt").read_text() == "mine"
    assert any("no longer the directory" in n for n in report.notes)


def test_an_unmounted_evidence_directory_removes_no_row(site):
    cli, config, settings, engine, _paths = site
    _place(cli, config)
    cli("hold", "release", "INC-1", "--reason", "done", config=config)
    shutil.rmtree(settings.evidence.root / "footage")
    (settings.evidence.root / "footage").mkdir()  # a mount point with nothing mounted
    report = _purge_at(engine, settings, NOW + settings.holds.release_grace + H)
    assert report.evidence["removed"] == 0 and "empty" in report.evidence["skipped"]
    assert len(_rows(engine, EvidenceCopy)) == 6


def test_link_errors_other_than_another_file_system_are_reported_not_copied(site, monkeypatch):
    cli, config, _settings, engine, _paths = site

    def refuse(*args, **kwargs):
        raise OSError(errno.EIO, "input/output error")

    monkeypatch.setattr(os, "link", refuse)  # a failing disk cannot be made for real here
    placed = _place(cli, config)
    assert "6 could not be" in placed.stdout
    assert _rows(engine, EvidenceCopy) == []


def test_subject_export_names_the_exports_holding_their_records_and_erasure_keeps_them(exported):
    cli, config, out = exported
    found = json.loads(cli("subject", "export", "--name", "Ada Lovelace", config=config).stdout)
    (package,) = found["case_exports"]
    assert package["case"] == "INC-1" and package["location"] == str(out)
    assert any("evidence copies" in note for note in found["notes"])
    erased = cli(
        "subject", "erase", "--name", "Ada Lovelace", "--reason", "request 2026-17", "--yes",
        code=4, config=config,
    )  # fmt: skip
    assert "kept by hold INC-1" in erased.stdout and "export(s) 1 kept here" in erased.stdout
    assert "INC-1" in erased.stderr
    assert (out / "records" / "visits.json").exists()
    assert cli("export", "verify", str(out), config=config).stdout.startswith("OK")
    nobody = json.loads(cli("subject", "export", "--name", "Grace Hopper", config=config).stdout)
    assert nobody["case_exports"] == []


def test_segments_recorded_after_the_hold_was_placed_are_preserved_by_the_next_scan(site):
    cli, config, settings, engine, _paths = site
    frm, to = START.isoformat(), (NOW + H).isoformat()
    cli(
        "hold",
        "place",
        "INC-1",
        "--reason",
        "r",
        "--from",
        frm,
        "--to",
        to,
        "--camera",
        "yard",
        config=config,
    )
    later = footage.record(settings.camera.root, "yard", NOW - H / 2, 3)
    scanned = cli("camera", "scan", config=config)
    assert "3 segment file(s) preserved in the evidence directory (3 linked" in scanned.stdout
    assert {r.path for r in _rows(engine, EvidenceCopy)} == set(later)


def test_the_report_lists_exports_on_disk_and_fails_on_one_kept_past_its_end(
    site, tmp_path, monkeypatch
):
    from facility.cli.context import AppContext

    cli, config, settings, engine, _paths = site
    _place(cli, config)
    out = tmp_path / "handover"
    cli("hold", "export", "INC-1", "--output", str(out), config=config)
    body = json.loads(cli("report", "--format", "json", config=config).stdout)
    (listed,) = body["case_files"]["exports_on_disk"]
    assert (listed["id"], listed["case"], listed["location"]) == (1, "INC-1", str(out))
    assert listed["due_since"] is None  # its hold still protects it
    assert "Case exports still on disk here: 1" in cli("report", config=config).stdout
    cli("export", "handed-over", "1", "--to", "DC Smith", "--reference", "PV-7", config=config)
    later = NOW + settings.purge.interval + H / 60  # one purge interval past the hand-over
    monkeypatch.setattr(AppContext, "now", lambda self: later)
    failed = cli("report", "--format", "json", code=1, config=config)
    assert f"export 1 of INC-1: still at {out}, due for deletion since" in failed.stderr
    assert json.loads(failed.stdout)["ok"] is False
    _purge_at(engine, settings, later)
    body = json.loads(cli("report", "--format", "json", config=config).stdout)
    assert body["case_files"]["exports_on_disk"] == [] and body["ok"] is True


def test_a_failed_file_system_sync_is_an_error_not_a_silent_success(tmp_path):
    from facility.files import sync_file_system

    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    sync_file_system(fd)  # a real file system: durable, no error
    os.close(fd)
    with pytest.raises(OSError) as raised:
        sync_file_system(fd)  # the descriptor is closed now: the kernel refuses it
    assert raised.value.errno == errno.EBADF


def test_copies_the_disk_fails_to_write_back_are_reported_not_recorded(site, monkeypatch):
    cli, config, _settings, engine, _paths = site
    real_link = os.link

    def elsewhere(*args, **kwargs):
        if "dst_dir_fd" in kwargs:  # the evidence link: as on another file system
            raise OSError(errno.EXDEV, "invalid cross-device link")
        return real_link(*args, **kwargs)

    def lost(fd):
        raise OSError(errno.EIO, "input/output error")

    monkeypatch.setattr(os, "link", elsewhere)
    monkeypatch.setattr(evidence, "sync_file_system", lost)  # a failing disk, not makeable here
    placed = _place(cli, config)
    assert "6 could not be" in placed.stdout and "copied" not in placed.stdout
    assert _rows(engine, EvidenceCopy) == []
