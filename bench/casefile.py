"""Case-file benchmark: export and verify a hold of 10 000 camera segments.

A hold keeps 10 000 segment files (Frigate layout, `--size` bytes each, real files on disk). The
product: `handover.export_case` (every file copied and hashed into the package, the records as
CSV and JSON, the signed manifest, registered) and `manifest.verify` (the signature, the file
list, then every file's SHA-256). The baseline, in the same run: a bare loop that copies the same
files with `shutil.copyfile` and hashes each with `hashlib.sha256` (export), and one that only
hashes them (verify). Also printed: placing the evidence copies (`evidence.preserve`: one hard
link each, or with `--evidence DIR` on another file system, a verified copy each).
Targets: product time <= 3 x baseline, for both.

    python bench/casefile.py [--quick] [--engine sqlite|postgresql] [--size BYTES] [--evidence DIR]
"""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from camera import segment_paths
from common import (
    T0,
    Figure,
    Timer,
    TimeText,
    arguments,
    finish,
    finish_seeding,
    in_child,
    load_rows,
    peak_rss_mb,
    raw_connection,
    reset_peak_rss,
    rss_figure,
    say,
    store,
    time_at_most,
    workdir,
)

from facility.retention import evidence, handover, holds, manifest
from facility.settings import Settings
from facility.store import db


def _seed(url: str, kind: str, paths: list[tuple[str, str, float]]) -> None:
    t = TimeText(kind)
    conn = raw_connection(url)
    load_rows(
        conn, kind, "camera_segments", ("camera", "path", "start", "end", "retain_from"),
        ((camera, path, t(end - 10), t(end), t(end)) for camera, path, end in paths),
    )  # fmt: skip
    conn.close()


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=10_000, help="segments the hold keeps")
    parser.add_argument("--size", type=int, default=256 * 1024, help="bytes per segment file")
    parser.add_argument("--evidence", type=Path, help="evidence root (default: beside the files)")
    args = parser.parse_args()
    n = 300 if args.quick else args.segments
    with workdir(args.workdir) as where, store(args.engine, where, "casefile") as seeded:
        paths = segment_paths(n)
        root = where / "recordings"
        say(f"writing {n:,} files of {args.size:,} bytes")
        block = os.urandom(args.size)
        for _camera, path, _end in paths:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(block)
        in_child(_seed, seeded.url, args.engine, paths)
        finish_seeding(seeded.url)
        evidence_root = args.evidence or where / "evidence"
        settings = Settings(
            database_url=seeded.url,
            camera={"root": root},
            evidence={"root": evidence_root},
        )
        engine = db.make_engine(seeded.url)
        start, end = paths[0][2] - 3600 * 24 * 365, paths[-1][2] + 3600
        with db.session_scope(engine) as session:
            holds.place(
                session, now=T0, actor="bench", case="BENCH-1", reason="bench",
                window_from=datetime.fromtimestamp(start, UTC),
                window_to=datetime.fromtimestamp(end, UTC),
                scopes=[holds.Scope("camera", None)],
            )  # fmt: skip

        say("evidence: preserve every held segment")
        with Timer() as preserving:
            preserved = evidence.preserve(engine, settings, now=T0, actor="bench", case="BENCH-1")
        say(f"preserved {preserved.linked:,} linked, {preserved.copied:,} copied")

        say("baseline: shutil.copyfile + sha256 of each file")
        base_out = where / "baseline"
        with Timer() as base_export:
            for _camera, path, _end in paths:
                target = base_out / path
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / path, target)
                _hash(target)
        with Timer() as base_verify:
            for _camera, path, _end in paths:
                _hash(base_out / path)
        shutil.rmtree(base_out)

        say("product: handover.export_case, then manifest.verify")
        reset_peak_rss()
        out = where / "export"
        with Timer() as exporting:
            written = handover.export_case(
                engine, settings, case="BENCH-1", output=out, now=T0, actor="bench",
                roles=frozenset({"security"}),
            )  # fmt: skip
        with Timer() as verifying:
            verdict = manifest.verify(out)
        peak = peak_rss_mb()
        engine.dispose()
    say(f"exported {written.files:,} files, {written.size:,} bytes; verify ok={verdict.ok}")
    ok = verdict.ok and written.counts["camera"] == n
    figures = [
        Figure("casefile_export_time", exporting.seconds, "s", base_export.seconds, "<= 3x baseline", time_at_most(3.0)),
        Figure("casefile_verify_time", verifying.seconds, "s", base_verify.seconds, "<= 3x baseline", time_at_most(3.0)),
        Figure("casefile_preserve_time", preserving.seconds, "s"),
        Figure("casefile_segments", n, "files", check=lambda v, r: ok),
        rss_figure(peak),
    ]  # fmt: skip
    return finish(f"case file: export and verify {n:,} segments", figures, quick=args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
