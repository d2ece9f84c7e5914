"""The sample inputs live in the repository, each named in tests/samples/README.md with its source."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SAMPLES

REPOSITORY = Path(__file__).resolve().parents[1]


def test_samples_live_inside_the_repository():
    assert SAMPLES.resolve().is_relative_to(REPOSITORY)
    assert any(SAMPLES.rglob("*.leases")), "the DHCP samples are missing"


def test_every_sample_is_named_in_the_samples_readme():
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    files = [p for p in SAMPLES.rglob("*") if p.is_file() and p.name != "README.md"]
    unnamed = [p.name for p in files if f"`{p.name}`" not in readme]
    assert files and not unnamed, f"tests/samples/README.md does not name {unnamed}"
