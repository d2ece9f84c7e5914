"""Case exports: the package handed to the police, its register, and its end.

`export_case` writes, into a new directory, every segment file the hold keeps (the recorder's, or
its evidence copy once the recorder deleted it), the door events, visits, badge loans and leases
it keeps as CSV and JSON, a README saying how to check it, and `manifest.json` signed with the
installation's Ed25519 key (`manifest`, `trail.signing`). Files are created 0600 in a directory
made 0700, each relative to the directory's descriptor, never through a symlink.

Exports do not escape retention. Each is registered (`case_exports`: the case, where, the
manifest's hash, who, when) before a byte is written, so even one cut short is known;
`hand_over` records who received it. The product's own copy is then deleted by the purge
(`remove_due`): once handed over (the recipient's copy is theirs), or once its hold was released
and the grace passed. The directory is removed only if it is still the one the export made
(device and inode), with `shutil.rmtree`, which walks by descriptor and never follows a link.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, delete, or_, select, update
from sqlmodel import Session, col

from facility.errors import FacilityError, InputError
from facility.files import sync_file_system
from facility.names import clean_text
from facility.render import csv_text, json_text
from facility.retention import camera_files, casefile, evidence, holds, manifest
from facility.settings import Settings
from facility.sites import narrow
from facility.store import db
from facility.store import kinds as registry
from facility.store.models import CaseExport, EvidenceCopy, Hold, table_of
from facility.timefmt import utc_fields, utc_text
from facility.trail import audit, signing

_X = table_of(CaseExport)
_H = table_of(Hold)
RECORDS = "records"
FOOTAGE = "footage"
README = "README.txt"


@dataclass
class Written:
    """One export, as written and registered."""

    export_id: int
    case: str
    location: Path
    files: int
    size: int
    manifest_sha256: str
    counts: dict[str, int]
    missing: list[str] = field(default_factory=list)  # held segments with no file anywhere


class _Package:
    """Writing one export directory: files relative to its descriptor, hashed as written.

    Files are not synced one by one: `_write` syncs the file system once when every listed file is
    written, before the manifest that lists them, and once more after the manifest (bench/README.md,
    "Case file").
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.files: dict[str, tuple[str, int]] = {}  # relative path -> (sha256, bytes)

    def _open(self, relpath: str) -> int:
        folder, name = camera_files.split(relpath)
        parent = camera_files.open_directory_at(self.fd, folder, create=True)
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return os.open(name, flags, 0o600, dir_fd=parent)
        finally:
            os.close(parent)

    def write(self, relpath: str, data: bytes, *, listed: bool = True) -> str:
        """Write a whole file; its SHA-256."""
        out = self._open(relpath)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(out, view) :]
        finally:
            os.close(out)
        digest = hashlib.sha256(data).hexdigest()
        if listed:
            self.files[relpath] = (digest, len(data))
        return digest

    def copy(self, relpath: str, source: int) -> tuple[str, int]:
        """Copy open file `source` to `relpath`; its SHA-256 and size."""
        out = self._open(relpath)
        digest, offset = hashlib.sha256(), 0
        try:
            while chunk := os.pread(source, evidence.CHUNK, offset):
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view) :]
                offset += len(chunk)
        finally:
            os.close(out)
        self.files[relpath] = (digest.hexdigest(), offset)
        return digest.hexdigest(), offset


def _new_directory(output: Path) -> tuple[int, os.stat_result]:
    """Create `output` (0700) or take an empty directory there; its descriptor and identity."""
    output = Path(os.path.abspath(output))
    try:
        os.mkdir(output, 0o700)
    except FileExistsError:
        found = os.lstat(output)
        if stat.S_ISLNK(found.st_mode):
            raise InputError(
                f"--output: {output} is a symbolic link; give a new directory"
            ) from None
        if not stat.S_ISDIR(found.st_mode):
            raise InputError(f"--output: {output} is not a directory") from None
        if any(output.iterdir()):
            raise InputError(f"--output: {output} is not empty; give a new directory") from None
        os.chmod(output, 0o700, follow_symlinks=False)
    except FileNotFoundError:
        raise InputError(f"--output: the directory {output.parent} does not exist") from None
    except PermissionError:
        raise InputError(f"--output: cannot create {output}: permission denied") from None
    fd = os.open(output, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    return fd, os.fstat(fd)


def export_case(
    engine: Engine,
    settings: Settings,
    *,
    case: str,
    output: Path,
    now: datetime,
    actor: str,
    roles: frozenset[str],
) -> Written:
    """Write hold `case`'s package to `output` (a new or empty directory) and register it."""
    grace = settings.holds.release_grace
    with db.read_scope(engine) as session:
        hold = holds.get(session, case)
        if not holds.is_active(hold, now=now, grace=grace):
            raise InputError(
                f"CASE: hold {hold.case} no longer protects anything (released, grace passed); "
                "its records may be gone: there is nothing to export"
            )
    output = Path(os.path.abspath(output))
    assert hold.id is not None
    fd, identity = _new_directory(output)
    with db.session_scope(engine) as session:
        row = CaseExport(
            hold_id=hold.id,
            location=str(output),
            device=identity.st_dev,
            inode=identity.st_ino,
            exported_by=actor,
            exported_at=now,
        )
        session.add(row)
        session.flush()
        export_id = row.id
    assert export_id is not None
    try:
        written = _write(engine, settings, fd, hold, now=now, actor=actor, roles=roles)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            if same_directory(output, identity.st_dev, identity.st_ino):
                shutil.rmtree(output)
        with db.session_scope(engine) as session:
            session.execute(delete(_X).where(_X.c.id == export_id))
        raise
    os.close(fd)
    body, counts, missing = written
    digest = hashlib.sha256(body).hexdigest()
    listed = json.loads(body)["files"]
    files, size = len(listed), sum(int(f["bytes"]) for f in listed)
    with db.session_scope(engine) as session:
        session.execute(
            update(_X)
            .where(_X.c.id == export_id)
            .values(manifest_sha256=digest, files=files, size=size)
        )
        audit.append(
            session,
            now=now,
            actor=actor,
            action="hold.export",
            case=hold.case,
            export=export_id,
            files=files,
            bytes=size,
            manifest_sha256=digest,
            records=counts,
            missing_segments=len(missing),
        )
    return Written(export_id, hold.case, output, files, size, digest, counts, missing)


def _write(
    engine: Engine,
    settings: Settings,
    fd: int,
    hold: Hold,
    *,
    now: datetime,
    actor: str,
    roles: frozenset[str],
) -> tuple[bytes, dict[str, int], list[str]]:
    """Write the package into directory `fd`: the manifest's bytes, records per kind, missing."""
    grace = settings.holds.release_grace
    package = _Package(fd)
    counts: dict[str, int] = {}
    with db.read_scope(engine) as session:
        scopes = holds.scopes_of(session, hold)
        rows = {
            kind: _rows(session, hold, kind, now=now, grace=grace, roles=roles)
            for kind in registry.HOLDABLE
        }
        stored = {
            path: digest
            for path, digest in session.execute(
                select(col(EvidenceCopy.path), col(EvidenceCopy.sha256)).where(
                    col(EvidenceCopy.sha256).is_not(None)
                )
            ).all()
        }
    missing: list[str] = []
    for segment in rows["camera"]:
        segment["file"], segment["sha256"], segment["source"] = None, None, None
        try:
            source, where = evidence.open_footage(settings, segment["path"])
        except FileNotFoundError:
            missing.append(segment["path"])
            continue
        except camera_files.PathRefused as err:
            raise FacilityError(f"segment {segment['id']}: {err}; not exported") from err
        try:
            relpath = f"{FOOTAGE}/{segment['path']}"
            digest, _ = package.copy(relpath, source)
        finally:
            os.close(source)
        if where == "evidence" and stored.get(segment["path"]) not in (None, digest):
            raise FacilityError(
                f"the evidence copy of segment {segment['id']} ({segment['path']}) no longer "
                "hashes as when it was made: it was changed; not exported"
            )
        segment["file"], segment["sha256"], segment["source"] = relpath, digest, where
    for kind, found in rows.items():
        counts[kind] = len(found)
        fields = list(found[0]) if found else _columns(kind)
        package.write(f"{RECORDS}/{kind}.json", (json_text(found) + "\n").encode())
        package.write(
            f"{RECORDS}/{kind}.csv",
            csv_text(fields, [[r.get(f) for f in fields] for r in found]).encode(),
        )
    key = signing.private_key()
    public = key.public_key()
    package.write(README, _readme(hold).encode())
    sync_file_system(fd)  # what the manifest lists is on disk before the manifest is
    body = manifest.text(
        {
            "format": manifest.FORMAT,
            "case": hold.case,
            "reason": hold.reason,
            "window": {"from": utc_text(hold.window_from), "to": utc_text(hold.window_to)},
            "scopes": [s.as_json() for s in scopes],
            "exported_by": actor,
            "exported_at": utc_text(now),
            "installation": {
                "algorithm": signing.ALGORITHM,
                "public_key_sha256": signing.fingerprint(public),
            },
            "records": counts,
            "missing_segments": missing,
            "files": [
                {"path": path, "sha256": digest, "bytes": size}
                for path, (digest, size) in sorted(package.files.items())
            ],
        }
    )
    package.write(manifest.MANIFEST, body, listed=False)
    package.write(manifest.SIGNATURE, signing.sign(key, body), listed=False)
    package.write(manifest.PUBLIC_KEY, signing.public_pem(public), listed=False)
    sync_file_system(fd)
    return body, counts, missing


def _rows(
    session: Session,
    hold: Hold,
    kind: str,
    *,
    now: datetime,
    grace: timedelta,
    roles: frozenset[str],
) -> list[dict[str, Any]]:
    """Every stored column of each record of `kind` the hold keeps, oldest first."""
    declared = registry.get(kind)
    table = declared.table
    statement = (
        select(table)
        .where(
            holds.held(kind, table, now=now, grace=grace, hold_id=hold.id),
            casefile.visible(kind, table, roles),
        )
        .order_by(table.c[declared.order_by], table.c.id)
    )
    return [utc_fields(dict(row._mapping)) for row in session.execute(statement)]


def _columns(kind: str) -> list[str]:
    columns = [c.name for c in registry.get(kind).table.columns]
    return columns + (["file", "sha256", "source"] if kind == "camera" else [])


def _readme(hold: Hold) -> str:
    return (
        f"Case {hold.case}: records and footage kept by an incident hold, exported by facility.\n"
        "\n"
        "manifest.json lists every other file with its SHA-256 and size, and says who exported\n"
        "it and when. manifest.sig is the installation's Ed25519 signature of manifest.json;\n"
        "public_key.pem its public key (compare its fingerprint, public_key_sha256 in the\n"
        "manifest, with the one the installation gave you).\n"
        "\n"
        "Check it with facility:  facility export verify THIS_DIRECTORY [--key public_key.pem]\n"
        "or with OpenSSL 3:       openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin \\\n"
        "                             -in manifest.json -sigfile manifest.sig\n"
        "and then each file's SHA-256 (sha256sum) against the manifest.\n"
        "\n"
        "records/ holds the door events, visits, badge loans, wifi leases and camera segments\n"
        "the hold keeps, as CSV and JSON (times in UTC); footage/ the segment files, at the\n"
        "paths the recorder gave them.\n"
    )


def same_directory(path: Path, device: int, inode: int) -> bool:
    """Whether `path` is a directory (not a symlink) with this identity."""
    found = os.lstat(path)
    return stat.S_ISDIR(found.st_mode) and (found.st_dev, found.st_ino) == (device, inode)


def is_ours(path: Path, device: int, inode: int, manifest_sha256: str | None) -> bool:
    """Whether `path` still holds the export registered with this identity and manifest.

    The directory's device and inode alone could be a new directory's, as file systems reuse
    inode numbers; a completed export's manifest.json must also hash as registered.
    """
    if not same_directory(path, device, inode):
        return False
    if manifest_sha256 is None:
        return True  # cut short before its manifest: the identity is all there is
    try:
        fd = os.open(path / manifest.MANIFEST, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return evidence.hash_descriptor(fd) == manifest_sha256
    finally:
        os.close(fd)


# --- the register --------------------------------------------------------------------------------


def get(session: Session, export_id: int) -> CaseExport:
    """Export `export_id`; InputError if there is none."""
    found = session.get(CaseExport, export_id)
    if found is None:
        raise InputError(f"ID: there is no export {export_id}")
    return found


def hold_of(session: Session, export_id: int) -> Hold:
    """The hold export `export_id` was made of (its site decides who may act on it); InputError
    if there is no such export."""
    return holds.get_by_id(session, get(session, export_id).hold_id)


def hand_over(
    session: Session,
    *,
    export_id: int,
    to: str,
    reference: str,
    now: datetime,
    actor: str,
) -> tuple[CaseExport, str]:
    """Record that export `export_id` was handed over; the export and its case."""
    recipient = clean_text(to, what="--to", limit=200)
    ref = clean_text(reference, what="--reference", limit=200)
    if not recipient:
        raise InputError("--to: say to whom it was handed (e.g. the officer and the force)")
    if not ref:
        raise InputError("--reference: give the recipient's reference (e.g. their case number)")
    export = get(session, export_id)
    case = session.execute(select(_H.c.case).where(_H.c.id == export.hold_id)).scalar_one()
    if export.manifest_sha256 is None:
        raise InputError(f"ID: export {export_id} was never completed; export the case again")
    if export.handed_over_at is not None:
        raise InputError(
            f"ID: export {export_id} was already handed over to {export.handed_over_to} "
            f"({export.handover_reference})"
        )
    export.handed_over_at, export.handed_over_by = now, actor
    export.handed_over_to, export.handover_reference = recipient, ref
    session.add(export)
    session.flush()
    # The recipient and their reference stay in the register; the trail names the export only.
    audit.append(
        session, now=now, actor=actor, action="export.handed-over", export=export_id, case=case
    )
    return export, case


def listing(
    session: Session,
    *,
    include_removed: bool = False,
    case: str | None = None,
    sites: int | Collection[int] | None = None,
) -> list[dict[str, Any]]:
    """The registered exports, oldest first: those still on disk, or all; of the holds of the
    given sites and the organisation's (None: of every hold)."""
    statement = select(_X, _H.c.case, _H.c.released_at, _H.c.site_id.label("hold_site_id"))
    statement = statement.join(_H, _H.c.id == _X.c.hold_id)
    if sites is not None:
        statement = statement.where(or_(_H.c.site_id.is_(None), narrow(_H, sites)))
    if not include_removed:
        statement = statement.where(_X.c.removed_at.is_(None))
    if case is not None:
        statement = statement.where(_H.c.case == case)
    rows = session.execute(statement.order_by(_X.c.exported_at, _X.c.id)).mappings().all()
    return [dict(row) for row in rows]


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    """An export in the `export list --format json` shape."""
    return {
        "id": row["id"],
        "case": row["case"],
        "location": row["location"],
        "manifest_sha256": row["manifest_sha256"],
        "files": row["files"],
        "bytes": row["size"],
        "exported_by": row["exported_by"],
        "exported_at": utc_text(row["exported_at"]),
        "handed_over_at": utc_text(row["handed_over_at"]),
        "handed_over_by": row["handed_over_by"],
        "handed_over_to": row["handed_over_to"],
        "handover_reference": row["handover_reference"],
        "removed_at": utc_text(row["removed_at"]),
        "removal": row["removal"],
        "complete": row["manifest_sha256"] is not None,
    }


def due(now: datetime, grace: timedelta) -> Any:
    """The exports whose copy is to go: handed over, or their hold released past its grace."""
    return and_(
        _X.c.removed_at.is_(None),
        or_(
            _X.c.handed_over_at.is_not(None),
            and_(_H.c.released_at.is_not(None), _H.c.released_at <= now - grace),
        ),
    )


def due_since(row: dict[str, Any], grace: timedelta) -> datetime | None:
    """When an export's copy became due for deletion (None: not yet)."""
    moments = [row["handed_over_at"]]
    if row["released_at"] is not None:
        moments.append(row["released_at"] + grace)
    found = [m for m in moments if m is not None]
    return min(found) if found else None


@dataclass
class Removed:
    """What one pass over the due exports did."""

    removed: int = 0
    gone: int = 0  # already gone from disk
    refused: int = 0  # the path is no longer the directory the export made: left alone
    failed: int = 0
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, int]:
        """The counts."""
        return {
            "removed": self.removed,
            "gone": self.gone,
            "refused": self.refused,
            "failed": self.failed,
        }


def remove_due(engine: Engine, settings: Settings, *, now: datetime) -> Removed:
    """Delete the product's copy of every export that is due; record it in the register."""
    grace = settings.holds.release_grace
    result = Removed()
    with db.read_scope(engine) as session:
        rows = session.execute(
            select(_X.c.id, _X.c.location, _X.c.device, _X.c.inode, _X.c.manifest_sha256)
            .select_from(_X.join(_H, _H.c.id == _X.c.hold_id))
            .where(due(now, grace))
            .order_by(_X.c.id)
        ).all()
    for export_id, location, device, inode, digest in rows:
        how = _remove(Path(location), device, inode, digest, export_id, result)
        if how is not None:
            with db.session_scope(engine) as session:
                session.execute(
                    update(_X).where(_X.c.id == export_id).values(removed_at=now, removal=how)
                )
    return result


def _remove(
    path: Path, device: int, inode: int, digest: str | None, export_id: int, result: Removed
) -> str | None:
    try:
        if not is_ours(path, device, inode, digest):
            result.refused += 1
            result.notes.append(
                f"export {export_id}: {path} is no longer the directory it was written to; "
                "left alone, remove it by hand"
            )
            return None
        shutil.rmtree(path)
    except FileNotFoundError:
        result.gone += 1
        return "gone"
    except OSError as err:
        result.failed += 1
        result.notes.append(f"export {export_id}: cannot remove {path}: {err.strerror or err}")
        return None
    result.removed += 1
    return "purged"
