"""Error messages, refused points and file output of the writers, without an engine."""

from __future__ import annotations

import errno
import json
import os

import pytest

from target_influxdb.rejections import (
    Conflict,
    Refusal,
    delete_command,
    dropped_count,
    measurement_of,
    parse_conflict,
    rename_map,
    shard_weeks,
    shorten,
    week_ranges,
    without_quoted_lines,
)
from target_influxdb.writers import (
    FileWriter,
    InfluxDBWriter,
    RejectedFile,
    RejectedPointsError,
    WriteError,
    redact,
)

CONFLICT_MESSAGE = (
    "failure writing points to database: partial write: field type conflict: input field "
    '"cv" on measurement "gas_quality" is type integer, already exists as type float dropped=2'
)


def test_a_type_conflict_is_read_from_influxdbs_message():
    assert parse_conflict(CONFLICT_MESSAGE) == Conflict("gas_quality", "cv", "float", "integer")
    assert dropped_count(CONFLICT_MESSAGE) == 2
    escaped = (
        'partial write: field type conflict: input field "a \\"b\\"" on measurement '
        '"gas quality" is type string, already exists as type boolean dropped=1'
    )
    assert parse_conflict(escaped) == Conflict("gas quality", 'a "b"', "boolean", "string")
    assert parse_conflict("unable to parse 'x': missing fields") is None
    assert dropped_count("unable to parse 'x': missing fields") is None


@pytest.mark.parametrize(
    ("line", "measurement"),
    [
        ("gas_quality,site_id=1 cv=1.0", "gas_quality"),
        ("gas\\ quality cv=1.0", "gas quality"),
        ("a\\,b,t=1 v=1i", "a,b"),
        ("m v=1", "m"),
    ],
)
def test_the_measurement_of_a_line_is_unescaped(line, measurement):
    assert measurement_of(line) == measurement


def test_a_long_text_is_cut_in_the_middle_to_a_few_hundred_characters():
    line = "gas_quality,site_id=" + "x" * 1_000_000 + " cv=1.0 1767225600000000000"
    short = shorten(line)
    assert len(short) < 400
    assert short.startswith("gas_quality,site_id=xxx")
    assert short.endswith(" cv=1.0 1767225600000000000")
    assert "characters left out" in short
    assert shorten("a\nb") == "a b"
    assert shorten("short") == "short"


def test_the_delete_range_is_the_whole_monday_to_monday_week_of_each_point():
    thursday = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
    sunday_last = (1_767_571_200 - 1) * 10**9  # 2026-01-04T23:59:59Z
    monday = 1_767_571_200 * 10**9  # 2026-01-05T00:00:00Z
    assert shard_weeks([thursday]) == shard_weeks([sunday_last])
    assert shard_weeks([monday]) == {next(iter(shard_weeks([thursday]))) + 1}
    (week,) = shard_weeks([thursday])
    assert delete_command("nationalgas", "my org", "gas_quality", week, week) == (
        "influx delete --bucket nationalgas --org 'my org' --start 2025-12-29T00:00:00Z "
        "--stop 2026-01-04T23:59:59.999999999Z --predicate '_measurement=\"gas_quality\"'"
    )
    assert delete_command("b", "o", "it's", week, week + 1).endswith(
        "--stop 2026-01-11T23:59:59.999999999Z --predicate '_measurement=\"it'\"'\"'s\"'"
    )
    assert week_ranges({5, 1, 2, 3, 7, 8}) == [(1, 3), (5, 5), (7, 8)]


def test_the_rename_map_writes_the_field_under_a_new_name():
    conflict = Conflict("gas_quality", "cv", "integer", "float")
    assert json.loads(rename_map("gas_quality", conflict)) == {
        "gas_quality": {"cv_float": "cv", "cv": "__NULL__"}
    }


def _writer() -> InfluxDBWriter:
    return InfluxDBWriter(url="http://127.0.0.1:9", token="t", org="o", bucket="b")  # noqa: S106


def _refused(points, status=422, message=CONFLICT_MESSAGE):
    return Refusal.of(status, message, points)


def test_refused_points_are_found_by_writing_halves_again(monkeypatch):
    # InfluxDB 2.x answers 400 and stores nothing when one line of a batch cannot be parsed:
    # the halves are written again until each bad line stands alone.
    writer = _writer()
    points = [
        (f"m,k={i} v={'bad' if i in {5, 6, 40} else '1.0'}", 1_000_000_000 + i * 1000)
        for i in range(64)
    ]
    stored, sent = [], []

    def send(stream, group, precision):
        sent.append(len(group))
        if any("bad" in line for line, _ in group):
            return _refused(group, 400, "unable to parse 'm,k=5 v=bad': invalid field format")
        stored.extend(group)
        return None

    monkeypatch.setattr(writer, "_send", send)
    with pytest.raises(RejectedPointsError) as caught:
        writer.write("s", points)
    rejected = caught.value
    assert [p for r in rejected.refusals for p in r.points] == [points[5], points[6], points[40]]
    assert (rejected.rejected, rejected.written) == (3, 61)
    assert sorted(stored) == sorted(set(points) - {points[5], points[6], points[40]})
    assert rejected.newest_written_ns == 1_000_063_000
    assert len(sent) <= 3 * 2 * 6 + 1  # at most two writes per level for each bad line
    assert 'InfluxDB rejected 3 of 64 points of stream "s" as invalid (400 unable to parse' in str(
        rejected
    )
    assert "first rejected line: m,k=5 v=bad 1000005000" in str(rejected)
    assert "set `rejected_points_path`" in str(rejected)


def test_a_group_influxdb_counts_as_all_dropped_is_not_split(monkeypatch):
    writer = _writer()
    points = [
        (f"gas_quality,site_id={i} cv=1.0", 1_767_225_600_000_000_000 + i * 1000) for i in range(2)
    ]
    monkeypatch.setattr(writer, "_send", lambda *_: pytest.fail("no write again"))
    refusals = writer._sort_out("gas_quality", _refused(points), "us", [])
    assert [r.points for r in refusals] == [points]


def test_the_refused_points_file_gets_whole_lines_and_says_how_to_load_them(tmp_path):
    points = [
        (f"gas_quality,site_id={i} cv=40.5", 1_767_225_600_000_000_000 + i * 1000) for i in range(2)
    ]
    stored = [  # without cv: stored, in the conflict's week and in the next
        ("gas_quality,site_id=2 n2=1.0", 1_767_225_600_000_000_000),
        ("gas_quality,site_id=3 n2=1.0", 1_767_571_200_000_000_000),
    ]
    rejected = RejectedPointsError(
        "gas_quality", _refused(points), [_refused(points)], stored, bucket="nationalgas", org="o"
    )
    file = RejectedFile(tmp_path / "sub" / "rejected.lp")
    file.append("gas_quality", rejected)
    file.append("gas_quality", rejected)
    assert file.path.read_text() == 2 * (
        "gas_quality,site_id=0 cv=40.5 1767225600000000000\n"
        "gas_quality,site_id=1 cv=40.5 1767225600000001000\n"
    )
    summary = file.summary("nationalgas", "o")
    assert summary is not None
    assert summary.startswith(f"4 points InfluxDB refused as invalid were set aside in {file.path}")
    assert 'field "cv" of measurement "gas_quality" is stored as float and was sent as integer' in (
        summary
    )
    assert (
        "first influx delete --bucket nationalgas --org o --start 2025-12-29T00:00:00Z --stop "
        "2026-01-04T23:59:59.999999999Z --predicate '_measurement=\"gas_quality\"'"
    ) in summary
    assert (
        f"then influx write --bucket nationalgas --org o --file {file.path} --file "
        f"{file.path}.stored"
    ) in summary
    assert "2 points this run stored in the weeks of a conflict" in summary
    # what a delete of the week removes besides: kept, from the batch and from a later one
    file.keep_stored("gas_quality", [("gas_quality,site_id=4 n2=1.0", 1_767_225_601_000_000_000)])
    file.keep_stored("other", [("other v=1.0", 1_767_225_601_000_000_000)])
    assert (tmp_path / "sub" / "rejected.lp.stored").read_text() == (
        "gas_quality,site_id=2 n2=1.0 1767225600000000000\n"
        "gas_quality,site_id=2 n2=1.0 1767225600000000000\n"
        "gas_quality,site_id=4 n2=1.0 1767225601000000000\n"
    )
    assert RejectedFile(tmp_path / "other.lp").summary("b", "o") is None


def test_file_writer_appends_nanosecond_lines_per_stream(tmp_path):
    writer = FileWriter(tmp_path / "out")
    writer.write("a:b/c", [("m v=1.0", 1_700_000_000_000_001_000)])
    writer.write("a:b/c", [("m v=2.0", 1_700_000_000_000_002_001)])
    path = tmp_path / "out" / "a_b_c.lp"
    assert path.read_text() == "m v=1.0 1700000000000001000\nm v=2.0 1700000000000002001\n"


def test_file_writer_cuts_an_unfinished_last_line_before_appending(tmp_path, caplog):
    writer = FileWriter(tmp_path)
    path = writer.path_for("s")
    path.write_bytes(b"m v=1.0 1\nm,t=na")  # a run killed mid-append
    writer.write("s", [("m v=2.0", 2)])
    assert path.read_bytes() == b"m v=1.0 1\nm v=2.0 2\n"
    assert "ended in an unfinished line" in caplog.text
    assert "cut 6 bytes" in caplog.text


def test_file_writer_cuts_a_file_of_one_unfinished_line_to_nothing(tmp_path):
    writer = FileWriter(tmp_path)
    path = writer.path_for("s")
    path.write_bytes(b"m,t=x" * 30_000)
    writer.write("s", [("m v=2.0", 2)])
    assert path.read_bytes() == b"m v=2.0 2\n"


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
    assert writer.path_for("s").read_bytes() == b"m v=1.0 1\n"


@pytest.mark.parametrize(
    ("text", "token", "expected"),
    [
        ("bucket in org a: invalid", "in", "bucket in org a: invalid"),
        ("echo: Authorization: Token in, a", "in", "echo: Authorization: Token ***, a"),
        ("Bearer a; Token ab", "a", "Bearer ***; Token ab"),
        ("k=0123456789abcdef0123==.", "0123456789abcdef0123==", "k=***."),
        ("no token", "", "no token"),
        ("Authorization: Token abc.", "abc", "Authorization: Token ***."),
        ("Token: abc", "abc", "Token: ***"),
        ("url?token=abc&x=1", "abc", "url?token=***&x=1"),
        ("Token abcd, Token abc.def", "abc", "Token abcd, Token abc.def"),
    ],
)
def test_redaction_takes_out_a_credential_and_nothing_else(text, token, expected):
    assert redact(text, token) == expected


def test_a_line_influxdb_quotes_is_left_to_the_target_to_quote_once():
    message = "partial write: unable to parse 'm,t=a' b c=1 17': max key length exceeded dropped=1"
    assert without_quoted_lines(message) == (
        "partial write: unable to parse the rejected line: max key length exceeded dropped=1"
    )
    refusal = Refusal.of(422, "unable to parse 'm,t=" + "x" * 10_000 + " c=1 1': bad", [])
    assert refusal.message == "unable to parse the rejected line: bad"
