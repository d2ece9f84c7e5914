"""Removing segment files (invariant 6), with real files and real symlinks under a temporary root."""

from __future__ import annotations

import errno
import logging
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facility import camera_files
from facility.camera_files import Outcome, remove, root_state


@pytest.fixture
def site(tmp_path) -> tuple[Path, Path]:
    """A recordings root with one segment, and a directory outside it holding a precious file."""
    root, outside = tmp_path / "recordings", tmp_path / "outside"
    (root / "2026-06-01" / "12" / "cam1").mkdir(parents=True)
    (root / "2026-06-01" / "12" / "cam1" / "00.00.mp4").write_bytes(b"segment")
    outside.mkdir()
    (outside / "precious.mp4").write_bytes(b"keep me")
    return root, outside


def test_deletes_a_segment_file(site):
    root, _ = site
    assert remove(root, "2026-06-01/12/cam1/00.00.mp4") is Outcome.deleted
    assert not (root / "2026-06-01" / "12" / "cam1" / "00.00.mp4").exists()
    assert (root / "2026-06-01" / "12" / "cam1").is_dir()  # directories are the recorder's


def test_a_file_already_gone_has_vanished(site):
    root, _ = site
    assert remove(root, "2026-06-01/12/cam1/59.50.mp4") is Outcome.vanished
    assert remove(root, "2031-01-01/00/cam9/00.00.mp4") is Outcome.vanished


def test_a_symlink_file_pointing_outside_is_refused_and_its_target_kept(site):
    root, outside = site
    link = root / "2026-06-01" / "12" / "cam1" / "01.00.mp4"
    link.symlink_to(outside / "precious.mp4")
    assert remove(root, "2026-06-01/12/cam1/01.00.mp4") is Outcome.refused
    assert (outside / "precious.mp4").read_bytes() == b"keep me"
    assert link.is_symlink()


def test_a_symlink_pointing_inside_the_root_is_refused_too(site):
    root, _ = site
    link = root / "2026-06-01" / "12" / "cam1" / "02.00.mp4"
    link.symlink_to(root / "2026-06-01" / "12" / "cam1" / "00.00.mp4")
    assert remove(root, "2026-06-01/12/cam1/02.00.mp4") is Outcome.refused
    assert link.is_symlink() and (root / "2026-06-01" / "12" / "cam1" / "00.00.mp4").exists()


def test_a_symlinked_directory_inside_the_root_is_never_followed(site):
    root, outside = site
    (root / "2026-06-02").symlink_to(outside, target_is_directory=True)
    assert remove(root, "2026-06-02/precious.mp4") is Outcome.refused
    (root / "2026-06-01" / "13").symlink_to(outside, target_is_directory=True)
    assert remove(root, "2026-06-01/13/precious.mp4") is Outcome.refused
    assert (outside / "precious.mp4").read_bytes() == b"keep me"


@pytest.mark.parametrize(
    "relpath",
    [
        "../outside/precious.mp4",
        "2026-06-01/../../outside/precious.mp4",
        "2026-06-01/12/cam1/../../../../outside/precious.mp4",
        "..",
        "",
        ".",
        "/",
        "ABSOLUTE",  # replaced by the absolute path of the outside file below
        "2026-06-01/12/cam1",  # a directory is not a segment
        "2026-06-01/12/cam1/00.00.mp4\0.txt",
    ],
)
def test_paths_that_leave_the_root_or_name_no_file_are_refused(site, relpath):
    root, outside = site
    if relpath == "ABSOLUTE":
        relpath = str(outside / "precious.mp4")
    assert remove(root, relpath) is Outcome.refused
    assert (outside / "precious.mp4").read_bytes() == b"keep me"
    assert (root / "2026-06-01" / "12" / "cam1" / "00.00.mp4").exists()


def test_a_file_in_the_path_is_refused_not_vanished(site):
    root, _ = site
    assert remove(root, "2026-06-01/12/cam1/00.00.mp4/x") is Outcome.refused


def test_an_unlink_that_fails_is_an_error_logged_with_the_relative_path(site, monkeypatch, caplog):
    root, _ = site

    # Running as root, chmod cannot make unlink fail and no read-only bind mount is available,
    # so this one test replaces os.unlink: the only mock of a fault we cannot cause for real.
    def refuse(path, *, dir_fd=None):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(camera_files.os, "unlink", refuse)
    with caplog.at_level(logging.WARNING, logger="facility.camera_files"):
        assert remove(root, "2026-06-01/12/cam1/00.00.mp4") is Outcome.error
    # repr: a file name with a newline in it cannot forge a log line.
    assert "'2026-06-01/12/cam1/00.00.mp4': Permission denied" in caplog.text
    assert str(root) not in caplog.text
    monkeypatch.undo()
    assert (root / "2026-06-01" / "12" / "cam1" / "00.00.mp4").exists()


def test_a_missing_root_is_an_error_not_vanished(tmp_path):
    assert remove(tmp_path / "not-mounted", "a/b.mp4") is Outcome.error


def test_the_root_may_itself_be_a_symlink(site, tmp_path):
    root, _ = site
    (tmp_path / "link-to-root").symlink_to(root, target_is_directory=True)
    assert remove(tmp_path / "link-to-root", "2026-06-01/12/cam1/00.00.mp4") is Outcome.deleted


def test_root_state_refuses_missing_not_a_directory_and_empty(tmp_path):
    assert "does not exist" in root_state(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    assert "not a directory" in root_state(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    assert "empty" in root_state(tmp_path / "empty")
    (tmp_path / "empty" / "2026-06-01").mkdir()
    assert root_state(tmp_path / "empty") is None


# The property test: relpaths drawn from a small vocabulary, under a root whose entries include
# symlinks to a file and a directory outside it, never touch anything outside the root.
_NAMES = ["a", "b", "f.mp4", "link-file", "link-dir", "link-up", "..", ".", "", "outside"]


def _build(base: Path) -> tuple[Path, Path]:
    root, outside = base / "root", base / "outside"
    for directory in (root / "a" / "b", outside / "a" / "b"):
        directory.mkdir(parents=True)
    for directory in (
        root,
        root / "a",
        root / "a" / "b",
        outside,
        outside / "a",
        outside / "a" / "b",
    ):
        (directory / "f.mp4").write_bytes(b"x")
    (root / "a" / "link-file").symlink_to(outside / "f.mp4")
    (root / "link-dir").symlink_to(outside, target_is_directory=True)
    (root / "a" / "b" / "link-up").symlink_to(base, target_is_directory=True)
    return root, outside


def _tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.sampled_from(_NAMES), min_size=0, max_size=6), absolute=st.booleans())
def test_random_relpaths_never_delete_outside_the_root(parts, absolute):
    with tempfile.TemporaryDirectory() as base_dir:
        base = Path(base_dir)
        root, outside = _build(base)
        before_outside, before_root = _tree(outside), _tree(root)
        relpath = ("/" if absolute else "") + "/".join(parts)
        outcome = remove(root, relpath)
        assert _tree(outside) == before_outside
        assert all((p / "f.mp4").read_bytes() == b"x" for p in (outside, outside / "a"))
        gone = before_root - _tree(root)
        if outcome is Outcome.deleted:
            # Exactly one regular file, reached through real directories inside the root.
            (deleted,) = gone
            assert not any(os.path.islink(root / p) for p in Path(deleted).parents)
            assert ".." not in Path(relpath).parts and not absolute
        else:
            assert gone == set()
