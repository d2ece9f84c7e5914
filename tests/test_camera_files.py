"""Removing segment files (invariant 6), with real files and real symlinks under a temporary root."""

from __future__ import annotations

import errno
import logging
import os
import tempfile
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facility.retention import camera_files
from facility.retention.camera_files import Outcome, remove, root_state


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
    with caplog.at_level(logging.WARNING, logger="facility.retention.camera_files"):
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


# --- the batch remover ---------------------------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _segments(root: Path, directories: list[str], names: list[str]) -> list[str]:
    """Create each name in each directory; the relative paths, interleaved as the purge goes."""
    for directory in directories:
        (root / directory).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / directory / name).write_bytes(b"segment")
    return [f"{directory}/{name}" for name in names for directory in directories]


def test_a_batch_over_shared_directories_deletes_each_file_once(tmp_path):
    root = tmp_path / "recordings"
    dirs = ["2026-06-01/12/cam1", "2026-06-01/12/cam2", "2026-06-01/13/cam1"]
    paths = _segments(root, dirs, ["00.00.mp4", "00.10.mp4", "00.20.mp4", "00.30.mp4"])
    with camera_files.Remover(root) as remover:
        assert [remover.remove(p) for p in paths] == [Outcome.deleted] * len(paths)
        assert remover.remove(paths[-1]) is Outcome.vanished  # listed, then gone
        assert remover.remove("2026-06-01/12/cam1/59.50.mp4") is Outcome.vanished  # never there
        assert remover.remove("2026-06-01/14/cam1/00.00.mp4") is Outcome.vanished
    assert [p for p in root.rglob("*") if p.is_file()] == []
    assert all((root / d).is_dir() for d in dirs)


@pytest.mark.parametrize(
    ("relpath", "outcome"),
    [
        ("2026-06-01/12/cam1/..", Outcome.refused),
        ("2026-06-01/12/cam1/../cam1/00.20.mp4", Outcome.refused),
        ("2026-06-01/12/cam1/00.20.mp4\0", Outcome.refused),
        ("/2026-06-01/12/cam1/00.20.mp4", Outcome.refused),
        ("2026-06-01/12/cam1/.", Outcome.refused),  # the directory itself: not a regular file
        ("2026-06-01//12/./cam1/00.20.mp4", Outcome.deleted),  # another spelling of a plain path
        ("2026-06-01/12/cam1/00.20.mp4/", Outcome.deleted),
    ],
)
def test_a_held_directory_does_not_loosen_the_path_checks(site, relpath, outcome):
    root, outside = site
    _segments(root, ["2026-06-01/12/cam1"], ["00.10.mp4", "00.20.mp4"])
    with camera_files.Remover(root) as remover:
        assert remover.remove("2026-06-01/12/cam1/00.00.mp4") is Outcome.deleted
        assert remover.remove("2026-06-01/12/cam1/00.10.mp4") is Outcome.deleted  # now listed
        assert remover.remove(relpath) is outcome
    assert (root / "2026-06-01" / "12" / "cam1" / "00.20.mp4").exists() == (outcome != "deleted")
    assert (outside / "precious.mp4").read_bytes() == b"keep me"


def test_a_directory_swapped_for_a_symlink_mid_batch_never_leads_outside(site):
    root, outside = site
    cam = root / "2026-06-01" / "12" / "cam1"
    _segments(root, ["2026-06-01/12/cam1"], ["00.10.mp4", "00.20.mp4"])
    (outside / "00.20.mp4").write_bytes(b"keep me")
    with camera_files.Remover(root) as remover:
        assert remover.remove("2026-06-01/12/cam1/00.00.mp4") is Outcome.deleted
        assert remover.remove("2026-06-01/12/cam1/00.10.mp4") is Outcome.deleted
        cam.rename(cam.with_name("cam1.old"))
        cam.symlink_to(outside, target_is_directory=True)
        # The batch goes on in the directory it opened (documented), never through the link.
        assert remover.remove("2026-06-01/12/cam1/00.20.mp4") is Outcome.deleted
        assert not (cam.with_name("cam1.old") / "00.20.mp4").exists()
    assert (outside / "00.20.mp4").read_bytes() == b"keep me"
    assert cam.is_symlink()
    with camera_files.Remover(root) as remover:  # a new batch walks again, and refuses
        assert remover.remove("2026-06-01/12/cam1/00.20.mp4") is Outcome.refused
    assert (outside / "00.20.mp4").read_bytes() == b"keep me"


def test_a_listed_file_swapped_for_a_symlink_loses_the_link_not_the_target(site):
    root, outside = site
    cam = root / "2026-06-01" / "12" / "cam1"
    _segments(root, ["2026-06-01/12/cam1"], ["00.10.mp4", "00.20.mp4", "00.30.mp4"])
    with camera_files.Remover(root) as remover:
        assert remover.remove("2026-06-01/12/cam1/00.00.mp4") is Outcome.deleted
        assert remover.remove("2026-06-01/12/cam1/00.10.mp4") is Outcome.deleted  # lists the rest
        (cam / "00.20.mp4").unlink()
        (cam / "00.20.mp4").symlink_to(outside / "precious.mp4")
        (cam / "00.30.mp4").unlink()
        (cam / "00.30.mp4").mkdir()
        assert remover.remove("2026-06-01/12/cam1/00.20.mp4") is Outcome.deleted
        assert remover.remove("2026-06-01/12/cam1/00.30.mp4") is Outcome.error
    assert (outside / "precious.mp4").read_bytes() == b"keep me"
    assert not (cam / "00.20.mp4").is_symlink()
    assert (cam / "00.30.mp4").is_dir()


def test_a_symlink_present_when_listed_is_refused_in_a_batch(site):
    root, outside = site
    cam = root / "2026-06-01" / "12" / "cam1"
    _segments(root, ["2026-06-01/12/cam1"], ["00.10.mp4"])
    (cam / "00.20.mp4").symlink_to(outside / "precious.mp4")
    os.mkfifo(cam / "00.30.mp4")
    with camera_files.Remover(root) as remover:
        assert remover.remove("2026-06-01/12/cam1/00.00.mp4") is Outcome.deleted
        assert remover.remove("2026-06-01/12/cam1/00.10.mp4") is Outcome.deleted
        assert remover.remove("2026-06-01/12/cam1/00.20.mp4") is Outcome.refused
        assert remover.remove("2026-06-01/12/cam1/00.30.mp4") is Outcome.refused
        (cam / "00.10.mp4").symlink_to(outside / "precious.mp4")  # after its listed file went
        assert remover.remove("2026-06-01/12/cam1/00.10.mp4") is Outcome.refused
    assert (cam / "00.20.mp4").is_symlink() and (cam / "00.30.mp4").exists()
    assert (outside / "precious.mp4").read_bytes() == b"keep me"


def test_a_directory_too_large_to_list_is_still_emptied_file_by_file(tmp_path, monkeypatch):
    monkeypatch.setattr(camera_files, "_MAX_LISTED", 2)
    root = tmp_path / "recordings"
    paths = _segments(root, ["d/cam1"], [f"{k:02d}.mp4" for k in range(6)])
    with camera_files.Remover(root) as remover:
        assert [remover.remove(p) for p in paths] == [Outcome.deleted] * 6
    assert list((root / "d" / "cam1").iterdir()) == []


def test_open_directories_are_bounded_and_all_closed_on_exit(tmp_path, monkeypatch):
    monkeypatch.setattr(camera_files, "_MAX_OPEN_DIRS", 3)
    root = tmp_path / "recordings"
    paths = _segments(root, [f"d/cam{c}" for c in range(8)], ["00.mp4", "10.mp4", "20.mp4"])
    before = _open_fds()
    most = before
    with camera_files.Remover(root) as remover:
        for path in paths:  # eight directories in turn: each is walked to again
            assert remover.remove(path) is Outcome.deleted
            most = max(most, _open_fds())
    assert most == before + 3 + 1  # three directories and the root
    assert _open_fds() == before
    assert [p for p in root.rglob("*") if p.is_file()] == []


def test_a_remover_reports_a_missing_root_per_file_and_holds_nothing(tmp_path):
    before = _open_fds()
    with camera_files.Remover(tmp_path / "not-mounted") as remover:
        assert remover.remove("a/b.mp4") is Outcome.error
        assert remover.remove("a/c.mp4") is Outcome.error
    assert _open_fds() == before


@settings(max_examples=200, deadline=None)
@given(paths=st.lists(st.lists(st.sampled_from(_NAMES), max_size=5), min_size=1, max_size=8))
def test_a_batch_of_random_relpaths_never_deletes_outside_the_root(paths):
    with tempfile.TemporaryDirectory() as base_dir:
        base = Path(base_dir)
        root, outside = _build(base)
        before_outside, before_root = _tree(outside), _tree(root)
        relpaths = ["/".join(parts) for parts in paths]
        with camera_files.Remover(root) as remover:
            outcomes = [remover.remove(relpath) for relpath in relpaths]
        assert _tree(outside) == before_outside
        assert all((p / "f.mp4").read_bytes() == b"x" for p in (outside, outside / "a"))
        gone = before_root - _tree(root)
        assert len(gone) == outcomes.count(Outcome.deleted)
        assert all(Path(p).name == "f.mp4" for p in gone)
        assert not any(os.path.islink(root / q) for p in gone for q in Path(p).parents)


@given(st.lists(st.sampled_from(["a", "b.mp4", ".", "..", "", "\0"]), max_size=5))
def test_safe_parts_keeps_what_purepath_keeps(parts):
    relpath = "/".join(parts)
    kept = list(PurePosixPath(relpath).parts)
    plain = relpath and "\0" not in relpath and not relpath.startswith("/")
    expected = kept if plain and kept and ".." not in kept else None
    assert camera_files._safe_parts(relpath) == expected


# --- removing the directories a batch emptied ----------------------------------------------------


def _delete_and_prune(root: Path, paths: list[str], before_prune=None) -> int:
    with camera_files.Remover(root) as remover:
        for path in paths:
            assert remover.remove(path) in (Outcome.deleted, Outcome.vanished), path
        if before_prune is not None:
            before_prune()
        return remover.prune()


def test_emptied_directories_go_up_to_but_never_the_root(tmp_path):
    root = tmp_path / "recordings"
    paths = _segments(
        root,
        ["2026-06-01/12/cam1", "2026-06-01/12/cam2", "2026-06-01/13/cam1"],
        ["00.00.mp4", "00.10.mp4"],
    )
    assert _delete_and_prune(root, paths) == 6  # three camera dirs, two hours, one day
    assert root.is_dir() and list(root.iterdir()) == []  # the root stays, even empty


def test_a_directory_that_still_holds_anything_stays_with_its_parents(tmp_path):
    root = tmp_path / "recordings"
    dirs = ["d/12/cam1", "d/12/cam2", "d/13/cam1", "d/14/cam1", "e/15/cam1"]
    paths = _segments(root, dirs, ["00.00.mp4"])
    (root / "d/12/cam1/00.10.mp4").write_bytes(b"held segment")  # not in this batch
    (root / "d/13/cam1/.partial").write_bytes(b"")  # a hidden file is something too
    (root / "d/14/cam1/sub").mkdir()  # so is an empty subdirectory
    assert _delete_and_prune(root, paths) == 4  # d/12/cam2, and e/15/cam1, e/15, e
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == [
        "d",
        "d/12",
        "d/12/cam1",
        "d/12/cam1/00.10.mp4",
        "d/13",
        "d/13/cam1",
        "d/13/cam1/.partial",
        "d/14",
        "d/14/cam1",
        "d/14/cam1/sub",
    ]


def test_a_directory_the_batch_did_not_touch_stays_even_when_empty(tmp_path):
    root = tmp_path / "recordings"
    paths = _segments(root, ["d/12/cam1"], ["00.00.mp4"])
    (root / "d/11/cam1").mkdir(parents=True)  # empty, but the recorder's business
    assert _delete_and_prune(root, paths) == 2  # d/12/cam1, d/12; d keeps d/11
    assert (root / "d/11/cam1").is_dir() and not (root / "d/12").exists()


def test_pruning_never_follows_or_removes_through_a_symlink(tmp_path):
    root, outside = tmp_path / "recordings", tmp_path / "outside"
    (outside / "empty").mkdir(parents=True)
    (outside / "d" / "12").mkdir(parents=True)
    paths = _segments(root, ["d/12/cam1", "x/12/cam1"], ["00.00.mp4"])
    (root / "d/12/link").symlink_to(outside / "empty", target_is_directory=True)

    def swap() -> None:
        # Between the last unlink and the prune, x/12 is swapped for a link to a look-alike
        # directory outside (holding an empty cam1): neither it nor the link may go.
        (outside / "d" / "12" / "cam1").mkdir()
        (root / "x/12").rename(root / "x/12.old")
        (root / "x/12").symlink_to(outside / "d" / "12", target_is_directory=True)

    removed = _delete_and_prune(root, paths, before_prune=swap)
    assert removed == 1  # d/12/cam1 only: d/12 holds the link
    assert (root / "d/12/link").is_symlink() and (outside / "empty").is_dir()
    assert (root / "x/12").is_symlink() and (outside / "d" / "12" / "cam1").is_dir()
    assert (root / "x/12.old/cam1").is_dir()  # emptied, but moved away: not removed by name


def test_a_directory_replaced_by_another_empty_one_is_left_alone(tmp_path):
    root = tmp_path / "recordings"
    paths = _segments(root, ["d/12/cam1"], ["00.00.mp4"])

    def replace() -> None:
        (root / "d/12/cam1").rmdir()
        (root / "d/12/cam1").mkdir()  # the recorder made a new one meanwhile

    assert _delete_and_prune(root, paths, before_prune=replace) == 0
    assert (root / "d/12/cam1").is_dir()


def test_the_root_may_be_a_symlink_and_stays_with_its_target(tmp_path):
    real = tmp_path / "disk" / "recordings"
    paths = _segments(real, ["d/12/cam1"], ["00.00.mp4"])
    root = tmp_path / "recordings"
    root.symlink_to(real, target_is_directory=True)
    assert _delete_and_prune(root, paths) == 3
    assert root.is_symlink() and real.is_dir() and list(real.iterdir()) == []


def test_directories_of_files_found_already_gone_are_pruned_too(tmp_path):
    # A crash after the unlinks and before the prune: the next run finds the files vanished.
    root = tmp_path / "recordings"
    paths = _segments(root, ["d/12/cam1"], ["00.00.mp4", "00.10.mp4"])
    for path in paths:
        (root / path).unlink()
    assert _delete_and_prune(root, paths) == 3
    assert list(root.iterdir()) == []
