"""go-units sizes and durations, Go durations and the daemon's timestamp filters.

Expected values are the ones docker/go-units' own tests assert (size_test.go,
duration_test.go) and docker's documented outputs (``72.9MB`` in ``docker images``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gantry.cli.units import (
    GB,
    KB,
    MB,
    PB,
    TB,
    GiB,
    KiB,
    MiB,
    PiB,
    TiB,
    bytes_size,
    created_since,
    from_human_size,
    go_time_string,
    human_duration,
    human_size,
    human_size_with_precision,
    parse_duration,
    ram_in_bytes,
    rfc3339_nano,
)
from gantry.errors import UsageError
from gantry.timeutil import parse_timestamp


@pytest.mark.parametrize(
    ("size", "want"),
    [
        (1000, "1kB"),
        (1024, "1.024kB"),
        (1_000_000, "1MB"),
        (1_048_576, "1.049MB"),
        (2 * MB, "2MB"),
        (3.42 * GB, "3.42GB"),
        (5.372 * TB, "5.372TB"),
        (2.22 * PB, "2.22PB"),
        (10_000_000_000_000 * PB, "1e+04YB"),
        (0, "0B"),
        (999, "999B"),
    ],
)
def test_human_size(size: float, want: str) -> None:
    assert human_size(size) == want


@pytest.mark.parametrize(
    ("size", "want"),
    [
        (72_940_000, "72.9MB"),  # docker images' SIZE column uses precision 3
        (5_580_000, "5.58MB"),
        (999_900, "1e+03kB"),  # Go's %.3g, as docker prints it
        (512, "512B"),
        (1_234_567_890, "1.23GB"),
        (0, "0B"),
    ],
)
def test_human_size_precision_3(size: float, want: str) -> None:
    assert human_size_with_precision(size, 3) == want


@pytest.mark.parametrize(
    ("size", "want"),
    [
        (1024, "1KiB"),
        (1024 * 1024, "1MiB"),
        (2 * MiB, "2MiB"),
        (3.42 * GiB, "3.42GiB"),
        (5.372 * TiB, "5.372TiB"),
        (2.22 * PiB, "2.22PiB"),
        (KiB**5 * PiB, "1.049e+06YiB"),
    ],
)
def test_bytes_size(size: float, want: str) -> None:
    assert bytes_size(size) == want


@pytest.mark.parametrize(
    ("text", "decimal", "binary"),
    [
        ("32", 32, 32),
        ("32b", 32, 32),
        ("32B", 32, 32),
        ("32k", 32 * KB, 32 * KiB),
        ("32K", 32 * KB, 32 * KiB),
        ("32kb", 32 * KB, 32 * KiB),
        ("32Kb", 32 * KB, 32 * KiB),
        ("32Kib", 32 * KB, 32 * KiB),
        ("32Mb", 32 * MB, 32 * MiB),
        ("32Gb", 32 * GB, 32 * GiB),
        ("32Tb", 32 * TB, 32 * TiB),
        ("32Pb", 32 * PB, 32 * PiB),
        ("32.5kB", 32500, int(32.5 * KiB)),
        ("32.5 kB", 32500, int(32.5 * KiB)),
        ("32.5 B", 32, 32),
        ("0.3 K", 300, int(0.3 * KiB)),
        ("0.3MB", 300_000, int(0.3 * MiB)),
    ],
)
def test_parse_sizes(text: str, decimal: int, binary: int) -> None:
    assert from_human_size(text) == decimal
    assert ram_in_bytes(text) == binary


@pytest.mark.parametrize("text", ["", "hello", "-32", ".3kB", " 32 ", "32m b", "32bm"])
def test_parse_size_errors(text: str) -> None:
    with pytest.raises(UsageError, match="invalid size"):
        from_human_size(text)
    with pytest.raises(UsageError):
        ram_in_bytes(text)


MINUTE, HOUR, DAY = 60, 3600, 86400
WEEK, MONTH, YEAR = 7 * DAY, 30 * DAY, 365 * DAY


@pytest.mark.parametrize(
    ("seconds", "want"),
    [
        (0.45, "Less than a second"),
        (1, "1 second"),
        (45, "45 seconds"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (3 * MINUTE, "3 minutes"),
        (35 * MINUTE + 40, "35 minutes"),
        (59 * MINUTE, "59 minutes"),
        (HOUR, "About an hour"),
        (HOUR + 29 * MINUTE, "About an hour"),
        (HOUR + 31 * MINUTE, "2 hours"),
        (3 * HOUR + 29 * MINUTE, "3 hours"),
        (3 * HOUR + 31 * MINUTE, "4 hours"),
        (24 * HOUR, "24 hours"),
        (DAY + 12 * HOUR, "36 hours"),
        (2 * DAY, "2 days"),
        (7 * DAY, "7 days"),
        (13 * DAY + 5 * HOUR, "13 days"),
        (2 * WEEK, "2 weeks"),
        (2 * WEEK + 4 * DAY, "2 weeks"),
        (4 * WEEK + 3 * DAY, "4 weeks"),
        (MONTH, "4 weeks"),
        (MONTH + 2 * WEEK, "6 weeks"),
        (2 * MONTH, "2 months"),
        (3 * MONTH + WEEK, "3 months"),
        (13 * MONTH, "13 months"),
        (24 * MONTH, "24 months"),
        (24 * MONTH + 2 * WEEK, "2 years"),
        (3 * YEAR + 2 * MONTH, "3 years"),
    ],
)
def test_human_duration(seconds: float, want: str) -> None:
    assert human_duration(seconds) == want


def test_created_since() -> None:
    assert created_since(1000.0, now=1000.0 + 3 * WEEK) == "3 weeks ago"
    assert created_since(1000.0, now=1000.5) == "Less than a second ago"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("5s", 5.0),
        ("30s", 30.0),
        ("1478s", 1478.0),
        ("-5s", -5.0),
        ("+5s", 5.0),
        ("-0", 0.0),
        ("5.0s", 5.0),
        ("5.6s", 5.6),
        ("5.s", 5.0),
        (".5s", 0.5),
        ("1.0s", 1.0),
        ("1.004s", 1.004),
        ("100.00100s", 100.001),
        ("10ns", 10e-9),
        ("11us", 11e-6),
        ("12µs", 12e-6),
        ("12μs", 12e-6),
        ("13ms", 13e-3),
        ("14s", 14.0),
        ("15m", 900.0),
        ("16h", 57600.0),
        ("3h30m", 12600.0),
        ("10.5s4m", 250.5),
        ("-2m3.4s", -123.4),
        ("1h2m3s4ms5us6ns", 3723.004005006),
        ("39h9m14.425s", 140_954.425),
        ("24h", 86400.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-12)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("3", 'time: missing unit in duration "3"'),
        ("-", 'time: invalid duration "-"'),
        ("s", 'time: invalid duration "s"'),
        (".", 'time: invalid duration "."'),
        ("-.", 'time: invalid duration "-."'),
        (".s", 'time: invalid duration ".s"'),
        ("+.s", 'time: invalid duration "+.s"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_duration(text)
    assert str(info.value) == message


NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def _local(*args: int) -> float:
    local = datetime.fromtimestamp(NOW).astimezone().tzinfo
    return datetime(*args, tzinfo=local).timestamp()  # type: ignore[arg-type, misc]


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("24h", NOW - 86400),
        ("10m", NOW - 600),
        ("1699999999", 1_699_999_999.0),
        ("1699999999.25", 1_699_999_999.25),
        ("2023-11-14T22:13:20Z", NOW),
        ("2023-11-14T23:13:20+01:00", NOW),
        ("2023-11-14T22:13:20.5Z", NOW + 0.5),
        ("2023-11-14T22:13Z", NOW - 20),
        ("2023-11-14T22Z", NOW - 13 * 60 - 20),
        ("2023-11-14Z", datetime(2023, 11, 14, tzinfo=UTC).timestamp()),
        (
            "2023-11-14-01:00",
            datetime(2023, 11, 14, tzinfo=timezone(-timedelta(hours=1))).timestamp(),
        ),
    ],
)
def test_until_timestamp(value: str, want: float) -> None:
    assert parse_timestamp(value, NOW) == pytest.approx(want)


def test_get_timestamp_local_forms() -> None:
    assert parse_timestamp("2023-11-14", NOW) == pytest.approx(_local(2023, 11, 14))
    assert parse_timestamp("2023-11-14T10:30", NOW) == pytest.approx(_local(2023, 11, 14, 10, 30))
    assert parse_timestamp("2023-11-14T10:30:05.25", NOW) == pytest.approx(
        _local(2023, 11, 14, 10, 30, 5) + 0.25
    )


@pytest.mark.parametrize("value", ["bogus", "2023-13-01", "2023-11-14T25:00:00Z", "12.x"])
def test_get_timestamp_errors(value: str) -> None:
    with pytest.raises(UsageError):
        parse_timestamp(value, NOW)


def test_go_time_string() -> None:
    assert go_time_string(NOW, UTC) == "2023-11-14 22:13:20 +0000 UTC"
    cet = timezone(timedelta(hours=1))
    assert go_time_string(NOW, cet) == "2023-11-14 23:13:20 +0100 +0100"


def test_rfc3339_nano_as_go_formats_last_tag_time() -> None:
    assert rfc3339_nano(None) == "0001-01-01T00:00:00Z"
    assert rfc3339_nano(NOW, UTC) == "2023-11-14T22:13:20Z"
    assert rfc3339_nano(NOW + 0.5, UTC) == "2023-11-14T22:13:20.5Z"
    plus7 = timezone(timedelta(hours=7))
    assert rfc3339_nano(NOW + 0.534108, plus7) == "2023-11-15T05:13:20.534108+07:00"
    minus = timezone(-timedelta(hours=3, minutes=30))
    assert rfc3339_nano(NOW, minus) == "2023-11-14T18:43:20-03:30"
