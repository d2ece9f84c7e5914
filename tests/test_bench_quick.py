"""The benchmarks keep working: each runs at its tiny `--quick` size as a real subprocess.

Benchmarks are not unit tests (their targets are checked at full size, see bench/README.md); this
only proves that each one still runs against the current code, on the real databases and broker,
and prints its figure lines.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL

BENCH = Path(__file__).resolve().parents[1] / "bench"
# bench and arguments -> the figure names its output must carry
CASES = {
    "purge-sqlite": (["purge.py", "--engine", "sqlite"], ["purge_time", "peak_rss"]),
    "purge-postgresql": (["purge.py", "--engine", "postgresql"], ["purge_time", "peak_rss"]),
    "purge-scaling": (["purge.py", "--scaling"], ["purge_1pct_time", "purge_50pct_time"]),
    "camera": (["camera.py"], ["camera_files_per_s", "peak_rss"]),
    "onsite-sqlite": (["onsite.py", "--engine", "sqlite"], ["onsite_p99", "onsite_count"]),
    "onsite-postgresql": (["onsite.py", "--engine", "postgresql"], ["onsite_p99"]),
    "onsite-sites": (["onsite.py", "--sites", "20"], ["onsite_p99", "onsite_count"]),
    "onsite-sites-postgresql": (
        ["onsite.py", "--sites", "20", "--engine", "postgresql"],
        ["onsite_p99", "onsite_count"],
    ),
    "purge-sites": (
        ["purge.py", "--sites", "20"],
        ["purge_time", "purge_row_1_site", "purge_row_20_sites", "purge_20_sites_2x_rows"],
    ),
    "leases": (["leases.py"], ["kea_lines_per_s", "dnsmasq_lines_per_s", "isc_lines_per_s"]),
    "ingest": (["ingest.py"], ["ingest_events_per_s", "ingest_stored", "peak_rss"]),
    "audit-sqlite": (["audit.py"], ["audit_verify_full", "audit_verify_checkpoint", "peak_rss"]),
    "audit-postgresql": (["audit.py", "--engine", "postgresql"], ["audit_verify_checkpoint"]),
    "scan-sqlite": (
        ["scan.py"],
        ["scan_steady_time", "scan_new_hour_time", "scan_inotify_latency", "peak_rss"],
    ),
    "scan-postgresql": (["scan.py", "--engine", "postgresql"], ["scan_steady_time"]),
    "year-sqlite": (
        ["year.py"],
        ["year_db_size", "year_purge_mean", "year_onsite_p99", "year_report_time", "peak_rss"],
    ),
    "casefile": (["casefile.py"], ["casefile_export_time", "casefile_verify_time"]),
}
# Figures whose verdict does not depend on the size, so that a quick run holds them too: one site's
# on-site list has its own 300 people, none of another site's.
HELD_AT_ANY_SIZE = {
    case: ["onsite_count"] for case in ("onsite-sqlite", "onsite-sites", "onsite-sites-postgresql")
}
LINE = r"^{name}\s+\S+ \S+\s+baseline\s+\S+\s+ratio\s+\S+\s+target .* (PASS|FAIL|INFO)$"


@pytest.mark.parametrize("case", list(CASES))
def test_bench_runs_quick(case: str, tmp_path: Path) -> None:
    script, *args = CASES[case][0]
    env = {**os.environ, "FACILITY_BENCH_PG_URL": PG_ADMIN_URL}
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--workdir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,  # a guard against a hang: a loaded machine stretches the slowest, year.py
    )
    output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, output
    for name in CASES[case][1]:
        assert re.search(LINE.format(name=name), result.stdout, re.MULTILINE), output
    for name in HELD_AT_ANY_SIZE.get(case, []):
        line = re.search(LINE.format(name=name), result.stdout, re.MULTILINE)
        assert line is not None and line.group(1) == "PASS", output
