"""The JSON API: every response checked against the OpenAPI document, ETags, hostile queries."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from sqlalchemy.ext.asyncio import AsyncEngine
from yarl import URL

from bot.store import crowd_store
from tests.openapi_check import DOC, check_response
from tests.web_seed import (
    EVIL_TITLE,
    EVIL_UPDATE,
    Seeded,
    add_a_plain_and_a_disguised_link,
    seeded_web,
)


async def fetch(seeded: Seeded, path: str, **kwargs: Any) -> tuple[int, bytes, Any]:
    async with seeded.http.get(seeded.base + path, **kwargs) as response:
        return response.status, await response.read(), response.headers


async def test_the_openapi_document_is_valid_and_served(engine: AsyncEngine) -> None:
    for name, schema in DOC["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        assert schema, name
    assert DOC["openapi"].startswith("3.1")
    async with seeded_web(engine) as seeded:
        status, body, _headers = await fetch(seeded, "/api/v1/openapi.json")
        assert status == 200
        assert json.loads(body) == DOC
        api_routes = {
            resource.canonical
            for resource in seeded.server._runner.app.router.resources()
            if resource.canonical.startswith("/api/v1/")
        }
        assert api_routes <= set(DOC["paths"]), api_routes - set(DOC["paths"])


async def test_every_api_response_matches_the_openapi_document(engine: AsyncEngine) -> None:
    async with seeded_web(engine) as seeded:
        since = quote("2022-11-20T00:00:00+02:00")
        paths = [
            "/api/v1/services",
            "/api/v1/services/github",
            "/api/v1/services/gitcalm",
            "/api/v1/services/GitHub",
            "/api/v1/services/github/reports",
            "/api/v1/services/github/reports?hours=1",
            "/api/v1/services/github/reports?hours=168",
            "/api/v1/incidents",
            "/api/v1/incidents?service=github",
            f"/api/v1/incidents?since={since}&limit=1",
            "/api/v1/incidents?since=2022-01-01",
        ]
        documents = {}
        for path in paths:
            status, body, headers = await fetch(seeded, path)
            assert status == 200, (path, body)
            documents[path] = check_response(path.split("?")[0], status, body, headers)

    services = {s["id"]: s for s in documents["/api/v1/services"]["services"]}
    github = services["github"]
    assert github["state"] == "partial_outage"
    assert github["incident"]["title"] == EVIL_TITLE  # JSON carries the text as written
    assert github["reports"] == {"last_hour": 5, "usual_per_hour": 0.08}
    assert services["gitcalm"]["early_warning"]["level"] == "reported"
    detail = documents["/api/v1/services/github"]
    assert detail == documents["/api/v1/services/GitHub"]
    assert len(detail["incidents"][0]["updates"]) == 7
    assert detail["incidents"][0]["updates"][0]["body"] == EVIL_UPDATE
    assert detail["history"]["incidents"] == 2
    assert detail["history"]["mean_time_to_recovery_seconds"] == 7200
    assert [a["id"] for a in detail["alternatives"]] == ["gitcalm"]
    assert detail["workarounds"][0]["worked"] == 1
    reports = documents["/api/v1/services/github/reports"]
    assert (reports["hours"], len(reports["buckets"]), reports["total"]) == (24, 24, 5)
    assert reports["buckets"][-1]["hour"] == "2022-11-25T16:00:00Z"
    assert len(documents["/api/v1/services/github/reports?hours=168"]["buckets"]) == 168
    assert [i["service"] for i in documents["/api/v1/incidents"]["incidents"]] == ["github"]
    limited = documents[f"/api/v1/incidents?since={since}&limit=1"]
    assert limited["since"] == "2022-11-19T22:00:00Z"
    assert len(limited["incidents"]) == 1
    # The resolved incident of ten days ago falls inside a window opened in January.
    assert len(documents["/api/v1/incidents?since=2022-01-01"]["incidents"]) == 2


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/services/nope", 404, "unknown_service"),
        ("/api/v1/services/nope/reports", 404, "unknown_service"),
        ("/api/v1/services/github/reports?hours=0", 400, "bad_parameter"),
        ("/api/v1/services/github/reports?hours=169", 400, "bad_parameter"),
        ("/api/v1/services/github/reports?hours=1.5", 400, "bad_parameter"),
        ("/api/v1/services/github/reports?hours=-1", 400, "bad_parameter"),
        ("/api/v1/services/github/reports?hours=1&hours=2", 400, "bad_parameter"),
        ("/api/v1/services/github/reports?hour=12", 400, "bad_parameter"),
        ("/api/v1/incidents?since=yesterday", 400, "bad_parameter"),
        ("/api/v1/incidents?since=2099-01-01T00:00:00Z", 400, "bad_parameter"),
        ("/api/v1/incidents?service=nope", 400, "unknown_service"),
        ("/api/v1/incidents?limit=0", 400, "bad_parameter"),
        ("/api/v1/incidents?limit=%EF%BC%95", 400, "bad_parameter"),  # a full-width digit
        ("/api/v1/incidents?since=%FF%FE", 400, "bad_parameter"),  # not UTF-8
    ],
)
async def test_bad_requests_get_a_clear_json_error(
    engine: AsyncEngine, path: str, status: int, code: str
) -> None:
    async with seeded_web(engine) as seeded, seeded.http.get(seeded.base + path) as response:
        body = await response.read()
        assert response.status == status, body
        document = check_response(path.split("?")[0], status, body, response.headers)
    assert document["error"]["code"] == code
    assert "Traceback" not in document["error"]["message"]


async def test_unknown_api_paths_and_methods_answer_json(engine: AsyncEngine) -> None:
    async with seeded_web(engine) as seeded:
        status, body, headers = await fetch(seeded, "/api/v1/nothing/here")
        assert status == 404
        assert headers["Content-Type"].startswith("application/json")
        assert json.loads(body)["error"]["code"] == "not_found"
        async with seeded.http.post(seeded.base + "/api/v1/services") as response:
            assert response.status == 405
            assert (await response.json())["error"]["code"] == "method_not_allowed"
        status, _, headers = await fetch(seeded, "/nothing")  # outside the API: aiohttp's own
        assert status == 404
        assert not headers["Content-Type"].startswith("application/json")


async def test_etags_answer_304_until_the_data_changes(engine: AsyncEngine) -> None:
    async with seeded_web(engine) as seeded:
        path = "/api/v1/services/github/reports"
        status, body, headers = await fetch(seeded, path)
        etag = headers["ETag"]
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == "*"
        again = await fetch(seeded, path)
        assert again[2]["ETag"] == etag
        assert again[1] == body
        for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            status, empty, cached = await fetch(seeded, path, headers={"If-None-Match": header})
            assert (status, empty, cached["ETag"]) == (304, b"", etag), header
        status, _, _ = await fetch(seeded, path, headers={"If-None-Match": '"stale"'})
        assert status == 200

        async with seeded.deps.sessions() as session:
            await crowd_store.add_report(
                session=session,
                service_id="github",
                reporter_hash="late",
                platform="discord",
                community_id="g2",
                what="down",
                component=None,
                details=None,
                now=seeded.clock.now - timedelta(seconds=5),
                window=timedelta(minutes=30),
            )
            await session.commit()
        status, body, headers = await fetch(seeded, path, headers={"If-None-Match": etag})
        assert status == 200
        assert headers["ETag"] != etag
        assert json.loads(body)["total"] == 6


HOSTILE = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"-?[0-9]{1,9}(\.[0-9]+)?", fullmatch=True),
    st.sampled_from(["", " ", "0x10", "1e3", "NaN", "∞", "٣", "9" * 400, "2022-13-45", "Z"]),
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(["/api/v1/incidents", "/api/v1/services/github/reports"]),
    params=st.lists(
        st.tuples(st.sampled_from(["hours", "since", "service", "limit", "x", "Hours"]), HOSTILE),
        max_size=3,
    ),
)
async def test_malformed_query_parameters_never_fail_the_server(
    api_server: Seeded, route: str, params: list[tuple[str, str]]
) -> None:
    url = URL(api_server.base + route).with_query(params)
    async with api_server.http.get(url) as response:
        body = await response.read()
        assert response.status in {200, 400}, (url, response.status, body[:300])
        document = check_response(route, response.status, body, response.headers)
    if response.status == 400:
        assert document["error"]["code"] in {"bad_parameter", "unknown_service"}


@pytest.fixture
async def api_server(engine: AsyncEngine) -> Any:
    async with seeded_web(engine) as seeded:
        yield seeded


async def test_a_stored_link_hiding_its_real_host_is_not_passed_on(engine: AsyncEngine) -> None:
    async with seeded_web(engine) as seeded:
        await add_a_plain_and_a_disguised_link(seeded)
        status, body, _ = await fetch(seeded, "/api/v1/services/github")
    assert status == 200
    links = {w["title"]: w["link"] for w in json.loads(body)["workarounds"]}
    assert links["Use the mirror"] == "https://mirror.example/npm"
    assert links["Official fix"] is None
    assert b"evil.example" not in body
