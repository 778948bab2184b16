"""Statuspage v2 parser and check --json serialisation: real fixtures, hand cases, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.status import ComponentStatus, Indicator, Snapshot
from bot.sources.errors import SourceFormatError
from bot.sources.snapshot_json import snapshot_to_json
from bot.sources.statuspage import parse_statuspage, parse_statuspage_bytes

FIXTURES = Path(__file__).parent / "fixtures" / "statuspage"
PAYLOADS = sorted(FIXTURES.glob("statuspage_*.json"))

COMPONENT_FIELDS = ("id", "name", "status", "group")
INCIDENT_FIELDS = ("id", "name", "status", "impact", "started_at", "resolved_at")
MAINTENANCE_FIELDS = ("id", "name", "status", "scheduled_for", "scheduled_until")


def _expected(payload: Path) -> dict[str, Any]:
    """The hand-derived check --json fields for one fixture payload."""
    path = FIXTURES / "expected" / f"{payload.stem}.check.json"
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


def _check_json(payload: Path) -> dict[str, Any]:
    """Parse a fixture and serialise it as `check --json` would."""
    return snapshot_to_json(parse_statuspage_bytes(payload.read_bytes()))


def _parse(payload: dict[str, object]) -> dict[str, Any]:
    """Parse a hand-written payload and serialise it."""
    return snapshot_to_json(parse_statuspage(payload))


# --- real fixtures ---------------------------------------------------------------------------


def test_fixture_set_is_complete() -> None:
    assert len(PAYLOADS) >= 5
    for payload in PAYLOADS:
        assert (FIXTURES / "expected" / f"{payload.stem}.check.json").is_file(), payload.name


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.stem)
def test_fixture_matches_expected(payload: Path) -> None:
    got, want = _check_json(payload), _expected(payload)
    assert got["indicator"] == want["indicator"]
    for section, fields in (
        ("components", COMPONENT_FIELDS),
        ("maintenances", MAINTENANCE_FIELDS),
        ("incidents", INCIDENT_FIELDS),
    ):
        assert len(got[section]) == len(want[section]), section
        for index, (mine, theirs) in enumerate(zip(got[section], want[section], strict=True)):
            for name in fields:
                assert mine[name] == theirs[name], (section, index, theirs["id"], name)
    for mine, theirs in zip(got["incidents"], want["incidents"], strict=True):
        assert [(u["status"], u["created_at"]) for u in mine["updates"]] == [
            (u["status"], u["created_at"]) for u in theirs["updates"]
        ], mine["id"]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.stem)
def test_fixture_has_the_contract_shape(payload: Path) -> None:
    _assert_contract_shape(_check_json(payload))


def test_fixture_free_fields_carry_the_payload_values() -> None:
    github = _check_json(FIXTURES / "statuspage_summary_github_2022-11-25_incident.json")
    assert github["page"] == {"name": "GitHub", "url": "https://www.githubstatus.com"}
    incident = github["incidents"][0]
    assert incident["url"] == "https://stspg.io/33vh8r7z43kh"
    assert incident["updates"][-1]["body"] == (
        "We are investigating reports of degraded performance for Packages."
    )
    snapshot = parse_statuspage_bytes(
        (FIXTURES / "statuspage_summary_github_2022-11-25_incident.json").read_bytes()
    )
    assert snapshot.description == "Minor Service Outage"
    assert snapshot.incidents[0].component_ids == ("st3j38cctv9l", "vg70hn9s2tyj")
    assert snapshot.incidents[0].updates[0].id == "k0x2s8g2plxb"


def _assert_contract_shape(doc: dict[str, Any]) -> None:
    """Every key of the check --json contract is there, with the contract's types."""
    assert set(doc) == {"kind", "page", "indicator", "components", "incidents", "maintenances"}
    assert doc["kind"] == "statuspage"
    assert set(doc["page"]) == {"name", "url"}
    assert all(_str_or_none(v) for v in doc["page"].values())
    assert doc["indicator"] in {i.value for i in Indicator}
    for component in doc["components"]:
        assert set(component) == {"id", "name", "status", "group"}
        assert isinstance(component["id"], str)
        assert isinstance(component["name"], str)
        assert component["status"] in {s.value for s in ComponentStatus}
        assert _str_or_none(component["group"])
    for incident in doc["incidents"]:
        assert set(incident) == {*INCIDENT_FIELDS, "url", "updates"}
        assert all(isinstance(incident[k], str) for k in ("id", "name", "status", "impact"))
        assert all(_timestamp_or_none(incident[k]) for k in ("started_at", "resolved_at"))
        assert _str_or_none(incident["url"])
        for update in incident["updates"]:
            assert set(update) == {"status", "body", "created_at"}
            assert isinstance(update["status"], str)
            assert isinstance(update["body"], str)
            assert isinstance(update["created_at"], str)
            assert _timestamp_or_none(update["created_at"])
    for maintenance in doc["maintenances"]:
        assert set(maintenance) == set(MAINTENANCE_FIELDS)
        assert all(isinstance(maintenance[k], str) for k in ("id", "name", "status"))
        assert all(_timestamp_or_none(maintenance[k]) for k in MAINTENANCE_FIELDS[3:])
    json.dumps(doc)


def _str_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)


def _timestamp_or_none(value: object) -> bool:
    """None, or ISO 8601 UTC to the second ending in Z (20 characters)."""
    if value is None:
        return True
    return isinstance(value, str) and len(value) == 20 and value.endswith("Z") and value[10] == "T"


# --- hand-written payloads -------------------------------------------------------------------


def test_status_json_only() -> None:
    snapshot = parse_statuspage(
        {
            "page": {"id": "p1", "name": "Example", "url": "https://status.example.com"},
            "status": {"indicator": "major", "description": "Partial System Outage"},
        }
    )
    assert snapshot.kind == "statuspage"
    assert snapshot.indicator is Indicator.MAJOR
    assert snapshot.description == "Partial System Outage"
    assert snapshot.page.name == "Example"
    assert snapshot.page.url == "https://status.example.com"
    assert snapshot.components == ()
    assert snapshot.incidents == ()
    assert snapshot.maintenances == ()


def test_components_json_with_groups() -> None:
    doc = _parse(
        {
            "page": {"name": "Example"},
            "components": [
                # A child may come before its group: the mapping must not depend on order.
                {"id": "c1", "name": "SMS", "status": "partial_outage", "group_id": "g1"},
                {"id": "g1", "name": "MESSAGING", "status": "partial_outage", "group": True},
                {"id": "c2", "name": "API", "status": "operational", "group_id": None},
                {"id": "c3", "name": "Voice", "status": "major_outage", "group_id": "g1"},
                {"id": "c4", "name": "Lost", "status": "operational", "group_id": "gone"},
                {"id": "g2", "name": "EMPTY GROUP", "status": "operational", "group": True},
            ],
        }
    )
    assert doc["components"] == [
        {"id": "c1", "name": "SMS", "status": "partial_outage", "group": "MESSAGING"},
        {"id": "c2", "name": "API", "status": "operational", "group": None},
        {"id": "c3", "name": "Voice", "status": "major_outage", "group": "MESSAGING"},
        {"id": "c4", "name": "Lost", "status": "operational", "group": None},
    ]
    assert doc["indicator"] == "none"


def test_unknown_component_status_is_unknown() -> None:
    doc = _parse(
        {
            "components": [
                {"id": "a", "name": "A", "status": "on_fire"},
                {"id": "b", "name": "B"},
                {"id": "c", "name": "C", "status": 3},
                {"id": "d", "name": "D", "status": "under_maintenance"},
            ]
        }
    )
    assert [c["status"] for c in doc["components"]] == [
        "unknown",
        "unknown",
        "unknown",
        "under_maintenance",
    ]


def test_incident_without_started_at_falls_back_to_created_at() -> None:
    doc = _parse(
        {
            "incidents": [
                {
                    "id": "i1",
                    "name": "Old-style incident",
                    "status": "resolved",
                    "impact": "minor",
                    "created_at": "2018-04-06T12:00:00.000-05:00",
                    "resolved_at": "2018-04-06T13:30:00.000-05:00",
                },
                {
                    "id": "i2",
                    "name": "New-style incident",
                    "status": "resolved",
                    "impact": "minor",
                    "created_at": "2022-01-01T10:05:00Z",
                    "started_at": "2022-01-01T10:00:00Z",
                    "resolved_at": "2022-01-01T11:00:00Z",
                },
            ]
        }
    )
    assert [i["started_at"] for i in doc["incidents"]] == [
        "2018-04-06T17:00:00Z",
        "2022-01-01T10:00:00Z",
    ]
    assert doc["incidents"][0]["resolved_at"] == "2018-04-06T18:30:00Z"


def test_indicator_from_worst_open_incident_without_status() -> None:
    doc = _parse(
        {
            "incidents": [
                {"id": "a", "name": "A", "status": "investigating", "impact": "minor"},
                {"id": "b", "name": "B", "status": "identified", "impact": "major"},
                {"id": "c", "name": "C", "status": "monitoring", "impact": "weird"},
                # Closed ones do not count, however bad they were.
                {"id": "d", "name": "D", "status": "resolved", "impact": "critical"},
                {"id": "e", "name": "E", "status": "postmortem", "impact": "critical"},
                {
                    "id": "f",
                    "name": "F",
                    "status": "investigating",
                    "impact": "critical",
                    "resolved_at": "2020-01-01T00:00:00Z",
                },
            ]
        }
    )
    assert doc["indicator"] == "major"
    assert [i["id"] for i in doc["incidents"]] == ["a", "b", "c", "d", "e", "f"]


def test_page_indicator_wins_and_invalid_one_is_ignored() -> None:
    incidents = [{"id": "a", "name": "A", "status": "investigating", "impact": "critical"}]
    declared = {"status": {"indicator": "minor"}, "incidents": incidents}
    assert parse_statuspage(declared).indicator is Indicator.MINOR
    for bogus in ("unknown", "MAJOR", 2, None):
        payload = {"status": {"indicator": bogus}, "incidents": incidents}
        assert parse_statuspage(payload).indicator is Indicator.CRITICAL
    assert parse_statuspage({"incidents": []}).indicator is Indicator.NONE
    assert parse_statuspage({"status": {"indicator": "maintenance"}}).indicator == "maintenance"


def test_offsets_become_utc_z_and_fractions_are_dropped() -> None:
    doc = _parse(
        {
            "incidents": [
                {
                    "id": "i",
                    "name": "N",
                    "status": "monitoring",
                    "impact": "minor",
                    "started_at": "2020-06-16T13:27:41.521987-07:00",
                    "incident_updates": [
                        {
                            "status": "monitoring",
                            "body": "b",
                            "created_at": "2020-06-16T23:59:59.999+05:30",
                        },
                        {
                            "status": "investigating",
                            "body": "a",
                            "created_at": "2020-06-16T13:27:41.5Z",
                        },
                        {
                            "status": "investigating",
                            "body": "",
                            "created_at": "2020-06-16T13:27:41",
                        },
                    ],
                }
            ],
            "scheduled_maintenances": [
                {
                    "id": "m",
                    "name": "M",
                    "status": "scheduled",
                    "scheduled_for": "2020-06-16T16:00:00.000-07:00",
                    "scheduled_until": "2020-06-17T04:00:00.123456789+00:00",
                }
            ],
        }
    )
    incident = doc["incidents"][0]
    assert incident["started_at"] == "2020-06-16T20:27:41Z"
    assert [u["created_at"] for u in incident["updates"]] == [
        "2020-06-16T18:29:59Z",
        "2020-06-16T13:27:41Z",
        "2020-06-16T13:27:41Z",
    ]
    maintenance = doc["maintenances"][0]
    assert maintenance["scheduled_for"] == "2020-06-16T23:00:00Z"
    # Nine fractional digits are more than Python keeps; parse_timestamp may reject them.
    assert maintenance["scheduled_until"] in {"2020-06-17T04:00:00Z", None}


def test_updates_keep_payload_order_and_fall_back_to_display_at() -> None:
    snapshot = parse_statuspage(
        {
            "incidents": [
                {
                    "id": "i",
                    "name": "N",
                    "status": "resolved",
                    "impact": "none",
                    "incident_updates": [
                        {
                            "id": "u3",
                            "status": "resolved",
                            "body": "done",
                            "display_at": "2020-01-01T03:00:00Z",
                        },
                        {"id": "u2", "status": "monitoring", "created_at": "2020-01-01T02:00:00Z"},
                        {"id": "u0", "status": "investigating", "body": "no time"},
                        {
                            "id": "u1",
                            "status": "investigating",
                            "body": "start",
                            "created_at": "2020-01-01T01:00:00Z",
                        },
                        "not an update",
                    ],
                }
            ]
        }
    )
    updates = snapshot.incidents[0].updates
    assert [u.id for u in updates] == ["u3", "u2", "u1"]
    assert [u.body for u in updates] == ["done", "", "start"]
    assert snapshot.incidents[0].started_at is None


def test_urls_component_ids_and_skipped_entries() -> None:
    snapshot = parse_statuspage(
        {
            "incidents": [
                {"id": "a", "name": "A", "shortlink": "https://stspg.io/a", "url": "https://x/a"},
                {
                    "id": "b",
                    "name": "B",
                    "url": "https://x/b",
                    "components": [{"id": "c1"}, "c2", 7],
                },
                {"id": "c", "name": "C"},
                {"name": "no id"},
                {"id": "d"},
                {"id": 5, "name": "numeric id"},
            ],
            "scheduled_maintenances": [
                {
                    "id": "m",
                    "name": "M",
                    "status": "in_progress",
                    "shortlink": "https://stspg.io/m",
                },
                {"id": "", "name": "empty id"},
            ],
            "components": [{"id": "x"}, {"name": "y"}, None, "z"],
        }
    )
    assert [(i.id, i.url) for i in snapshot.incidents] == [
        ("a", "https://stspg.io/a"),
        ("b", "https://x/b"),
        ("c", None),
    ]
    assert snapshot.incidents[1].component_ids == ("c1", "c2")
    assert [(m.id, m.url) for m in snapshot.maintenances] == [("m", "https://stspg.io/m")]
    assert snapshot.components == ()
    # Missing status and impact still serialise as strings.
    doc: dict[str, Any] = snapshot_to_json(snapshot)
    _assert_contract_shape(doc)
    assert doc["maintenances"][0] == {
        "id": "m",
        "name": "M",
        "status": "in_progress",
        "scheduled_for": None,
        "scheduled_until": None,
    }


def test_out_of_range_timestamps_are_dropped() -> None:
    doc = _parse(
        {
            "incidents": [
                {
                    "id": "i",
                    "name": "N",
                    # Overflows when moved to UTC; parse_timestamp itself would raise.
                    "started_at": "0001-01-01T00:00:00+01:00",
                    "created_at": "9999-12-31T23:59:59-01:00",
                    # A three-digit year cannot be written in the contract's format.
                    "resolved_at": "0999-01-01T00:00:00Z",
                    "incident_updates": [
                        {"status": "resolved", "created_at": "0999-01-01T00:00:00Z"},
                        {"status": "investigating", "created_at": "1000-01-01T00:00:00Z"},
                    ],
                }
            ]
        }
    )
    incident = doc["incidents"][0]
    assert incident["started_at"] is None
    assert incident["resolved_at"] is None
    assert incident["updates"] == [
        {"status": "investigating", "body": "", "created_at": "1000-01-01T00:00:00Z"}
    ]


# --- bad input -------------------------------------------------------------------------------

TWILIO = FIXTURES / "statuspage_summary_twilio_2020-06-16_incidents_and_maintenances.json"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(TWILIO.read_bytes()[: len(TWILIO.read_bytes()) // 2], id="truncated"),
        pytest.param(b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", id="html"),
        pytest.param(b"", id="empty"),
        pytest.param(b"   \n", id="blank"),
        pytest.param(b"[1, 2, 3]", id="list"),
        pytest.param(b'"summary"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(b'{"hello": "world"}', id="no-known-keys"),
        pytest.param(b"\xff\xfe\x00garbage\x80", id="not-utf8"),
        pytest.param(b"[" * 100_000, id="deeply-nested"),
        pytest.param(b'{"incidents": ' + b"9" * 5000 + b"}", id="huge-integer"),
    ],
)
def test_unusable_bodies_raise_source_format_error(body: bytes) -> None:
    with pytest.raises(SourceFormatError) as caught:
        parse_statuspage_bytes(body)
    message = str(caught.value)
    assert message
    assert "\n" not in message
    assert len(message) < 200


@pytest.mark.parametrize(
    "payload",
    [
        {"components": 5},
        {"incidents": ["x", 3, None]},
        {"page": "Example", "status": "ok"},
        {"incidents": {"id": "i"}},
        {"scheduled_maintenances": [[], {}]},
        {"components": [{"id": ["a"], "name": {"b": 1}, "group": "true", "group_id": []}]},
        {"status": {"indicator": ["minor"], "description": 5}, "incidents": None},
        {"incidents": [{"id": "i", "name": "N", "incident_updates": {"a": 1}, "components": 5}]},
    ],
)
def test_wrong_types_inside_never_escape(payload: dict[str, object]) -> None:
    _parse_or_reject(payload)
    _parse_bytes_or_reject(json.dumps(payload).encode())


# Heroku's status API (status.heroku.com/api/v4/current-status), in its documented shape: valid
# JSON sharing the words `status` and `incidents` with Statuspage, but not a Statuspage payload.
HEROKU_CALM = {
    "status": [
        {"system": "Apps", "status": "green"},
        {"system": "Data", "status": "green"},
        {"system": "Tools", "status": "green"},
    ],
    "incidents": [],
    "scheduled": [],
}
HEROKU_RED = {
    "status": [{"system": "Apps", "status": "red"}, {"system": "Data", "status": "green"}],
    "incidents": [
        {
            "id": 2911,
            "title": "Elevated error rates on the platform",
            "resolved": False,
            "created_at": "2026-10-07T10:00:00Z",
            "updates": [{"contents": "We are investigating.", "update_type": "issue"}],
        }
    ],
    "scheduled": [],
}


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(HEROKU_CALM, id="heroku-calm"),
        pytest.param(HEROKU_RED, id="heroku-red"),
        pytest.param({"page": "Example", "incidents": []}, id="page-not-object"),
        pytest.param({"status": "ok", "components": []}, id="status-not-object"),
        pytest.param({"status": None, "incidents": []}, id="status-null"),
    ],
)
def test_another_kind_of_payload_is_unreadable_not_calm(payload: dict[str, object]) -> None:
    with pytest.raises(SourceFormatError, match="not a Statuspage payload"):
        parse_statuspage(payload)
    with pytest.raises(SourceFormatError, match="not a Statuspage payload"):
        parse_statuspage_bytes(json.dumps(payload).encode())


def test_wrong_types_inside_are_skipped_not_fatal() -> None:
    assert parse_statuspage({"incidents": ["x", 3, None]}).incidents == ()
    with pytest.raises(SourceFormatError):
        parse_statuspage({"components": 5})


def _parse_or_reject(payload: object) -> Snapshot | None:
    """Parse; a SourceFormatError is an answer, any other exception fails the test."""
    try:
        snapshot = parse_statuspage(payload)
    except SourceFormatError:
        return None
    _assert_contract_shape(snapshot_to_json(snapshot))
    return snapshot


def _parse_bytes_or_reject(body: bytes) -> Snapshot | None:
    """The bytes flavour of `_parse_or_reject`."""
    try:
        snapshot = parse_statuspage_bytes(body)
    except SourceFormatError:
        return None
    _assert_contract_shape(snapshot_to_json(snapshot))
    return snapshot


# --- properties ------------------------------------------------------------------------------

REAL_KEYS = (
    "page",
    "status",
    "components",
    "incidents",
    "scheduled_maintenances",
    "incident_updates",
    "id",
    "name",
    "url",
    "shortlink",
    "indicator",
    "description",
    "group",
    "group_id",
    "impact",
    "body",
    "created_at",
    "display_at",
    "started_at",
    "resolved_at",
    "scheduled_for",
    "scheduled_until",
)
TIMESTAMPISH = st.sampled_from(
    [
        "2020-06-16T14:00:29.031-07:00",
        "2022-11-25T15:50:04.967Z",
        "2019-02-20T12:00:19",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2020-02-30T00:00:00Z",
        "",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | TIMESTAMPISH
    | st.sampled_from([i.value for i in Indicator] + [s.value for s in ComponentStatus])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(REAL_KEYS) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=40,
)


# Shallow wrong-typed values for `_mostly`: cheap to draw, and depth is JSON_VALUES' job.
NOISE = SCALARS | st.lists(SCALARS, max_size=2) | st.dictionaries(st.text(max_size=3), SCALARS)


def _mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` three times in four, else a wrong-typed value."""
    # one_of(good, good, good, noise) would not weight: Hypothesis treats the branches as equal.
    return st.sampled_from([good, good, good, NOISE]).flatmap(lambda chosen: chosen)


# Payload-shaped values, mostly well formed at each level, so that the entry-level code (groups,
# updates, timestamps, the indicator) runs instead of every entry being skipped at once.
NAMES = st.sampled_from(["a", "b", "g1"]) | st.text(min_size=1, max_size=3)
TEXT = _mostly(st.text(max_size=10) | st.sampled_from(sorted({*Indicator, *ComponentStatus})))
TIMES = _mostly(TIMESTAMPISH | st.datetimes().map(lambda d: d.isoformat()))
UPDATE = st.fixed_dictionaries(
    {},
    optional={"id": TEXT, "status": TEXT, "body": TEXT, "created_at": TIMES, "display_at": TIMES},
)
OPTIONAL_ENTRY_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "status": TEXT,
    "impact": TEXT,
    "group": _mostly(st.booleans()),
    "group_id": _mostly(NAMES),
    "shortlink": TEXT,
    "url": TEXT,
    "created_at": TIMES,
    "started_at": TIMES,
    "resolved_at": TIMES,
    "scheduled_for": TIMES,
    "scheduled_until": TIMES,
    "incident_updates": _mostly(st.lists(_mostly(UPDATE), max_size=3)),
    "components": _mostly(st.lists(NAMES | st.fixed_dictionaries({"id": TEXT}), max_size=3)),
}
# Entries with a usable id and name (which must all be kept), and entries that may lack them.
GOOD_ENTRY = st.fixed_dictionaries({"id": NAMES, "name": NAMES}, optional=OPTIONAL_ENTRY_FIELDS)
ENTRY = st.fixed_dictionaries(
    {}, optional={"id": _mostly(NAMES), "name": _mostly(NAMES), **OPTIONAL_ENTRY_FIELDS}
)
TOP_LEVEL = {
    "page": _mostly(st.fixed_dictionaries({}, optional={"name": TEXT, "url": TEXT})),
    "status": _mostly(st.fixed_dictionaries({}, optional={"indicator": TEXT, "description": TEXT})),
}
PAYLOADS_LIKE = st.fixed_dictionaries(
    {},
    optional={
        **TOP_LEVEL,
        **{k: _mostly(st.lists(_mostly(ENTRY), max_size=3)) for k in REAL_KEYS[2:5]},
    },
)
# Well-formed top level: a `page` or `status` of another type is another kind of payload.
GOOD_TOP_LEVEL = {
    "page": st.fixed_dictionaries({}, optional={"name": TEXT, "url": TEXT}),
    "status": st.fixed_dictionaries({}, optional={"indicator": TEXT, "description": TEXT}),
}
GOOD_PAYLOADS = st.fixed_dictionaries(
    {k: st.lists(GOOD_ENTRY, max_size=3) for k in REAL_KEYS[2:5]}, optional=GOOD_TOP_LEVEL
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PAYLOADS_LIKE | JSON_VALUES)
def test_arbitrary_values_only_ever_raise_source_format_error(payload: object) -> None:
    _parse_or_reject(payload)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(GOOD_PAYLOADS)
def test_entries_with_id_and_name_are_all_kept(payload: dict[str, list[dict[str, Any]]]) -> None:
    snapshot = parse_statuspage(payload)
    _assert_contract_shape(snapshot_to_json(snapshot))
    assert snapshot.indicator is not Indicator.UNKNOWN
    assert [i.id for i in snapshot.incidents] == [e["id"] for e in payload["incidents"]]
    assert [m.id for m in snapshot.maintenances] == [
        e["id"] for e in payload["scheduled_maintenances"]
    ]
    leaves = [e["id"] for e in payload["components"] if e.get("group") is not True]
    assert [c.id for c in snapshot.components] == leaves


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=200) | (PAYLOADS_LIKE | JSON_VALUES).map(lambda v: json.dumps(v).encode())
)
def test_arbitrary_bytes_only_ever_raise_source_format_error(body: bytes) -> None:
    _parse_bytes_or_reject(body)
