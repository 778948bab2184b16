"""incident.io-hosted Statuspage pages (status.openai.com) and older Atlassian quirks.

Real payloads (see tests/fixtures/statuspage/SOURCES.md): two OpenAI summary.json captures, the
OpenAI incidents.json of the same day as the first, and a components.json of the same period.
Every expected value below was read off those files by hand, not produced by the code under test.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.service_view import service_view
from bot.core.status import ComponentStatus, Indicator, Snapshot
from bot.sources.catalog import Catalog, parse_catalog
from bot.sources.fetch import new_http_session
from bot.sources.snapshot_json import snapshot_to_json
from bot.sources.statuspage import parse_statuspage, parse_statuspage_bytes
from bot.sources.statuspage_merge import merge_parts
from bot.store import source_store
from bot.store.engine import session_factory
from tests.conftest import FakeClock
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer, Step
from tests.helpers import make_poller

FIXTURES = Path(__file__).parent / "fixtures" / "statuspage"
SUMMARY_OPERATIONAL = (
    FIXTURES / "incidentio_summary_openai_2026-09-15_operational_partial_components.json"
)
SUMMARY_INCIDENTS = (
    FIXTURES / "incidentio_summary_openai_2026-09-29_incidents_without_components.json"
)
COMPONENTS = FIXTURES / "incidentio_components_openai_2026-08_keys_trimmed.json"
INCIDENTS = FIXTURES / "incidentio_incidents_openai_2026-09-15_backfill.json"
EMMA = FIXTURES / "statuspage_incidents_emma_2019-02-21.json"
TWILIO = FIXTURES / "statuspage_summary_twilio_2020-06-16_incidents_and_maintenances.json"
COMPONENTS_PATH = "/api/v2/components.json"

ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")  # Crockford base32, 26 characters
UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

# The two services sharing status.openai.com, with their components as in bot/sources/catalog.toml.
CHATGPT = ("Conversations", "Voice mode", "Deep Research", "GPTs", "Agent")
OPENAI_API = (
    "Chat Completions",
    "Responses",
    "Embeddings",
    "Realtime",
    "Batch",
    "Files",
    "Fine-tuning",
    "Moderations",
)

# components.json, in its own order (position 0..33), read off the payload.
COMPONENTS_ORDER = [
    ("01JP8CD9JR3HR6Y7G4Q75N4DVW", "Responses"),
    ("01JMXBRMFE4MAP2BHSJNZ787WX", "Images"),
    ("01KMKFAMWKQ81YWSE1Z18R6VHR", "Codex in ChatGPT Desktop"),
    ("01JSM5RTJWHRWDTS6Q604VEW3B", "Login"),
    ("01JMXBRMFEKVBWKK82B44QFMCE", "Audio"),
    ("01JNKS9D9S72PMP1938PVFFQN4", "Compliance API"),
    ("01JMXBRMFESJCBGJR10PDD3WCQ", "Files"),
    ("01KKAD7C71MCCH3FTREMJH4AAS", "FedRAMP"),
    ("01JMXBNJXGKKP51D4DEJ2HZJ8Q", "Search"),
    ("01K9G527YRPY1EFRMHTKB5BKT5", "Sora"),
    ("01KVR95C58GGWHV7RYBT32NP11", "Ads API"),
    ("01JMXBRMFEMZK0HPK19RYET250", "Fine-tuning"),
    ("01K8C008QVXHA6JX98PAS42VPD", "ChatGPT Atlas"),
    ("01JSYVYQSWMJ9QG35XHP08BHA7", "Deep Research"),
    ("01JSG1XMJ9RVJJQ0E85NVSJ2AZ", "Agent"),
    ("01JMXBRMFEQW613TFE89F45035", "Realtime"),
    ("01JMXBNJXGGT5SR5DB9J7GYY48", "Voice mode"),
    ("01JMXBRMFE5ESNNV8JDHVCGSRD", "Batch"),
    ("01JMXBRMFEV0AJ0VVS68N9CD6R", "Embeddings"),
    ("01JMXBRMFEVZ7E0X9GD9FWR9WX", "Moderations"),
    ("01JVCV8YSWZFRSM1G5CVP253SK", "Codex Web"),
    ("01K6TVGGGDCP0PPGCHXAG3AQX8", "Connectors/Apps"),
    ("01KMP3KP5M8X0EBTVW6KN327EE", "VS Code extension"),
    ("01KMP3KP5MGE23B80K1EK4S8PV", "Codex API"),
    ("01KX45G1SHQQ9DTAX9S4W7FV8G", "Sites"),
    ("01JMXBNJXG1YMQPPCPCQX3MPA2", "File uploads"),
    ("01JMXBRMFE6N2NNT7DG6XZQ6PW", "Chat Completions"),
    ("01JMXBNJXG1S2D9V65P1ZZTD94", "Login"),
    ("01KTQBYVARFJ5KMCSECM06VKCF", "Ads Manager"),
    ("01KMKFAMWKNQ84Z1766MV08ZDE", "CLI"),
    ("01JMXBNJXGV1T5GT2M9XA83XNG", "Conversations"),
    ("01JSFK5QX36ZRW0TW0ZV0ZYFXQ", "GPTs"),
    ("01JQ7EKW990MSPSWVXC7VPV2ZJ", "Image Generation"),
    ("01KX45G1SH21AX5DT93D4HMF0P", "ChatGPT Work"),
]
# The nine the 2026-09-15 summary leaves out (it lists 25 of the 34).
MISSING_FROM_SUMMARY = {
    "Responses",
    "Chat Completions",
    "Conversations",
    "GPTs",
    "Image Generation",
    "ChatGPT Work",
    "CLI",
    "Ads Manager",
    "Login",  # the second "Login", 01JMXBNJXG1S2D9V65P1ZZTD94 (the summary has 01JSM5…)
}


def _payload(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_bytes())
    return result


def _parse(path: Path) -> Snapshot:
    return parse_statuspage_bytes(path.read_bytes())


def _doc(snapshot: Snapshot) -> dict[str, Any]:
    """The check --json document of a snapshot."""
    return snapshot_to_json(snapshot)


def _incident(path: Path, incident_id: str) -> dict[str, Any]:
    """One raw incident object of a payload, copied so a test may change it."""
    found = next(i for i in _payload(path)["incidents"] if i["id"] == incident_id)
    return copy.deepcopy(found)


def _as_open(incident: dict[str, Any], *, updates: int) -> dict[str, Any]:
    """A resolved incident as a summary listed it while open: its oldest ``updates`` updates."""
    kept = incident["incident_updates"][-updates:]
    incident["incident_updates"] = kept
    incident["status"] = kept[0]["status"]
    incident.pop("resolved_at", None)
    return incident


def _summary_with(incidents: list[dict[str, Any]]) -> Snapshot:
    """The operational 2026-09-15 summary, completed by components.json, listing ``incidents``."""
    payload = _payload(SUMMARY_OPERATIONAL)
    payload["incidents"] = incidents
    return merge_parts(parse_statuspage(payload), [_parse(COMPONENTS)])


# --- parsing: ULIDs, a missing "incidents" key, incidents without components, Markdown ----------


def test_summary_without_incidents_key_means_none_open() -> None:
    raw = _payload(SUMMARY_OPERATIONAL)
    assert "incidents" not in raw
    assert "scheduled_maintenances" not in raw
    snapshot = _parse(SUMMARY_OPERATIONAL)
    assert snapshot.incidents == ()
    assert snapshot.maintenances == ()
    assert snapshot.indicator is Indicator.NONE
    assert snapshot.description == "All Systems Operational"
    assert snapshot.lists_all_open_incidents, "a summary (status + components) lists every open one"
    assert (snapshot.page.name, snapshot.page.url) == ("OpenAI", "https://status.openai.com/")


def test_ulid_ids_are_kept_as_strings() -> None:
    snapshot = _parse(SUMMARY_OPERATIONAL)
    assert len(snapshot.components) == 25
    first, last = snapshot.components[0], snapshot.components[-1]
    assert (first.id, first.name) == ("01JMXBRMFE4MAP2BHSJNZ787WX", "Images")
    assert (last.id, last.name) == ("01K8C008QVXHA6JX98PAS42VPD", "ChatGPT Atlas")
    assert all(isinstance(c.id, str) and ULID.match(c.id) for c in snapshot.components)
    assert all(c.status is ComponentStatus.OPERATIONAL for c in snapshot.components)
    assert all(c.group is None for c in snapshot.components)  # no groups on this page
    doc = _doc(snapshot)
    assert [c["id"] for c in doc["components"]][:3] == [
        "01JMXBRMFE4MAP2BHSJNZ787WX",
        "01JSM5RTJWHRWDTS6Q604VEW3B",
        "01JMXBRMFEKVBWKK82B44QFMCE",
    ]


def test_open_incidents_without_components() -> None:
    snapshot = _parse(SUMMARY_INCIDENTS)
    assert snapshot.indicator is Indicator.MINOR
    assert snapshot.description == "Partial System Degradation"
    assert snapshot.lists_all_open_incidents
    errors, support = snapshot.incidents
    assert (errors.id, errors.name) == (
        "01M3Q4RK1SM4EMK445GGPG7C0N",
        "Elevated errors across ChatGPT, Codex, and the API including the Agents API",
    )
    assert (errors.status, errors.impact) == ("investigating", "minor")
    assert (support.id, support.name) == ("01M3Q4HMNP8SZ27DTZKW6F5BJ4", "Support chat unavailable")
    assert (support.status, support.impact) == ("investigating", "none")
    for incident in (errors, support):
        assert incident.component_ids == ()
        assert incident.is_open
        assert incident.resolved_at is None
        assert incident.url is None  # incident.io sends neither shortlink nor url
    doc = _doc(snapshot)
    incidents: list[dict[str, Any]] = doc["incidents"]
    assert [i["started_at"] for i in incidents] == ["2026-09-29T17:52:52Z", "2026-09-29T17:49:05Z"]
    assert [u["created_at"] for u in incidents[0]["updates"]] == [
        "2026-09-29T18:24:17Z",
        "2026-09-29T17:52:52Z",
    ]
    assert [u.id for u in errors.updates] == [
        "01M3Q6J3T2220NEB407NX63SS9",
        "01M3Q4RK1S5K0NQDA0FZ267QJC",
    ]
    statuses = {c.name: c.status for c in snapshot.components}
    assert statuses["Conversations"] is ComponentStatus.DEGRADED_PERFORMANCE
    assert statuses["Ads API"] is ComponentStatus.OPERATIONAL
    assert statuses["dots"] is ComponentStatus.OPERATIONAL


def test_markdown_bodies_are_kept_verbatim() -> None:
    support = _parse(SUMMARY_INCIDENTS).incidents[1]
    assert support.updates[0].body == (
        "Our Help Center is available, but support chat remains unavailable. If you need "
        "assistance, you can browse the Help Center or email "
        '[support@openai.com](mailto:support@openai.com "support@openai.com").'
    )
    assert support.updates[1].body == (
        "Our Help Center and support chat are currently unavailable. If you need assistance, you "
        "can still reach our support team by emailing "
        '[support@openai.com](mailto:support@openai.com "support@openai.com").'
        "\n\nWe apologize for the inconvenience."
    )
    history = {i.id: i for i in _parse(INCIDENTS).incidents}
    fenced = history["01M2EWYR55J47M2BPG9WC76VEG"].updates[2]
    assert fenced.body == (
        "```\nWe are investigating elevated error rates affecting Codex and ChatGPT Work\n```"
    )
    quoted = history["01M20PYYYGRT9303VHAPA7YNT2"].updates[3]
    assert quoted.body.startswith("> We’re continuing to investigate elevated errors")
    trailing = history["01M2H3J1D6Y7RHAP49GRWGJAY0"].updates[2]
    assert trailing.body.endswith("in managed sessions. "), "not even trailing spaces are touched"
    # The check --json contract carries the same text; escaping is the renderers' job.
    incidents: list[dict[str, Any]] = _doc(_parse(SUMMARY_INCIDENTS))["incidents"]
    assert incidents[1]["updates"][0]["body"] == support.updates[0].body


def test_incidents_json_lists_resolved_incidents() -> None:
    snapshot = _parse(INCIDENTS)
    assert len(snapshot.incidents) == 25
    assert snapshot.open_incidents == ()
    assert snapshot.lists_all_open_incidents
    assert snapshot.indicator is Indicator.NONE  # no status key, nothing open
    github = next(i for i in snapshot.incidents if i.id == "01M2D1CZG0862JB4JHVW56QF89")
    assert github.name == "Codex GitHub Review and Pull Request Failures"
    assert [u.status for u in github.updates] == [
        "resolved",
        "monitoring",
        "resolved",
        "identified",
        "identified",
        "investigating",
    ]
    doc = next(i for i in _doc(snapshot)["incidents"] if i["id"] == github.id)
    assert (doc["started_at"], doc["resolved_at"]) == (
        "2026-09-13T09:26:00Z",
        "2026-09-13T09:53:42Z",
    )


def test_components_json_says_nothing_about_incidents() -> None:
    snapshot = _parse(COMPONENTS)
    assert [(c.id, c.name) for c in snapshot.components] == COMPONENTS_ORDER
    assert not snapshot.lists_all_open_incidents


# --- merging summary.json with components.json and incidents.json --------------------------------


def test_merge_adds_missing_components_in_components_json_order() -> None:
    summary = _parse(SUMMARY_OPERATIONAL)
    merged = merge_parts(summary, [_parse(COMPONENTS), _parse(INCIDENTS)])
    assert [(c.id, c.name) for c in merged.components] == COMPONENTS_ORDER
    summary_ids = {c.id for c in summary.components}
    added = [c.name for c in merged.components if c.id not in summary_ids]
    assert sorted(added) == sorted(MISSING_FROM_SUMMARY)
    # The summary's own entries are the ones kept.
    by_id = {c.id: c for c in merged.components}
    assert all(by_id[c.id] == c for c in summary.components)
    assert merged.indicator is Indicator.NONE
    assert merged.lists_all_open_incidents


def test_merge_keeps_the_summarys_fresher_statuses() -> None:
    # components.json (all operational, bulk-stamped 2026-07-09) against the 2026-09-29 summary.
    summary = _parse(SUMMARY_INCIDENTS)
    merged = merge_parts(summary, [_parse(COMPONENTS)])
    statuses = {c.id: c.status for c in merged.components}
    degraded = ComponentStatus.DEGRADED_PERFORMANCE
    assert statuses["01JMXBNJXGV1T5GT2M9XA83XNG"] is degraded  # Conversations
    assert statuses["01JMXBRMFE6N2NNT7DG6XZQ6PW"] is degraded  # Chat Completions
    assert statuses["01JP8CD9JR3HR6Y7G4Q75N4DVW"] is degraded  # Responses
    assert statuses["01KVR95C58GGWHV7RYBT32NP11"] is ComponentStatus.OPERATIONAL  # Ads API
    # Not in this summary: components.json's word is all there is.
    assert statuses["01KMP3KP5MGE23B80K1EK4S8PV"] is ComponentStatus.OPERATIONAL  # Codex API
    assert statuses["01JMXBNJXGGT5SR5DB9J7GYY48"] is ComponentStatus.OPERATIONAL  # Voice mode
    listed = [(c.id, c.name) for c in merged.components]
    assert [entry for entry in listed if entry in COMPONENTS_ORDER] == COMPONENTS_ORDER
    assert merged.incidents == summary.incidents


def test_merge_keeps_summary_components_the_parts_do_not_list() -> None:
    # "Agents", "Decisions" and "dots" were created on 2026-09-29 and are in that day's summary but
    # not in a components.json read earlier, as happens when the reader keeps its previous copy of
    # components.json after a failed fetch. The summary is the fresher source: "Agents" is degraded.
    summary = _parse(SUMMARY_INCIDENTS)
    merged = merge_parts(summary, [_parse(COMPONENTS)])
    statuses = {c.name: c.status for c in merged.components}
    new = {"Agents", "Decisions", "dots"}
    assert new <= statuses.keys(), (
        f"merge_parts dropped summary components absent from components.json: "
        f"{sorted(new - statuses.keys())} (merged {len(merged.components)} components, expected "
        f"34 from components.json + 3 only in the summary = 37)"
    )
    assert statuses["Agents"] is ComponentStatus.DEGRADED_PERFORMANCE


def test_merge_names_groups_the_partial_summary_could_not() -> None:
    # A partial summary (first 20 leaves, no group entries, as incident.io lists only some
    # components) merged with the full list, which has the groups. Twilio's real payload.
    full = _payload(TWILIO)
    partial = copy.deepcopy(full)
    partial["components"] = [c for c in full["components"] if not c["group"]][:20]
    summary = parse_statuspage(partial)
    assert all(c.group is None for c in summary.components)  # group_ids point outside the list
    merged = merge_parts(summary, [parse_statuspage(full)])
    groups = {c.id: c.group for c in merged.components}
    expected = {
        "7c6yv3vctfqv": "SERVERLESS",  # Studio, group_id m8p285mfbblr
        "g2dt752kwqs0": "PROGRAMMABLE VOICE",  # PSTN, group_id j3s4w3gnsj08
        "7d8w22hqrh6s": "CARRIER NETWORK",  # SMS Long Code, North America, group_id j8hlnyphbbs0
        "mq9q3ytpkyfz": "AUTHY",  # Authy 2FA, group_id vz5v126ykmgd
    }
    assert {ident: groups[ident] for ident in expected} == expected, (
        "merge_parts kept the summary's group-less entries although components.json names "
        "their groups"
    )


def test_incidents_json_adds_resolved_incidents() -> None:
    merged = merge_parts(_parse(SUMMARY_OPERATIONAL), [_parse(COMPONENTS), _parse(INCIDENTS)])
    assert len(merged.incidents) == 25
    assert merged.incidents[0].id == "01M2HYH64J2CZMZ63HEV2FCQFA"
    assert merged.incidents[-1].id == "01M0JXWD740S0Y50DWJZS7SH75"
    assert merged.open_incidents == ()


def test_incidents_json_completes_an_incident_the_summary_saw_open() -> None:
    # The summary read while the Agents API incident was still being monitored (two updates);
    # incidents.json already has its resolution.
    seen_open = _as_open(_incident(INCIDENTS, "01M2H3J1D6Y7RHAP49GRWGJAY0"), updates=2)
    assert seen_open["status"] == "monitoring"
    summary = _summary_with([seen_open])
    assert [i.is_open for i in summary.incidents] == [True]
    merged = merge_parts(summary, [_parse(INCIDENTS)])
    agents = next(i for i in merged.incidents if i.id == "01M2H3J1D6Y7RHAP49GRWGJAY0")
    assert agents.status == "resolved"
    assert len(agents.updates) == 3
    assert _doc(merged)["incidents"][0]["resolved_at"] == "2026-09-14T23:39:21Z"


def test_incidents_json_adds_a_postmortem() -> None:
    # incident.io pages post no postmortems; an Atlassian page that does (shape of
    # status.claude.com incident 9g6qpr72ttbr, resolved 22:51 UTC, postmortem 23:45 UTC).
    summary: dict[str, object] = {
        "page": {"id": "tymt9n04zgry", "name": "Claude", "url": "https://status.claude.com"},
        "status": {"indicator": "none", "description": "All Systems Operational"},
        "components": [{"id": "k8w3r06qmzrp", "name": "Claude API", "status": "operational"}],
        "incidents": [],
    }
    incidents = {
        "incidents": [
            {
                "id": "9g6qpr72ttbr",
                "name": "Elevated errors across many models",
                "status": "postmortem",
                "impact": "major",
                "created_at": "2025-12-14T21:31:00Z",
                "resolved_at": "2025-12-14T22:51:00Z",
                "shortlink": "https://stspg.io/9g6qpr72ttbr",
                "components": [{"id": "k8w3r06qmzrp"}],
                "incident_updates": [
                    {
                        "status": "postmortem",
                        "body": "Between 13:25 and 14:43 PT…",
                        "created_at": "2025-12-14T23:45:00Z",
                    },
                    {
                        "status": "resolved",
                        "body": "As of 14:43 PT / 22:43 UTC…",
                        "created_at": "2025-12-14T22:51:00Z",
                    },
                ],
            }
        ]
    }
    merged = merge_parts(parse_statuspage(summary), [parse_statuspage(incidents)])
    (postmortem,) = merged.incidents
    assert (postmortem.id, postmortem.status) == ("9g6qpr72ttbr", "postmortem")
    assert not postmortem.is_open
    assert [u.status for u in postmortem.updates] == ["postmortem", "resolved"]


# --- narrowing the shared OpenAI page to ChatGPT or the OpenAI API -------------------------------


def _ids(snapshot: Snapshot) -> list[str]:
    return [i.id for i in snapshot.incidents]


def test_chatgpt_gets_incidents_without_components_while_its_components_are_degraded() -> None:
    page = merge_parts(_parse(SUMMARY_INCIDENTS), [_parse(COMPONENTS)])
    chatgpt = service_view(page, CHATGPT)
    assert {c.name for c in chatgpt.components} == set(CHATGPT)
    assert _ids(chatgpt) == ["01M3Q4RK1SM4EMK445GGPG7C0N", "01M3Q4HMNP8SZ27DTZKW6F5BJ4"]


def test_chatgpt_gets_an_incident_whose_title_names_one_of_its_components() -> None:
    # Everything operational; the title says "conversations".
    incident = _as_open(_incident(INCIDENTS, "01M1D6E14BQSYQA3R5CNQBB7EB"), updates=1)
    assert incident["name"] == "Elevated errors in ChatGPT conversations for Free and Go plans"
    page = _summary_with([incident])
    assert all(c.status is ComponentStatus.OPERATIONAL for c in page.components)
    assert _ids(service_view(page, CHATGPT)) == ["01M1D6E14BQSYQA3R5CNQBB7EB"]
    assert _ids(service_view(page, OPENAI_API)) == []


@pytest.mark.parametrize(
    ("incident_id", "title"),
    [
        ("01M1CYZDD84XD0H56XNEV2PT98", "Elevated latency in the Responses API"),
        ("01M27VK1VN54RQJGJEHB5JTQJJ", "Elevated errors for GPT-5.6 Sol on the API"),
        ("01M2H3J1D6Y7RHAP49GRWGJAY0", "Degraded Performance affecting Agents API"),
    ],
    ids=["responses-api", "gpt-5.6-sol-api", "agents-api"],
)
def test_api_only_incidents_do_not_leak_to_chatgpt(incident_id: str, title: str) -> None:
    incident = _as_open(_incident(INCIDENTS, incident_id), updates=1)
    assert incident["name"] == title
    page = _summary_with([incident])
    chatgpt = service_view(page, CHATGPT)
    assert all(c.status is ComponentStatus.OPERATIONAL for c in chatgpt.components)
    assert _ids(chatgpt) == [], (
        f"API-only incident {title!r} (no components, every ChatGPT component operational) was "
        f"attributed to ChatGPT; ChatGPT's names are {CHATGPT}"
    )


def test_the_api_gets_an_incident_naming_its_component() -> None:
    incident = _as_open(_incident(INCIDENTS, "01M1CYZDD84XD0H56XNEV2PT98"), updates=1)
    page = _summary_with([incident])
    assert _ids(service_view(page, OPENAI_API)) == ["01M1CYZDD84XD0H56XNEV2PT98"]


# --- older Atlassian pages: local offsets, component groups --------------------------------------


def test_local_offset_timestamps_become_utc_z() -> None:
    doc = _doc(_parse(EMMA))
    incidents: list[dict[str, Any]] = doc["incidents"]
    by_id = {i["id"]: i for i in incidents}
    navigation = by_id["x0ljvc9m1wxj"]  # -06:00 (CST)
    assert (navigation["started_at"], navigation["resolved_at"]) == (
        "2019-02-20T18:00:19Z",  # 12:00:19.418-06:00
        "2019-02-20T19:40:58Z",  # 13:40:58.572-06:00
    )
    assert [u["created_at"] for u in navigation["updates"]] == [
        "2019-02-20T19:40:58Z",
        "2019-02-20T19:11:24Z",
        "2019-02-20T18:32:43Z",
        "2019-02-20T18:00:19Z",
    ]
    segments = by_id["407hb58lq8nq"]  # -05:00 (CDT)
    assert (segments["started_at"], segments["resolved_at"]) == (
        "2018-11-02T14:42:00Z",  # 09:42:00.645-05:00
        "2018-11-02T18:40:15Z",  # 13:40:15.859-05:00
    )
    stamps = [t for i in incidents for t in (i["started_at"], i["resolved_at"]) if t is not None]
    stamps += [u["created_at"] for i in incidents for u in i["updates"]]
    assert len(incidents) == 22
    assert all(UTC_Z.match(t) for t in stamps), [t for t in stamps if not UTC_Z.match(t)]


def test_component_groups_are_not_components() -> None:
    raw = _payload(TWILIO)["components"]
    group_ids = {c["id"] for c in raw if c["group"]}
    assert len(raw) == 73
    assert len(group_ids) == 8
    snapshot = _parse(TWILIO)
    assert len(snapshot.components) == 65
    assert not group_ids & {c.id for c in snapshot.components}
    assert "PROGRAMMABLE VOICE" not in {c.name for c in snapshot.components}
    groups = {c.id: (c.name, c.group) for c in snapshot.components}
    assert groups["7c6yv3vctfqv"] == ("Studio", "SERVERLESS")
    assert groups["g2dt752kwqs0"] == ("PSTN", "PROGRAMMABLE VOICE")
    assert groups["7d8w22hqrh6s"] == ("SMS Long Code, North America", "CARRIER NETWORK")
    assert groups["d1j2nx64rpq3"] == ("MMS", "PROGRAMMABLE MESSAGING")
    assert groups["jw9dh2mf4392"] == ("Billing", "TWILIO PLATFORM")
    assert groups["365164svr9y3"] == ("AUTOPILOT", None)  # a top-level leaf


# --- end to end: poll a fake incident.io page, read back what was stored -------------------------


@pytest.fixture
async def http() -> AsyncIterator[object]:
    async with new_http_session(user_agent="outagebot-tests") as session:
        yield session


def _catalog(url: str) -> Catalog:
    return parse_catalog(
        {
            "service": [
                {"id": "svc", "name": "Service", "source": [{"kind": "statuspage", "url": url}]}
            ]
        }
    )


async def test_poller_stores_every_component_of_an_incidentio_page(
    engine: AsyncEngine, clock: FakeClock, http: object
) -> None:
    async with FakeStatusServer() as server:
        server.set_script(SUMMARY_PATH, [Step.json(SUMMARY_OPERATIONAL.read_bytes())])
        server.set_script(COMPONENTS_PATH, [Step.json(COMPONENTS.read_bytes())])
        url = server.url(SUMMARY_PATH)
        poller = await make_poller(engine, clock, _catalog(url), http)
        await poller.poll_all()
        assert server.count(COMPONENTS_PATH) == 1
    async with session_factory(engine)() as session:
        stored = await source_store.load_snapshot(session=session, url=url)
    assert stored is not None
    assert [(c.id, c.name) for c in stored.components] == COMPONENTS_ORDER, (
        "the store should list components.json's 34 components, not only the summary's 25"
    )
    assert all(c.status is ComponentStatus.OPERATIONAL for c in stored.components)
    assert stored.indicator is Indicator.NONE
    assert stored.incidents == ()
    assert (stored.page.name, stored.page.url) == ("OpenAI", "https://status.openai.com/")
