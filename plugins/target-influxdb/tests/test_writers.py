"""Error messages and file output of the writers, without an engine."""

from __future__ import annotations

import errno
import os

import pytest

from target_influxdb.writers import FileWriter, WriteError, _first_rejected_line

BODY = (
    "gas_quality,site_id=1 cv=39.5 1700000000\n"
    'gas\\ quality,site_id=2 cv=39.1,note="x" 1700000000\n'
    "gas_quality,site_id=3 n2=1.0,cv=40.1 1700000000"
)


def test_a_parse_error_names_the_line_influxdb_quoted():
    message = "unable to parse 'gas_quality,site_id=9 cv=': missing field value"
    assert _first_rejected_line(message, BODY) == "gas_quality,site_id=9 cv="


def test_a_type_conflict_names_the_first_line_with_that_field():
    message = (
        "failure writing points to database: partial write: field type conflict: input field "
        '"cv" on measurement "gas_quality" is type float, already exists as type string dropped=2'
    )
    assert _first_rejected_line(message, BODY) == "gas_quality,site_id=1 cv=39.5 1700000000"


def test_a_field_that_is_not_first_on_its_line_is_found():
    message = (
        'partial write: field type conflict: input field "cv" on measurement "x" is type float'
    )
    body = "x,a=1 n2=1.0,cv=2.0 1\n"
    assert _first_rejected_line(message, body) == "x,a=1 n2=1.0,cv=2.0 1"


@pytest.mark.parametrize(
    "line",
    [
        "x,site=ST\\ FERGUS cv=2.0 1",
        "x,site=a\\,b\\ c,area=N\\ E n2=1.0,cv=2.0 1",
        "x,site=back\\\\ cv=2.0 1",
    ],
)
def test_a_conflict_on_a_line_with_escaped_spaces_in_tags_is_found(line):
    message = 'partial write: field type conflict: input field "cv" on measurement "x" is type'
    body = f"y,a=1 cv=1.0 1\n{line}\n"
    assert _first_rejected_line(message, body) == line


def test_an_unknown_rejection_says_so():
    assert _first_rejected_line("points beyond retention policy dropped=1", BODY) == (
        "(not identified in the batch)"
    )


def test_file_writer_appends_nanosecond_lines_per_stream(tmp_path):
    writer = FileWriter(tmp_path / "out")
    writer.write("a:b/c", [("m v=1.0", 1_700_000_000_000_001)])
    writer.write("a:b/c", [("m v=2.0", 1_700_000_000_000_002)])
    path = tmp_path / "out" / "a_b_c.lp"
    assert path.read_text() == "m v=1.0 1700000000000001000\nm v=2.0 1700000000000002000\n"


def test_file_writer_cuts_an_unfinished_last_line_before_appending(tmp_path, caplog):
    writer = FileWriter(tmp_path)
    path = writer.path_for("s")
    path.write_bytes(b"m v=1.0 1\nm,t=na")  # a run killed mid-append
    writer.write("s", [("m v=2.0", 2)])
    assert path.read_bytes() == b"m v=1.0 1\nm v=2.0 2000\n"
    assert "ended in an unfinished line" in caplog.text
    assert "cut 6 bytes" in caplog.text


def test_file_writer_cuts_a_file_of_one_unfinished_line_to_nothing(tmp_path):
    writer = FileWriter(tmp_path)
    path = writer.path_for("s")
    path.write_bytes(b"m,t=x" * 30_000)
    writer.write("s", [("m v=2.0", 2)])
    assert path.read_bytes() == b"m v=2.0 2000\n"


def test_a_failed_append_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    writer = FileWriter(tmp_path)
    writer.write("s", [("m v=1.0", 1)])
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[:7]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(WriteError, match=r"could not append 2 points of stream \"s\" .*No space"):
        writer.write("s", [("m v=2.0", 2), ("m v=3.0", 3)])
    monkeypatch.undo()
    assert writer.path_for("s").read_bytes() == b"m v=1.0 1000\n"
