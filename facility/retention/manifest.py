"""A case export's manifest, and checking a directory against it (`facility export verify`).

An export directory holds `manifest.json` (the case, window, scopes, who exported it and when,
and the SHA-256 and size of every other file), `manifest.sig` (the installation's Ed25519
signature of manifest.json's bytes) and `public_key.pem` (the installation's public key, whose
fingerprint the manifest names). Verifying checks the signature, then that the files present
are exactly those listed, byte for byte; the first file that changed, went missing or was added
is named. Nothing is ever followed through a symlink: one found in the directory is a file that
was added.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from facility.errors import InputError
from facility.trail import signing

FORMAT = "facility-case-export/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public_key.pem"
CONTROL = (MANIFEST, SIGNATURE, PUBLIC_KEY)  # not listed in the manifest: they check it
CHUNK = 1024 * 1024


def text(manifest: dict[str, Any]) -> bytes:
    """The bytes of manifest.json: sorted keys, indented, so a person can read it too."""
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


@dataclass(frozen=True)
class Verdict:
    """What checking an export directory found."""

    ok: bool
    files: int = 0  # listed files checked
    size: int = 0
    problem: str | None = None  # e.g. "footage/x.mp4: changed"
    path: str | None = None  # the file named
    case: str | None = None
    key_fingerprint: str | None = None
    key_source: str | None = None  # given | installation | included

    def as_json(self) -> dict[str, Any]:
        """For `export verify --format json`."""
        return {
            "ok": self.ok,
            "files": self.files,
            "bytes": self.size,
            "problem": self.problem,
            "path": self.path,
            "case": self.case,
            "key_fingerprint": self.key_fingerprint,
            "key_source": self.key_source,
        }


def _bad(path: str, what: str, **known: Any) -> Verdict:
    return Verdict(False, problem=f"{path}: {what}", path=path, **known)


def verify(
    directory: Path, *, key: Ed25519PublicKey | None = None, key_source: str = "given"
) -> Verdict:
    """Check `directory` against its signed manifest; with no `key`, the included one is used.

    InputError when `directory` is not a directory at all.
    """
    if not directory.is_dir() or directory.is_symlink():
        raise InputError(f"DIR: {directory} is not a directory")
    found = _files(directory)
    for name in CONTROL:
        if found.get(name) is not True:
            return _bad(name, "missing" if name not in found else "not a regular file")
    body = (directory / MANIFEST).read_bytes()
    signature = (directory / SIGNATURE).read_bytes()
    included = signing.load_public((directory / PUBLIC_KEY).read_bytes(), what=PUBLIC_KEY)
    if key is None:
        key, key_source = included, "included"
    known = {"key_fingerprint": signing.fingerprint(key), "key_source": key_source}
    if not signing.valid(key, body, signature):
        return _bad(
            MANIFEST, "the signature does not match (changed, or signed by another key)", **known
        )
    try:
        manifest = json.loads(body)
        listed = {f["path"]: (f["sha256"], int(f["bytes"])) for f in manifest["files"]}
        named_key = manifest["installation"]["public_key_sha256"]
    except (ValueError, KeyError, TypeError) as err:
        return _bad(MANIFEST, f"not an export manifest ({err})", **known)
    known["case"] = manifest.get("case")
    if named_key != signing.fingerprint(included):
        return _bad(PUBLIC_KEY, "changed (not the key the manifest names)", **known)
    if named_key != known["key_fingerprint"]:
        return _bad(MANIFEST, "signed by another installation's key", **known)
    present = {path for path in found if path not in CONTROL}
    for path in sorted(set(listed) | present):
        if path not in found:
            return _bad(path, "missing", **known)
        if path not in listed or found[path] is not True:
            return _bad(path, "added", **known)
        if os.lstat(directory / path).st_size != listed[path][1]:
            return _bad(path, "changed", **known)
    total = 0
    for path in sorted(listed):
        digest, size = listed[path]
        if file_hash(directory / path) != digest:
            return _bad(path, "changed", **known)
        total += size
    return Verdict(True, files=len(listed), size=total, **known)


def _files(directory: Path) -> dict[str, bool]:
    """Every entry below `directory` that is not a directory, by relative path: True when it is a
    regular file. Symlinks are entries, never followed."""
    found: dict[str, bool] = {}
    for folder, subfolders, names in os.walk(directory, followlinks=False):
        base = Path(folder).relative_to(directory)
        for name in names + [d for d in subfolders if os.path.islink(os.path.join(folder, d))]:
            mode = os.lstat(os.path.join(folder, name)).st_mode
            found[(base / name).as_posix()] = stat.S_ISREG(mode)
    return found


def file_hash(path: Path) -> str:
    """The SHA-256 of a file, read without following a symlink."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()
