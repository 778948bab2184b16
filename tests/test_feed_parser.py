"""RSS / Atom feed parser: real Statuspage and xAI feeds, hand cases, bad input, properties."""

from __future__ import annotations

import json
import random
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.status import Incident, Indicator, PageInfo, Snapshot
from bot.sources.errors import SourceFormatError
from bot.sources.feed import parse_feed_bytes
from bot.sources.snapshot_json import snapshot_to_json

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
GITHUB_ATOM = FIXTURES / "statuspage_github_2026-02-04-history.atom.xml"
GITHUB_RSS = FIXTURES / "statuspage_github_2026-02-04-history.rss.xml"
PARSE_RSS = FIXTURES / "statuspage_history.rss_parse.com_2014-01-09.xml"
XAI_RSS = FIXTURES / "xai_feed_2026-09-03_ai-status.xml"
ALL_FEEDS = (GITHUB_ATOM, GITHUB_RSS, PARSE_RSS, XAI_RSS)
ATOM_NS = {"a": "http://www.w3.org/2005/Atom"}


def _parse(path: Path, **options: object) -> Snapshot:
    return parse_feed_bytes(path.read_bytes(), options=options or None)


def _by_url(snapshot: Snapshot) -> dict[str | None, Incident]:
    return {incident.url: incident for incident in snapshot.incidents}


def _z(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _timeline(incident: Incident) -> list[tuple[str, str | None]]:
    return [(u.status, _z(u.created_at)) for u in incident.updates]


# --- GitHub history.atom / history.rss -------------------------------------------------------


def test_github_feeds_have_every_entry_and_update() -> None:
    for path in (GITHUB_ATOM, GITHUB_RSS):
        snapshot = _parse(path)
        assert snapshot.kind == "feed"
        assert len(snapshot.incidents) == 25
        # 128 <small> timestamps in each file, one per update.
        assert sum(len(i.updates) for i in snapshot.incidents) == 128
        assert snapshot.maintenances == ()
        assert snapshot.indicator is Indicator.NONE
        assert snapshot.page.name == "GitHub Status - Incident History"
        assert snapshot.page.url == "https://www.githubstatus.com"


def test_github_atom_and_rss_say_the_same() -> None:
    atom, rss = _parse(GITHUB_ATOM), _parse(GITHUB_RSS)
    assert [i.url for i in atom.incidents] == [i.url for i in rss.incidents]
    rss_by_url = _by_url(rss)
    for mine in atom.incidents:
        theirs = rss_by_url[mine.url]
        assert (mine.name, mine.status, mine.impact) == (theirs.name, theirs.status, theirs.impact)
        assert (mine.started_at, mine.resolved_at) == (theirs.started_at, theirs.resolved_at)
        assert mine.updates == theirs.updates, mine.url
        # Atom ids are tag: URIs, RSS guids are the incident links.
        assert mine.id.startswith("tag:www.githubstatus.com,2005:Incident/")
        assert theirs.id == theirs.url


def test_github_delays_in_ui_updates() -> None:
    incident = _by_url(_parse(GITHUB_ATOM))["https://www.githubstatus.com/incidents/f314nlctbfs5"]
    assert incident.id == "tag:www.githubstatus.com,2005:Incident/28343178"
    assert incident.name == "Delays in UI updates for Actions Runs"
    assert incident.status == "resolved"
    assert _timeline(incident) == [
        ("resolved", "2026-02-03T19:28Z"),
        ("update", "2026-02-03T18:06Z"),
        ("update", "2026-02-03T16:51Z"),
        ("investigating", "2026-02-03T16:10Z"),
    ]
    assert _z(incident.started_at) == "2026-02-03T16:10Z"
    assert _z(incident.resolved_at) == "2026-02-03T19:28Z"
    assert incident.updates[1].body == (
        "Our telemetry shows improvement on latency in job status updates. "
        "We will continue monitoring until full recovery."
    )
    assert incident.updates[2].body.startswith("We've applied a mitigation")
    assert incident.updates[3].body == (
        "We are investigating reports of degraded performance for Actions"
    )
    # <br /><br /> inside the Resolved body is a paragraph break.
    resolved = incident.updates[0].body
    assert resolved.startswith("On February 3, 2026, between 14:00 UTC and 17:40 UTC, customers")
    assert (
        "with a median delay of 6 minutes.\n\nThe issue stemmed from connection churn" in resolved
    )
    assert resolved.endswith("to prevent recurrence.")
    # GitHub's own first message says "degraded performance".
    assert incident.impact == "minor"


def test_github_spot_checks() -> None:
    incidents = _by_url(_parse(GITHUB_RSS))
    dependabot = incidents["https://www.githubstatus.com/incidents/g9mdtzd4rt72"]
    assert dependabot.name == "Disruption with some GitHub services"
    assert _timeline(dependabot) == [
        ("resolved", "2026-02-02T18:46Z"),
        ("update", "2026-02-02T17:58Z"),
        ("investigating", "2026-02-02T17:41Z"),
    ]
    assert dependabot.impact == "unknown"

    # Sixteen updates across midnight; two posted in the same minute keep the feed's order.
    actions = incidents["https://www.githubstatus.com/incidents/xwn6hjps36ty"]
    assert len(actions.updates) == 16
    assert _timeline(actions)[:3] == [
        ("resolved", "2026-02-03T00:56Z"),
        ("update", "2026-02-03T00:56Z"),
        ("update", "2026-02-02T23:50Z"),
    ]
    assert _timeline(actions)[-1] == ("investigating", "2026-02-02T19:03Z")
    assert actions.updates[1].body == "Actions is operating normally."

    retroactive = incidents["https://www.githubstatus.com/incidents/sq20c7lrwjrp"]
    assert retroactive.name == "[Retroactive] Incident with GitHub Copilot (GPT-5 model)"
    assert _timeline(retroactive) == [("resolved", "2026-01-14T18:00Z")]
    assert retroactive.started_at == retroactive.resolved_at

    assert (
        incidents["https://www.githubstatus.com/incidents/j8t05z0nh91f"].name
        == "Copilot's GPT-5.1 model has degraded performance"
    )


def test_github_resolved_at_is_the_published_minute() -> None:
    # Statuspage stamps an entry's <published> with the moment it was resolved.
    root = ET.parse(GITHUB_ATOM).getroot()
    published = {
        entry.findtext("a:id", namespaces=ATOM_NS): entry.findtext(
            "a:published", namespaces=ATOM_NS
        )
        for entry in root.iterfind("a:entry", ATOM_NS)
    }
    snapshot = _parse(GITHUB_ATOM)
    assert len(published) == len(snapshot.incidents)
    for incident in snapshot.incidents:
        assert _z(incident.resolved_at) == (published[incident.id] or "")[:16] + "Z", incident.id


# --- Parse.com history.rss (2014, PST) -------------------------------------------------------


def test_parse_pst_becomes_utc() -> None:
    incidents = _by_url(_parse(PARSE_RSS))
    new_year = incidents["http://status.parse.com/incidents/lzf7mjchpy20"]
    assert _timeline(new_year) == [
        ("resolved", "2014-01-01T17:09Z"),
        ("identified", "2014-01-01T17:00Z"),
        ("investigating", "2014-01-01T16:17Z"),
    ]
    # The next entry back is from the year before.
    analytics = incidents["http://status.parse.com/incidents/x7yb1mmd4721"]
    assert _timeline(analytics)[-1] == ("identified", "2013-12-29T16:04Z")


def test_parse_summer_times_labelled_pst_are_daylight_time() -> None:
    # "Oct 28, 14:48 PST", while the item's pubDate says "Mon, 28 Oct 2013 14:48:00 -0700".
    incident = _by_url(_parse(PARSE_RSS))["http://status.parse.com/incidents/gtdv7rgyn76g"]
    assert _timeline(incident) == [
        ("resolved", "2013-10-28T21:48Z"),
        ("identified", "2013-10-28T21:43Z"),
    ]


def test_parse_resolved_update_is_the_pubdate_minute() -> None:
    channel = ET.parse(PARSE_RSS).getroot().find("channel")
    assert channel is not None
    items = channel.findall("item")
    snapshot = _parse(PARSE_RSS)
    assert len(items) == len(snapshot.incidents) == 17
    for item, incident in zip(items, snapshot.incidents, strict=True):
        pub_date = parsedate_to_datetime(item.findtext("pubDate") or "")
        resolved = [u for u in incident.updates if u.status == "resolved"]
        assert len(resolved) == 1, incident.url
        assert _z(resolved[0].created_at) == _z(pub_date), incident.url


def test_parse_postmortem() -> None:
    incident = _by_url(_parse(PARSE_RSS))["http://status.parse.com/incidents/p9hy357zjvb3"]
    assert incident.name == "Elevated error rates and latency"
    assert incident.status == "postmortem"
    assert not incident.is_open
    assert _timeline(incident) == [
        ("postmortem", "2013-12-26T18:22Z"),
        ("resolved", "2013-12-24T19:21Z"),
        ("investigating", "2013-12-24T16:58Z"),
    ]
    # Resolved when the Resolved update says, not when the postmortem was written.
    assert _z(incident.resolved_at) == "2013-12-24T19:21Z"
    assert _z(incident.started_at) == "2013-12-24T16:58Z"
    postmortem = incident.updates[0].body
    assert postmortem.startswith("# Summary of the December 24 Parse Service Disruption\n\n")
    assert "\n* Rearchitecting our client discovery process" in postmortem
    assert postmortem.endswith("through our [Help & Community](https://parse.com/help) portal.")


# --- xAI status.x.ai/feed.xml ----------------------------------------------------------------


def test_xai_feed() -> None:
    snapshot = _parse(XAI_RSS)
    assert snapshot.page.name == "SpaceXAI System Status"
    assert snapshot.page.url == "https://status.x.ai"
    assert snapshot.indicator is Indicator.NONE
    (incident,) = snapshot.incidents
    assert incident.id == "INC702624e4"
    assert incident.name == "[API Console] Console not loading"
    assert incident.url == "https://status.x.ai/api-console/INC702624e4"
    assert incident.status == "resolved"
    assert incident.impact == "unknown"
    # Started at pubDate; last updated at the newest time its description lists.
    assert _z(incident.started_at) == "2026-05-18T01:58Z"
    assert _z(incident.resolved_at) == "2026-05-18T12:00Z"
    (update,) = incident.updates
    assert update.status == "resolved"
    assert update.body.startswith("Severity: available")
    assert update.body.endswith("The issue has been resolved.")
    assert "Status:" not in update.body


# --- hand-written feeds ----------------------------------------------------------------------


def _rss(*items: str, title: str = "Example Status") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://status.example.com</link>{''.join(items)}"
        "</channel></rss>"
    ).encode()


def _item(
    title: str, description: str, *, pub: str = "Mon, 01 Jun 2026 10:00:00 +0000", guid: str = ""
) -> str:
    guid_xml = f"<guid>{guid}</guid>" if guid else ""
    return (
        f"<item><title>{title}</title><description><![CDATA[{description}]]></description>"
        f"<pubDate>{pub}</pubDate>{guid_xml}</item>"
    )


def _statuspage(*updates: tuple[str, str, str]) -> str:
    """Statuspage history markup for (time text, status word, body) updates, newest first."""
    return "".join(
        f"<p><small>{when}</small><br><strong>{status}</strong> - {body}</p>"
        for when, status, body in updates
    )


def test_zero_entries_is_a_calm_page() -> None:
    body = b'<rss version="2.0"><channel><title>Azure Status</title></channel></rss>'
    snapshot = parse_feed_bytes(body)
    assert snapshot.indicator is Indicator.NONE
    assert snapshot.incidents == snapshot.maintenances == ()
    assert snapshot.page.name == "Azure Status"
    assert snapshot.page.url is None


def test_updates_across_new_year_get_the_right_year() -> None:
    before = _statuspage(
        ("Jan 1, 00:20 UTC", "Resolved", "Done."),
        ("Dec 31, 23:40 UTC", "Investigating", "Looking."),
    )
    after = _statuspage(
        ("Jan 2, 09:00 UTC", "Postmortem", "What happened."),
        ("Dec 31, 23:50 UTC", "Resolved", "Done."),
    )
    snapshot = parse_feed_bytes(
        _rss(
            _item("A", before, pub="Fri, 01 Jan 2021 00:20:00 +0000"),
            _item("B", after, pub="Thu, 31 Dec 2020 23:50:00 +0000"),
        )
    )
    first, second = snapshot.incidents
    assert _timeline(first) == [
        ("resolved", "2021-01-01T00:20Z"),
        ("investigating", "2020-12-31T23:40Z"),
    ]
    assert _timeline(second) == [
        ("postmortem", "2021-01-02T09:00Z"),
        ("resolved", "2020-12-31T23:50Z"),
    ]


def test_zone_abbreviations_and_clock_formats() -> None:
    updates = _statuspage(
        ("Jul 4, 10:00 EDT", "Resolved", "a"),
        ("Jul 4, 08:00 CDT", "Monitoring", "b"),
        ("Jul 4, 06:00 MST", "Identified", "c"),
        ("Jul 4, 2:15 AM PDT", "Update", "d"),
        ("Jul 4, 12:30 AM UTC", "Update", "e"),
        ("Jul 3, 10:33 PM XYZ", "Investigating", "f"),
    )
    winter = _statuspage(
        ("Jan 15, 10:00 EST", "Resolved", "a"),
        ("Jan 15, 3:00 PM CST", "Update", "b"),
        ("Jan 15, 09:00 CET", "Update", "c"),
    )
    snapshot = parse_feed_bytes(
        _rss(
            _item("Summer", updates, pub="Sat, 04 Jul 2026 14:00:00 +0000"),
            _item("Winter", winter, pub="Thu, 15 Jan 2026 15:00:00 +0000"),
        )
    )
    summer, cold = snapshot.incidents
    assert _timeline(summer) == [
        ("resolved", "2026-07-04T14:00Z"),
        ("monitoring", "2026-07-04T13:00Z"),
        # MST in July is Mountain time's daylight offset, as with Parse's "PST" (see above).
        ("identified", "2026-07-04T12:00Z"),
        ("update", "2026-07-04T09:15Z"),
        ("update", "2026-07-04T00:30Z"),
        # An unknown abbreviation is read as UTC.
        ("investigating", "2026-07-03T22:33Z"),
    ]
    assert _timeline(cold) == [
        ("update", "2026-01-15T21:00Z"),
        ("resolved", "2026-01-15T15:00Z"),
        ("update", "2026-01-15T08:00Z"),
    ]


def test_open_statuspage_incident_and_status_words() -> None:
    html = _statuspage(
        ("Jun 1, 10:05 UTC", "MONITORING", "A fix has been deployed."),
        ("Jun 1, 10:00 UTC", "Identified", "The issue has been identified."),
    )
    snapshot = parse_feed_bytes(_rss(_item("Errors &amp; timeouts", html)))
    (incident,) = snapshot.incidents
    assert incident.name == "Errors & timeouts"
    assert [u.status for u in incident.updates] == ["monitoring", "identified"]
    assert incident.is_open
    assert snapshot.indicator is Indicator.MINOR


def test_incident_io_style_status_line() -> None:
    # The shape incident.io pages (status.openai.com/feed.atom) publish: one entry per incident.
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>OpenAI status</title>
<link rel="alternate" href="https://status.openai.com/"/>
<entry><title type="html"><![CDATA[Elevated errors &amp; latency]]></title>
<id>https://status.openai.com//incidents/01AAA</id>
<link href="https://status.openai.com//incidents/01AAA"/>
<updated>2026-09-03T14:58:23.907Z</updated>
<summary type="html"><![CDATA[<b>Status: Investigating</b><br/><br/>We are investigating.<br/><br/>
<b>Affected components</b><ul><li>Search (Degraded performance)</li></ul>]]></summary></entry>
<entry><title type="html"><![CDATA[Sora 2 Degraded Performance]]></title>
<id>https://status.openai.com//incidents/01BBB</id>
<link href="https://status.openai.com//incidents/01BBB"/>
<updated>2026-09-02T10:00:00.000Z</updated>
<summary type="html"><![CDATA[<b>Status: Resolved</b><br/><br/>All impacted services have now
fully recovered.]]></summary></entry></feed>"""
    snapshot = parse_feed_bytes(body)
    assert snapshot.page == PageInfo("OpenAI status", "https://status.openai.com/")
    assert snapshot.indicator is Indicator.MINOR
    open_one, closed = snapshot.incidents
    assert (open_one.id, open_one.name, open_one.status) == (
        "https://status.openai.com//incidents/01AAA",
        "Elevated errors & latency",
        "investigating",
    )
    assert open_one.resolved_at is None
    assert open_one.updates[0].body.startswith("We are investigating.\n\nAffected components")
    assert _z(open_one.updates[0].created_at) == "2026-09-03T14:58Z"
    assert closed.status == "resolved"
    assert _z(closed.resolved_at) == "2026-09-02T10:00Z"
    # The title's own words: "Degraded Performance".
    assert closed.impact == "minor"


@pytest.mark.parametrize(
    ("title", "description", "status", "impact"),
    [
        ("API errors", "We are investigating elevated errors.", "investigating", "unknown"),
        ("API errors", "A fix has been identified.", "identified", "unknown"),
        ("API errors", "We are monitoring the results.", "monitoring", "unknown"),
        ("API errors", "This incident has been resolved.", "resolved", "unknown"),
        ("API errors", "All systems <b>operational</b>.", "resolved", "unknown"),
        ("Major outage of the API", "Nothing works.", "investigating", "major"),
        ("Chat", "Partial outage for some users.", "investigating", "minor"),
        ("Azure OpenAI - Degraded experience", "", "investigating", "unknown"),
    ],
)
def test_single_entry_status_from_words(
    title: str, description: str, status: str, impact: str
) -> None:
    (incident,) = parse_feed_bytes(_rss(_item(title, description, guid="g1"))).incidents
    assert (incident.id, incident.status, incident.impact) == ("g1", status, impact)
    assert [u.status for u in incident.updates] == [status]
    assert _z(incident.started_at) == "2026-06-01T10:00Z"
    closed = status == "resolved"
    assert _z(incident.resolved_at) == ("2026-06-01T10:00Z" if closed else None)


def test_ids_fall_back_to_link_then_a_hash() -> None:
    items = (
        "<item><title>With link</title><link>https://s.example/i/1</link></item>",
        "<item><title>Bare</title><pubDate>Mon, 01 Jun 2026 10:00:00 +0000</pubDate></item>",
        "<item><title>Bare</title><pubDate>Mon, 01 Jun 2026 11:00:00 +0000</pubDate></item>",
        "<item><description>no title</description><guid>skipped</guid></item>",
    )
    incidents = parse_feed_bytes(_rss(*items)).incidents
    assert [i.name for i in incidents] == ["With link", "Bare", "Bare"]
    assert incidents[0].id == "https://s.example/i/1"
    assert incidents[1].id.startswith("feed-")
    assert incidents[1].id != incidents[2].id
    assert parse_feed_bytes(_rss(*items)).incidents[1].id == incidents[1].id
    # No time at all: no update, and the incident stays open.
    assert incidents[0].updates == ()
    assert incidents[0].is_open


def test_statuspage_maintenance() -> None:
    window = (
        "<p><strong>THIS IS A SCHEDULED EVENT Apr <var data-var='date'>7</var>, "
        "<var data-var='time'>13:00</var> - <var data-var='time'>17:00</var> UTC</strong></p>"
    )
    scheduled = window + _statuspage(
        ("Mar 16, 07:27 UTC", "Scheduled", "We will be performing scheduled maintenance.")
    )
    running = _statuspage(
        ("Mar 20, 23:30 UTC", "In progress", "Under way."),
        (
            "Mar 16, 07:00 UTC",
            "Scheduled",
            "Scheduled for Mar 20, 23:00 UTC until Mar 21, 01:00 UTC",
        ),
    )
    after_maintenance = _statuspage(("Mar 16, 08:00 UTC", "Investigating", "Errors."))
    snapshot = parse_feed_bytes(
        _rss(
            _item("PDX (Portland) on 2026-04-07", scheduled, pub="Mon, 16 Mar 2026 07:27:49 +0000"),
            _item("Database upgrade", running, pub="Fri, 20 Mar 2026 23:30:00 +0000"),
            _item("Errors after maintenance", after_maintenance),
        )
    )
    pdx, upgrade = snapshot.maintenances
    assert (pdx.name, pdx.status) == ("PDX (Portland) on 2026-04-07", "scheduled")
    assert (_z(pdx.scheduled_for), _z(pdx.scheduled_until)) == (
        "2026-04-07T13:00Z",
        "2026-04-07T17:00Z",
    )
    assert upgrade.status == "in_progress"
    assert (_z(upgrade.scheduled_for), _z(upgrade.scheduled_until)) == (
        "2026-03-20T23:00Z",
        "2026-03-21T01:00Z",
    )
    assert [i.name for i in snapshot.incidents] == ["Errors after maintenance"]
    assert snapshot.indicator is Indicator.MINOR


def test_maintenance_without_markup_and_the_maintenance_indicator() -> None:
    items = (
        _item(
            "Scheduled maintenance: API", "Scheduled for Jun 3, 02:00 UTC until Jun 3, 04:00 UTC"
        ),
        _item("Dashboard maintenance", "Maintenance is in progress."),
        _item("Network maintenance", "The maintenance has been completed."),
    )
    snapshot = parse_feed_bytes(_rss(*items))
    assert snapshot.incidents == ()
    assert [m.status for m in snapshot.maintenances] == ["scheduled", "in_progress", "completed"]
    first = snapshot.maintenances[0]
    assert (_z(first.scheduled_for), _z(first.scheduled_until)) == (
        "2026-06-03T02:00Z",
        "2026-06-03T04:00Z",
    )
    assert snapshot.maintenances[1].scheduled_for is None
    assert snapshot.indicator is Indicator.MAINTENANCE


# --- the match option ------------------------------------------------------------------------


def test_match_keeps_entries_mentioning_it_in_title_or_summary() -> None:
    items = (
        _item("Azure OpenAI - Degraded experience", "Errors in East US.", guid="a"),
        _item("Virtual Machines - East US", "Also affects azure openai customers.", guid="b"),
        _item("Storage - West Europe", "Increased latency.", guid="c"),
    )
    body = _rss(*items, title="Azure Status")
    assert [i.id for i in parse_feed_bytes(body, options={"match": "OpenAI"}).incidents] == [
        "a",
        "b",
    ]
    assert [i.id for i in parse_feed_bytes(body, options={"match": "storage"}).incidents] == ["c"]
    assert parse_feed_bytes(body, options={"match": "Cosmos"}).incidents == ()
    assert len(parse_feed_bytes(body, options={}).incidents) == 3
    assert len(parse_feed_bytes(body, options={"other": 1}).incidents) == 3


def test_match_on_the_github_feed() -> None:
    # Which entries mention Copilot, read straight from the XML.
    root = ET.parse(GITHUB_ATOM).getroot()
    expected = [
        entry.findtext("a:id", namespaces=ATOM_NS)
        for entry in root.iterfind("a:entry", ATOM_NS)
        if "copilot"
        in re.sub(
            r"<[^>]+>",
            "",
            (entry.findtext("a:title", namespaces=ATOM_NS) or "")
            + (entry.findtext("a:content", namespaces=ATOM_NS) or ""),
        ).lower()
    ]
    kept = _parse(GITHUB_ATOM, match="COPILOT").incidents
    assert [i.id for i in kept] == expected
    assert 0 < len(kept) < 25


@pytest.mark.parametrize("bad", [5, "", "  ", ["OpenAI"]])
def test_a_misconfigured_match_is_an_error(bad: object) -> None:
    with pytest.raises(TypeError):
        parse_feed_bytes(XAI_RSS.read_bytes(), options={"match": bad})


# --- the check --json contract ---------------------------------------------------------------


def _assert_contract_shape(doc: dict[str, Any]) -> None:
    """The keys and types of Statuspage's check --json shape, with kind "feed"."""
    assert set(doc) == {"kind", "page", "indicator", "components", "incidents", "maintenances"}
    assert doc["kind"] == "feed"
    assert set(doc["page"]) == {"name", "url"}
    assert doc["indicator"] in {i.value for i in Indicator}
    assert doc["components"] == []
    for incident in doc["incidents"]:
        assert set(incident) == {
            *("id", "name", "status", "impact", "started_at", "resolved_at", "url", "updates")
        }
        assert all(isinstance(incident[k], str) and incident[k] for k in ("id", "name", "status"))
        assert _timestamp_or_none(incident["started_at"])
        assert _timestamp_or_none(incident["resolved_at"])
        for update in incident["updates"]:
            assert set(update) == {"status", "body", "created_at"}
            assert isinstance(update["body"], str)
            assert update["created_at"] is not None
            assert _timestamp_or_none(update["created_at"])
    for maintenance in doc["maintenances"]:
        assert set(maintenance) == {"id", "name", "status", "scheduled_for", "scheduled_until"}
        assert _timestamp_or_none(maintenance["scheduled_for"])
        assert _timestamp_or_none(maintenance["scheduled_until"])
    json.dumps(doc)


def _timestamp_or_none(value: object) -> bool:
    """None, or ISO 8601 UTC to the second ending in Z (20 characters)."""
    if value is None:
        return True
    return isinstance(value, str) and len(value) == 20 and value.endswith("Z") and value[10] == "T"


@pytest.mark.parametrize("path", ALL_FEEDS, ids=lambda p: p.stem)
def test_fixture_has_the_contract_shape(path: Path) -> None:
    doc = snapshot_to_json(_parse(path))
    _assert_contract_shape(doc)
    assert doc["incidents"]


def test_contract_values_for_one_incident() -> None:
    doc = snapshot_to_json(_parse(PARSE_RSS))
    assert doc["page"] == {
        "name": "Parse Status - Incident History",
        "url": "http://status.parse.com",
    }
    assert doc["indicator"] == "none"
    first = doc["incidents"][0]
    assert {k: v for k, v in first.items() if k != "updates"} == {
        "id": "http://status.parse.com/incidents/lzf7mjchpy20",
        "name": "Elevated error rates",
        "status": "resolved",
        "impact": "unknown",
        "started_at": "2014-01-01T16:17:00Z",
        "resolved_at": "2014-01-01T17:09:00Z",
        "url": "http://status.parse.com/incidents/lzf7mjchpy20",
    }
    assert first["updates"][0] == {
        "status": "resolved",
        "body": "We have restored the system to its normal level of operation.",
        "created_at": "2014-01-01T17:09:00Z",
    }


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", id="html"),
        pytest.param(
            b"\n  <html lang='en'><head><title>Just a moment...</title></head>", id="html2"
        ),
        pytest.param(b"", id="empty"),
        pytest.param(b"   \n", id="blank"),
        pytest.param(b'{"status": {"indicator": "none"}}', id="json"),
        pytest.param(b'<?xml version="1.0"?><root><item>1</item></root>', id="other-xml"),
        pytest.param(GITHUB_ATOM.read_bytes()[:300], id="truncated-header"),
        pytest.param(random.Random(7).randbytes(400), id="random"),
        # feedparser opens a bare bytes value naming a file; the parser must never let it.
        pytest.param(str(GITHUB_ATOM).encode(), id="file-path"),
        pytest.param(b"/etc/hostname", id="system-path"),
    ],
)
def test_unusable_bodies_raise_source_format_error(body: bytes) -> None:
    with pytest.raises(SourceFormatError) as caught:
        parse_feed_bytes(body)
    message = str(caught.value)
    assert message
    assert "\n" not in message
    assert len(message) < 200


def test_truncated_feed_parses_the_entries_it_has_or_is_rejected() -> None:
    full = _parse(GITHUB_ATOM)
    body = GITHUB_ATOM.read_bytes()
    for cut in (len(body) // 2, len(body) // 3, 2000):
        try:
            partial = parse_feed_bytes(body[:cut])
        except SourceFormatError:
            continue
        _assert_invariants(partial)
        ids = [i.id for i in partial.incidents]
        assert ids == [i.id for i in full.incidents[: len(ids)]]
        # Every entry but the cut one is whole.
        assert partial.incidents[:-1] == full.incidents[: len(ids) - 1]


# --- properties ------------------------------------------------------------------------------


def _assert_invariants(snapshot: Snapshot) -> None:
    """What any returned Snapshot promises, whatever bytes it came from."""
    assert snapshot.kind == "feed"
    for incident in snapshot.incidents:
        assert incident.id
        assert incident.name
        stamps = [
            incident.started_at,
            incident.resolved_at,
            *(u.created_at for u in incident.updates),
        ]
        assert all(s is None or s.tzinfo is not None for s in stamps)
        created = [u.created_at for u in incident.updates]
        assert created == sorted(created, reverse=True)
    for maintenance in snapshot.maintenances:
        assert maintenance.id
        stamps = [maintenance.scheduled_for, maintenance.scheduled_until]
        assert all(s is None or s.tzinfo is not None for s in stamps)
    _assert_contract_shape(snapshot_to_json(snapshot))


def _parse_or_reject(body: bytes) -> None:
    """Parse; a SourceFormatError is an answer, any other exception fails the test."""
    try:
        snapshot = parse_feed_bytes(body)
    except SourceFormatError:
        return
    _assert_invariants(snapshot)


@st.composite
def _mutated_fixture(draw: st.DrawFn) -> bytes:
    """A real feed with a few random byte flips, deletions, insertions or a truncation."""
    body = bytearray(draw(st.sampled_from(ALL_FEEDS)).read_bytes())
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        if not body:
            break
        at = draw(st.integers(min_value=0, max_value=len(body) - 1))
        action = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if action == "flip":
            body[at] = draw(st.integers(min_value=0, max_value=255))
        elif action == "delete":
            del body[at : at + draw(st.integers(min_value=1, max_value=64))]
        elif action == "insert":
            body[at:at] = draw(st.sampled_from([b"<", b"&", b"]]>", b"<small>", b"\x00", b"\xff"]))
        else:
            del body[at:]
    return bytes(body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_only_ever_raise_source_format_error(body: bytes) -> None:
    _parse_or_reject(body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_fixture())
def test_mutated_fixtures_only_ever_raise_source_format_error(body: bytes) -> None:
    _parse_or_reject(body)
