"""``until=``/``since=`` values read as Docker's daemon reads them (gantry.timeutil).

The vectors are moby's ``daemon/internal/timestamp`` cases (reference time
2020-01-02T03:04:05.123456789Z), checked in a UTC zone, plus what differs in a
zone with an offset: a value without a zone takes the *current* offset.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gantry import timeutil
from gantry.errors import UsageError
from gantry.store import Store, filters

NOW = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp() + 0.123456789


def _utc(text: str) -> float:
    head, dot, frac = text.rstrip("Z").partition(".")
    base = datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp()
    return base + (int(frac.ljust(9, "0")) / 1e9 if dot else 0.0)


@pytest.fixture
def zone(request: pytest.FixtureRequest) -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = getattr(request, "param", "UTC0")
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("2006-01-02T15:04:05.999999999+07:00", "2006-01-02T08:04:05.999999999Z"),
        ("2006-01-02T15:04:05.999999999Z", "2006-01-02T15:04:05.999999999Z"),
        ("2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05.999999999Z"),
        ("2006-01-02T15:04:05Z", "2006-01-02T15:04:05Z"),
        ("2006-01-02T15:04:05", "2006-01-02T15:04:05Z"),
        ("2006-01-02T15:04Z", "2006-01-02T15:04:00Z"),
        ("2006-01-02T15:04+00:00", "2006-01-02T15:04:00Z"),
        ("2006-01-02T15:04-00:00", "2006-01-02T15:04:00Z"),
        ("2006-01-02T15:04", "2006-01-02T15:04:00Z"),
        ("2006-01-02T15Z", "2006-01-02T15:00:00Z"),
        ("2006-01-02T15+00:00", "2006-01-02T15:00:00Z"),
        ("2006-01-02T15-00:00", "2006-01-02T15:00:00Z"),
        ("2006-01-02T15", "2006-01-02T15:00:00Z"),
        ("2006-01-02T1Z", "2006-01-02T01:00:00Z"),
        ("2006-01-02T1", "2006-01-02T01:00:00Z"),
        ("2006-01-02+00:00", "2006-01-02T00:00:00Z"),
        ("2006-01-02-00:00", "2006-01-02T00:00:00Z"),
        ("2006-01-02-00:01", "2006-01-02T00:01:00Z"),
        ("2006-01-02Z", "2006-01-02T00:00:00Z"),
        ("2006-01-02", "2006-01-02T00:00:00Z"),
        ("2015-05-13T20:39:09Z", "2015-05-13T20:39:09Z"),
        ("2015-05-13T20:39:09.5+02:00", "2015-05-13T18:39:09.5Z"),
        ("2015-05-13T20:39:09,25Z", "2015-05-13T20:39:09.25Z"),  # Go reads a comma too
        ("1136073600", "2006-01-01T00:00:00Z"),
        ("1136073600.000000001", "2006-01-01T00:00:00.000000001Z"),
        ("1136073600.1", "2006-01-01T00:00:00.1Z"),
        ("1136073600.0000000009", "2006-01-01T00:00:00Z"),  # cut to nanoseconds
        ("0", "1970-01-01T00:00:00Z"),  # "0" is a Unix time, not a duration
        ("1m", "2020-01-02T03:03:05.123456789Z"),
        ("1.5h", "2020-01-02T01:34:05.123456789Z"),
        ("1h30m", "2020-01-02T01:34:05.123456789Z"),
        ("-1h", "2020-01-02T04:04:05.123456789Z"),
        ("24h", "2020-01-01T03:04:05.123456789Z"),
    ],
)
def test_moby_vectors(zone: None, value: str, want: str) -> None:
    assert timeutil.parse_timestamp(value, NOW) == pytest.approx(_utc(want), abs=1e-6)
    assert filters.parse_timestamp(value, NOW) == pytest.approx(_utc(want), abs=1e-6)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "failed to parse value as time or duration: value is empty"),
        (" \t", "failed to parse value as time or duration: value is empty"),
        (
            " 1136073600 \t",
            'failed to parse value as time or duration: invalid seconds " 1136073600 \\t": '
            "invalid syntax",
        ),
        (
            "foo.bar",
            'failed to parse value as time or duration: invalid seconds "foo": invalid syntax',
        ),
        (
            "1136073600.bar",
            "failed to parse value as time or duration: invalid nanoseconds: "
            "invalid character 'b' at position 0",
        ),
        (
            "invalid",
            'failed to parse value as time or duration: invalid seconds "invalid": invalid syntax',
        ),
        (
            "2006-01-02T15:04:0Z",
            'parsing time "2006-01-02T15:04:0Z" as "2006-01-02T15:04:05Z07:00": '
            'cannot parse "0Z" as "05"',
        ),
        (
            "2006-01-02T15:04:0",
            'parsing time "2006-01-02T15:04:0" as "2006-01-02T15:04:05": cannot parse "0" as "05"',
        ),
        (
            "2006-01-02T15:0Z",
            'parsing time "2006-01-02T15:0Z" as "2006-01-02T15:04Z07:00": cannot parse "0Z" as "04"',
        ),
        (
            "2006-01-02T15:0",
            'parsing time "2006-01-02T15:0" as "2006-01-02T15:04": cannot parse "0" as "04"',
        ),
        (
            "2006-01-02TZ",
            'parsing time "2006-01-02TZ" as "2006-01-02T15Z07:00": cannot parse "Z" as "15"',
        ),
        ("2006-01-02T", 'parsing time "2006-01-02T" as "2006-01-02T15": cannot parse "" as "15"'),
        ("2023-13-01", 'parsing time "2023-13-01": month out of range'),
        ("2023-02-29", 'parsing time "2023-02-29": day out of range'),
        ("2023-11-14T25:00:00Z", 'parsing time "2023-11-14T25:00:00Z": hour out of range'),
        ("2023-11-14T10:60", 'parsing time "2023-11-14T10:60": minute out of range'),
        ("2023-11-14x", 'parsing time "2023-11-14x": extra text: "x"'),
        (
            "2023-1-14",
            'parsing time "2023-1-14" as "2006-01-02": cannot parse "1-14" as "01"',
        ),
        (
            "2023-11-14T10:00:00+0100",
            # an offset without a colon: Docker counts one colon too many as the zone's
            'parsing time "2023-11-14T10:00:00+0100" as "2006-01-02T15:04Z07:00": '
            'cannot parse ":00+0100" as "Z07:00"',
        ),
        ("1d", 'failed to parse value as time or duration: invalid seconds "1d": invalid syntax'),
    ],
)
def test_errors_carry_go_wording(zone: None, value: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        timeutil.parse_timestamp(value, NOW)
    assert str(info.value) == message


@pytest.mark.parametrize("zone", ["XST-05:30"], indirect=True)
def test_no_zone_means_local_offset(zone: None) -> None:
    assert timeutil.parse_timestamp("2020-01-02T08:34:05", NOW) == pytest.approx(
        _utc("2020-01-02T03:04:05")
    )
    assert timeutil.parse_timestamp("2020-01-02", NOW) == pytest.approx(_utc("2020-01-01T18:30:00"))
    # a zone in the value wins
    assert timeutil.parse_timestamp("2020-01-02T08:34:05Z", NOW) == pytest.approx(
        _utc("2020-01-02T08:34:05")
    )


@pytest.mark.parametrize("zone", ["CET-1CEST,M3.5.0,M10.5.0/3"], indirect=True)
def test_no_zone_takes_the_offset_of_now_not_of_the_date(zone: None) -> None:
    # Docker parses in time.FixedZone(reference.Zone()): January's +01:00 even for a July date
    assert timeutil.parse_timestamp("2020-07-01T12:00:00", NOW) == pytest.approx(
        _utc("2020-07-01T11:00:00")
    )


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("-0", 0),
        ("5s", 5_000_000_000),
        ("1.5h", 5_400_000_000_000),
        (".5m", 30_000_000_000),
        ("1h2m3s4ms5us6ns", 3_723_004_005_006),
        ("12µs", 12_000),
        ("12μs", 12_000),
        ("-2m3.4s", -123_400_000_000),
        ("9223372036854775807ns", 9_223_372_036_854_775_807),
        ("-9223372036854775808ns", -9_223_372_036_854_775_808),
        ("0.100000000000000000000h", 360_000_000_000),
    ],
)
def test_go_durations(text: str, ns: int) -> None:
    assert timeutil.parse_duration_ns(text) == ns
    assert filters.parse_duration(text) == pytest.approx(ns / 1e9)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("3", 'time: missing unit in duration "3"'),
        ("-", 'time: invalid duration "-"'),
        (".s", 'time: invalid duration ".s"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
    ],
)
def test_go_duration_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        timeutil.parse_duration_ns(text)
    assert str(info.value) == message
    assert filters.parse_duration(text) is None


def test_prune_reads_until_as_docker(root: Path) -> None:
    """The store's prune takes every form; a bad one fails with Docker's prefix."""
    with Store(root) as s:
        for value in ("24h", "2006-01-02", "2006-01-02T15:04:05.5Z", "1136073600.25"):
            assert s.prune(filters={"until": [value]}).deleted == ()
        with pytest.raises(UsageError, match="invalid value for 'until' filter: parsing time"):
            s.prune(filters={"until": ["2006-13-01"]})
