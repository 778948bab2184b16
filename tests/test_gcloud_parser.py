"""Google Cloud incidents.json parser: a real payload excerpt, hand cases, bad input, properties."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.status import Indicator
from bot.sources.errors import SourceFormatError
from bot.sources.gcloud import MAX_NAME_CHARS, parse_gcloud, parse_gcloud_bytes
from bot.sources.snapshot_json import snapshot_to_json

FIXTURES = Path(__file__).parent / "fixtures" / "gcloud"
FIXTURE = FIXTURES / "gcloud_incidents_2022-07-01_first3_excerpt.json"
BIGQUERY, COMPOSER_SQL, APIGEE = (
    "TaA75H7XA1DQyM2ReK2f",
    "mDY7jN545et9XUV541MZ",
    "sPyYB214xAhqnoxNrrnW",
)

# Written by reading the raw JSON (begin/end/updates[].when/status), not from parser output.
EXPECTED: dict[str, dict[str, Any]] = {
    BIGQUERY: {
        "name": "[Google BigQuery] Lower throughput from the Read API",
        "status": "resolved",
        "impact": "minor",  # SERVICE_INFORMATION / low
        "started_at": "2022-07-01T13:37:44Z",
        "resolved_at": "2022-07-01T19:25:45Z",
        "url": f"https://status.cloud.google.com/incidents/{BIGQUERY}",
        "updates": [
            ("resolved", "2022-07-01T19:25:45Z"),
            ("investigating", "2022-07-01T17:48:07Z"),
            ("investigating", "2022-07-01T16:46:20Z"),
            ("investigating", "2022-07-01T14:54:19Z"),
            ("investigating", "2022-07-01T14:04:53Z"),
        ],
    },
    COMPOSER_SQL: {
        "name": (
            "Intermittent Cloud Composer creation failures in select regions and elevated error "
            "rates during Cloud SQL instance creation."
        ),
        "status": "resolved",
        "impact": "minor",  # SERVICE_INFORMATION / low
        "started_at": "2022-06-30T18:12:00Z",
        "resolved_at": "2022-07-01T02:15:28Z",
        "url": f"https://status.cloud.google.com/incidents/{COMPOSER_SQL}",
        "updates": [
            ("resolved", "2022-07-01T02:15:28Z"),
            ("investigating", "2022-07-01T00:50:56Z"),
            ("investigating", "2022-06-30T19:49:08Z"),
            ("investigating", "2022-06-30T19:04:16Z"),
            ("investigating", "2022-06-30T18:45:05Z"),
        ],
    },
    APIGEE: {
        "name": (
            "Global: Apigee X is experiencing issues with integrated portals and API Monitoring."
        ),
        "status": "resolved",
        "impact": "minor",  # SERVICE_DISRUPTION / medium
        "started_at": "2022-06-29T20:54:00Z",
        "resolved_at": "2022-06-29T22:59:00Z",
        "url": f"https://status.cloud.google.com/incidents/{APIGEE}",
        "updates": [
            ("resolved", "2022-06-30T18:13:17Z"),
            ("resolved", "2022-06-29T23:11:51Z"),
            ("investigating", "2022-06-29T22:33:21Z"),
            ("investigating", "2022-06-29T22:14:41Z"),
        ],
    },
}


def _check(body: bytes, product: str | None = None) -> dict[str, Any]:
    """Parse bytes as the poller would and serialise as `check --json` does."""
    options = None if product is None else {"product": product}
    return snapshot_to_json(parse_gcloud_bytes(body, options=options))


def _real() -> list[dict[str, Any]]:
    """The real payload, decoded, for tests that derive variants from it."""
    payload: list[dict[str, Any]] = json.loads(FIXTURE.read_bytes())
    return payload


def _assert_matches_expected(incident: dict[str, Any]) -> None:
    want = EXPECTED[incident["id"]]
    for key in ("name", "status", "impact", "started_at", "resolved_at", "url"):
        assert incident[key] == want[key], (incident["id"], key)
    assert [(u["status"], u["created_at"]) for u in incident["updates"]] == want["updates"]


# --- the real payload ------------------------------------------------------------------------


def test_fixture_without_filter_keeps_every_incident_in_payload_order() -> None:
    doc = _check(FIXTURE.read_bytes())

    assert [i["id"] for i in doc["incidents"]] == [BIGQUERY, COMPOSER_SQL, APIGEE]
    for incident in doc["incidents"]:
        _assert_matches_expected(incident)
    assert doc["indicator"] == "none"  # all three are over


@pytest.mark.parametrize(
    ("product", "ids"),
    [
        ("Google Cloud SQL", [COMPOSER_SQL]),  # second of two affected products
        ("google cloud composer", [COMPOSER_SQL]),  # case-insensitive
        ("  Google BigQuery ", [BIGQUERY]),  # surrounding blanks are ignored
        ("APIGEE", [APIGEE]),
        ("Multiple Products", [COMPOSER_SQL]),  # service_name counts too
        ("Google Cloud", []),  # exact match, not a substring
        ("Vertex Gemini API", []),  # not affected in this capture
    ],
)
def test_fixture_product_filter(product: str, ids: list[str]) -> None:
    doc = _check(FIXTURE.read_bytes(), product)

    assert [i["id"] for i in doc["incidents"]] == ids
    for incident in doc["incidents"]:
        _assert_matches_expected(incident)
    assert doc["indicator"] == "none"


def test_fixture_update_bodies_and_products_are_carried() -> None:
    snapshot = parse_gcloud_bytes(FIXTURE.read_bytes())
    composer = snapshot.incidents[1]
    assert composer.component_ids == ("YxkG5FfcC42cQmvBCk4j", "hV87iK5DcEXKgWU2kDri")
    assert composer.updates[0].body.startswith("We experienced an issue with Google Cloud Composer")
    assert '"databases already exist"' in composer.updates[1].body
    assert "\n" in composer.updates[1].body  # Google's line breaks survive decoding


def test_fixture_check_json_contract() -> None:
    doc = _check(FIXTURE.read_bytes())

    assert set(doc) == {"kind", "page", "indicator", "components", "incidents", "maintenances"}
    assert doc["kind"] == "gcloud"
    assert doc["page"] == {"name": "Google Cloud", "url": "https://status.cloud.google.com"}
    assert doc["components"] == []
    assert doc["maintenances"] == []
    for incident in doc["incidents"]:
        assert set(incident) == {
            "id", "name", "status", "impact", "started_at", "resolved_at", "url", "updates"
        }  # fmt: skip
        for stamp in (incident["started_at"], incident["resolved_at"]):
            assert len(stamp) == 20
            assert stamp.endswith("Z")
        for update in incident["updates"]:
            assert set(update) == {"status", "body", "created_at"}
            assert update["created_at"].endswith("Z")
    json.dumps(doc)


# --- live incidents derived from the real payload ---------------------------------------------


def _apigee_mid_incident() -> dict[str, Any]:
    """The real Apigee incident as it stood before it ended: no end, only its open updates."""
    entry = copy.deepcopy(_real()[2])
    del entry["end"]
    entry["updates"] = [u for u in entry["updates"] if u["status"] == "SERVICE_DISRUPTION"]
    entry["most_recent_update"] = entry["updates"][0]
    return entry


@pytest.mark.parametrize(
    ("status_impact", "severity", "impact"),
    [
        ("SERVICE_DISRUPTION", "medium", "minor"),
        ("SERVICE_DISRUPTION", "low", "minor"),
        ("SERVICE_DISRUPTION", "high", "major"),
        ("SERVICE_OUTAGE", "low", "critical"),
        ("SERVICE_OUTAGE", "high", "critical"),
        ("SERVICE_INFORMATION", "high", "minor"),
        ("SOMETHING_NEW", "high", "major"),
        ("SOMETHING_NEW", "medium", "minor"),
    ],
)
def test_open_incident_impact_and_indicator(status_impact: str, severity: str, impact: str) -> None:
    entry = _apigee_mid_incident() | {"status_impact": status_impact, "severity": severity}

    snapshot = parse_gcloud([entry])

    (incident,) = snapshot.incidents
    assert incident.is_open
    assert incident.status == "investigating"
    assert incident.resolved_at is None
    assert incident.impact == impact
    assert snapshot.indicator is Indicator(impact)
    assert [u.status for u in incident.updates] == ["investigating", "investigating"]


def test_indicator_is_the_worst_open_impact_and_ignores_closed_ones() -> None:
    outage_over = _real()[2] | {"status_impact": "SERVICE_OUTAGE"}
    open_minor = _apigee_mid_incident()
    open_major = _apigee_mid_incident() | {"id": "x2", "severity": "high"}

    assert parse_gcloud([outage_over, open_minor]).indicator is Indicator.MINOR
    assert parse_gcloud([open_minor, open_major, outage_over]).indicator is Indicator.MAJOR


def test_missing_status_impact_falls_back_to_the_latest_update() -> None:
    entry = _apigee_mid_incident()
    del entry["status_impact"]
    entry["most_recent_update"] = entry["most_recent_update"] | {"status": "SERVICE_OUTAGE"}

    assert parse_gcloud([entry]).incidents[0].impact == "critical"


@pytest.mark.parametrize("end", [None, "", "not a time"])
def test_unusable_end_means_still_open(end: object) -> None:
    entry = _apigee_mid_incident() | {"end": end}

    assert parse_gcloud([entry]).incidents[0].is_open


def test_available_update_without_end_resolves_at_that_update() -> None:
    entry = _apigee_mid_incident()
    entry["updates"] = [{"when": "2022-06-29T23:11:51+00:00", "status": "AVAILABLE", "text": "ok"}]

    doc: dict[str, Any] = snapshot_to_json(parse_gcloud([entry]))
    (incident,) = doc["incidents"]

    assert incident["status"] == "resolved"
    assert incident["resolved_at"] == "2022-06-29T23:11:51Z"


# --- hand cases --------------------------------------------------------------------------------


def _entry(**fields: object) -> dict[str, object]:
    return {
        "id": "abc",
        "external_desc": "Something broke",
        "begin": "2026-01-02T03:04:05Z",
    } | fields


def test_updates_are_sorted_newest_first_and_fall_back_to_most_recent_update() -> None:
    shuffled = _entry(
        updates=[
            {"when": "2026-01-02T04:00:00+00:00", "status": "SERVICE_OUTAGE", "text": "b"},
            {"created": "2026-01-02T05:00:00+00:00", "status": "AVAILABLE", "text": "c"},
            {"text": "no time: skipped"},
            {"modified": "2026-01-02T03:30:00-01:00", "text": "a (04:30 UTC)"},
        ]
    )
    only_latest = _entry(most_recent_update={"when": "2026-01-02T04:00:00Z", "text": "x"})

    got = parse_gcloud([shuffled, only_latest]).incidents

    assert [u.body for u in got[0].updates] == ["c", "a (04:30 UTC)", "b"]
    assert [u.body for u in got[1].updates] == ["x"]


def test_name_is_the_first_non_blank_line_cut_to_the_limit() -> None:
    long_line = "x" * (MAX_NAME_CHARS + 50)
    got = parse_gcloud(
        [
            _entry(id="a", external_desc="\n  First line  \nsecond"),
            _entry(id="b", external_desc=long_line),
        ]
    ).incidents

    assert got[0].name == "First line"
    assert len(got[1].name) == MAX_NAME_CHARS
    assert got[1].name.endswith("…")


@pytest.mark.parametrize(
    ("uri", "url"),
    [
        ("incidents/abc", "https://status.cloud.google.com/incidents/abc"),
        ("/incidents/abc", "https://status.cloud.google.com/incidents/abc"),
        (None, "https://status.cloud.google.com/incidents/abc"),
        ("https://status.cloud.google.com/x", "https://status.cloud.google.com/x"),
    ],
)
def test_url_from_uri(uri: object, url: str) -> None:
    assert parse_gcloud([_entry(uri=uri)]).incidents[0].url == url


def test_product_filter_also_matches_current_title() -> None:
    renamed = _entry(
        affected_products=[
            {"title": "Vertex Gemini API", "current_title": "Gemini on Vertex", "id": "z"}
        ]
    )

    assert len(parse_gcloud([renamed], product="gemini on vertex").incidents) == 1
    assert len(parse_gcloud([renamed], product="Vertex Gemini API").incidents) == 1
    assert parse_gcloud([renamed], product="Gemini").incidents == ()


def test_entries_without_id_or_description_are_skipped() -> None:
    payload = [
        _entry(id=None),
        _entry(id="b", external_desc=5),
        _entry(id="c", external_desc="   "),
        "not an object",
        _entry(id="d"),
    ]

    assert [i.id for i in parse_gcloud(payload).incidents] == ["d"]


def test_empty_array_is_calm() -> None:
    snapshot = parse_gcloud_bytes(b"[]")

    assert snapshot.incidents == ()
    assert snapshot.indicator is Indicator.NONE


def test_bom_is_accepted() -> None:
    assert parse_gcloud_bytes(b"\xef\xbb\xbf" + json.dumps([_entry()]).encode()).incidents


@pytest.mark.parametrize("product", [5, "", "   ", ["Apigee"]])
def test_bad_product_option_is_a_configuration_error(product: object) -> None:
    with pytest.raises(ValueError, match="product") as caught:
        parse_gcloud_bytes(b"[]", options={"product": product})
    assert not isinstance(caught.value, SourceFormatError)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "invalid JSON"),
        (b"[{", "invalid JSON"),
        (b"\xff\xfe[]", "not UTF-8"),
        (b"<html>Service Unavailable</html>", "invalid JSON"),
        (b'{"incidents": []}', "not an array"),
        (b"null", "not an array"),
        (b'"[]"', "not an array"),
        (b'[1, "x", null, {"page": {}}]', "no Google Cloud incidents"),
        (b"[" * 100_000, "invalid JSON"),
        (b"[" + b"9" * 5000 + b"]", "invalid JSON"),
    ],
    ids=[
        "empty",
        "truncated",
        "utf16",
        "html",
        "object",
        "null",
        "string",
        "foreign",
        "deep",
        "bigint",
    ],
)
def test_unusable_bodies_raise_source_format_error(body: bytes, message: str) -> None:
    with pytest.raises(SourceFormatError, match=message):
        parse_gcloud_bytes(body)


SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
TIMES = st.sampled_from(
    [
        "2022-07-01T13:37:44+00:00",
        "2026-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "",
    ]
)
KEYS = [
    "id", "external_desc", "begin", "created", "end", "modified", "updates", "most_recent_update",
    "status_impact", "severity", "service_name", "affected_products", "uri", "when", "text",
    "status", "title", "current_title",
]  # fmt: skip
JSON_VALUES = st.recursive(
    SCALARS | TIMES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=8)
    ),
    max_leaves=40,
)
# Arrays of incident-shaped objects, so the property reaches the per-field code, not just the top.
INCIDENT_ARRAYS = st.lists(
    st.dictionaries(st.sampled_from(KEYS), JSON_VALUES, max_size=10), max_size=4
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=200)
    | (INCIDENT_ARRAYS | JSON_VALUES).map(lambda v: json.dumps(v).encode()),
    product=st.none() | st.sampled_from(["Apigee", "x"]),
)
def test_arbitrary_input_only_ever_raises_source_format_error(
    body: bytes, product: str | None
) -> None:
    try:
        doc = _check(body, product)
    except SourceFormatError:
        return
    assert doc["kind"] == "gcloud"
    assert doc["indicator"] in {"none", "minor", "major", "critical"}
    json.dumps(doc)
