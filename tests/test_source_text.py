"""Status-page text is cleaned at parse time: no terminal escapes, forged log lines or bidi tricks.

Every parser is fed the same hostile strings in the fields a person reads (page, component,
incident and maintenance names, statuses, update bodies). Names come out on one printable line;
bodies keep their paragraphs (\\n) and lose everything else that is not text.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator

import pytest

from bot.core.status import Snapshot
from bot.core.text import clean_source_line, clean_source_text
from bot.sources.check import render_summary
from bot.sources.feed import parse_feed_bytes
from bot.sources.gcloud import parse_gcloud_bytes
from bot.sources.json_values import UNNAMED
from bot.sources.statuspage import parse_statuspage_bytes
from bot.sources.statuspage_webhook import parse_webhook

ESC_CLEAR = "\x1b[2J\x1b[H"  # clears the operator's terminal
OSC_TITLE = "\x1b]0;owned\x07"  # sets the terminal title
C1_CSI = "\x9b31m"  # the one-byte C1 form of ESC [
FORGED_LOG = "\n2026-10-07 10:00:00 INFO bot.sources: all services operational"
BIDI = "\u202etxt.exe\u202c \u2066isolated\u2069 \u200fmark"
HOSTILE_NAME = f"API errors{ESC_CLEAR}{OSC_TITLE}{C1_CSI}\r{FORGED_LOG} {BIDI}"
# Paragraphs are real text; the CRLF ends and the escapes are not.
HOSTILE_BODY = f"We are investigating.\r\n\r\nNext update soon.{ESC_CLEAR}\u2028{C1_CSI}{BIDI}"
BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _bad(ch: str, allowed: str) -> bool:
    return ch not in allowed and (
        unicodedata.category(ch) in {"Cc", "Zl", "Zp"} or ch in BIDI_CONTROLS
    )


def assert_line(text: str | None) -> None:
    assert text is not None
    assert not [ch for ch in text if _bad(ch, "")], repr(text)
    assert len(text.splitlines()) <= 1, repr(text)


def assert_body(text: str) -> None:
    assert not [ch for ch in text if _bad(ch, "\n\t")], repr(text)


def readable_texts(snapshot: Snapshot) -> Iterator[tuple[str, str | None]]:
    """(kind, text) of every field a person reads."""
    for optional in (snapshot.page.name, snapshot.description):
        if optional is not None:
            yield "line", optional
    for component in snapshot.components:
        yield "line", component.name
        if component.group is not None:
            yield "line", component.group
    for incident in snapshot.incidents:
        yield from (("line", incident.name), ("line", incident.status), ("line", incident.impact))
        for update in incident.updates:
            yield "line", update.status
            yield "body", update.body
    for maintenance in snapshot.maintenances:
        yield from (("line", maintenance.name), ("line", maintenance.status))


def assert_clean(snapshot: Snapshot) -> None:
    texts = list(readable_texts(snapshot))
    assert len(texts) > 3
    for kind, text in texts:
        if kind == "line":
            assert_line(text)
        else:
            assert text is not None
            assert_body(text)
    # What `outagebot check` prints is built from these fields: no escape reaches the console.
    assert "\x1b" not in render_summary(snapshot, origin="test")


# --- the cleaners ----------------------------------------------------------------------------


def test_line_keeps_the_words_and_drops_the_controls() -> None:
    cleaned = clean_source_line(HOSTILE_NAME)
    assert_line(cleaned)
    assert cleaned.startswith("API errors[2J[H]0;owned31m")
    assert "all services operational" in cleaned  # the words stay, on the same line
    assert "txt.exe" in cleaned


def test_body_keeps_paragraphs_and_drops_the_rest() -> None:
    cleaned = clean_source_text(HOSTILE_BODY)
    assert_body(cleaned)
    assert cleaned.startswith("We are investigating.\n\nNext update soon.[2J[H\n31mtxt.exe")


@pytest.mark.parametrize(
    "text", ["Störung der API", "👩\u200d💻 Codex", "Résolu\tsoon", "日本語の障害", ""]
)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert clean_source_text(text) == text
    assert clean_source_line(text) == text.replace("\t", " ")


# --- every parser ------------------------------------------------------------------------------


def _statuspage_payload() -> dict[str, object]:
    update = {"id": "u1", "status": "investigating", "body": HOSTILE_BODY}
    return {
        "page": {"id": "p", "name": f"Example{OSC_TITLE}", "url": "https://status.example.com"},
        "status": {"indicator": "major", "description": f"Partial{ESC_CLEAR} Outage"},
        "components": [
            {"id": "g", "name": f"Group{BIDI}", "status": "operational", "group": True},
            {"id": "c", "name": HOSTILE_NAME, "status": "major_outage", "group_id": "g"},
        ],
        "incidents": [
            {
                "id": "i",
                "name": HOSTILE_NAME,
                "status": f"investigating{ESC_CLEAR}",
                "impact": "major",
                "created_at": "2026-10-07T10:00:00Z",
                "incident_updates": [{**update, "created_at": "2026-10-07T10:00:00Z"}],
            }
        ],
        "scheduled_maintenances": [
            {"id": "m", "name": HOSTILE_NAME, "status": "scheduled", "impact": "maintenance"}
        ],
    }


def test_statuspage_fields_are_clean() -> None:
    snapshot = parse_statuspage_bytes(json.dumps(_statuspage_payload()).encode())
    assert_clean(snapshot)
    assert snapshot.incidents[0].updates[0].body.startswith("We are investigating.\n\nNext")
    assert snapshot.components[0].group == "Grouptxt.exe isolated mark"


def test_incident_io_summary_fields_are_clean() -> None:
    # incident.io's summary.json: no `incidents` key when calm, incidents without components.
    payload = _statuspage_payload()
    del payload["scheduled_maintenances"]
    incident = payload["incidents"][0]  # type: ignore[index]
    del incident["created_at"]
    assert_clean(parse_statuspage_bytes(json.dumps(payload).encode()))


def test_pushed_webhook_fields_are_clean() -> None:
    incident = _statuspage_payload()["incidents"][0]  # type: ignore[index]
    body = json.dumps({"incident": {**incident, "components": [{"id": "c", "name": HOSTILE_NAME}]}})
    fragment = parse_webhook(body.encode())
    assert_clean(fragment)


def test_a_name_of_only_controls_still_counts() -> None:
    payload = {"incidents": [{"id": "i", "name": "\x1b\r\n\u202e", "status": "investigating"}]}
    snapshot = parse_statuspage_bytes(json.dumps(payload).encode())
    assert [i.name for i in snapshot.incidents] == [UNNAMED]  # an outage is not dropped


def _xml_text(text: str) -> str:
    """Text as XML 1.0 can carry it: controls only as the character references pages use."""
    return "".join(
        f"&#{ord(ch)};" if unicodedata.category(ch) == "Cc" and ch not in "\n\t" else ch
        for ch in text.replace("&", "&amp;").replace("<", "&lt;")
    )


ATOM = f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en-US">
  <id>tag:status.example.com,2005:/history</id>
  <link rel="alternate" type="text/html" href="https://status.example.com"/>
  <title>Example Status{_xml_text(OSC_TITLE)}</title>
  <updated>2026-10-07T10:30:00Z</updated>
  <entry>
    <id>tag:status.example.com,2005:Incident/1</id>
    <published>2026-10-07T10:00:00Z</published>
    <updated>2026-10-07T10:30:00Z</updated>
    <link rel="alternate" type="text/html" href="https://status.example.com/incidents/1"/>
    <title>{_xml_text(HOSTILE_NAME)}</title>
    <content type="html">&lt;p&gt;&lt;small&gt;Oct &lt;var data-var='date'&gt;7&lt;/var&gt;,
      &lt;var data-var='time'&gt;10:30&lt;/var&gt; UTC&lt;/small&gt;&lt;br&gt;&lt;strong&gt;
      Investigating{_xml_text(ESC_CLEAR)}&lt;/strong&gt; - {_xml_text(_xml_text(HOSTILE_BODY))}
      &lt;/p&gt;</content>
  </entry>
  <entry>
    <id>tag:status.example.com,2005:Incident/2</id>
    <published>2026-10-07T09:00:00Z</published>
    <link rel="alternate" type="text/html" href="https://status.example.com/incidents/2"/>
    <title type="html">{_xml_text(_xml_text(HOSTILE_NAME))}</title>
    <summary type="html">Status: Investigating{_xml_text(_xml_text(HOSTILE_BODY))}</summary>
  </entry>
</feed>
"""


def test_feed_fields_are_clean() -> None:
    snapshot = parse_feed_bytes(ATOM.encode())
    assert len(snapshot.incidents) == 2
    assert all(incident.updates for incident in snapshot.incidents)
    assert_clean(snapshot)
    assert snapshot.incidents[0].updates[0].status.startswith("investigating")


def test_gcloud_fields_are_clean() -> None:
    payload = [
        {
            "id": "g1",
            "external_desc": f"{HOSTILE_NAME}\nsecond line",
            "begin": "2026-10-07T10:00:00+00:00",
            "status_impact": "SERVICE_OUTAGE",
            "affected_products": [{"title": "Vertex Gemini API", "id": "Z0FZ"}],
            "updates": [
                {
                    "when": "2026-10-07T10:05:00+00:00",
                    "status": "SERVICE_OUTAGE",
                    "text": HOSTILE_BODY,
                }
            ],
        }
    ]
    snapshot = parse_gcloud_bytes(json.dumps(payload).encode())
    assert_clean(snapshot)
    assert snapshot.incidents[0].name.startswith("API errors")
