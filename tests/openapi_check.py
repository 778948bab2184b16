"""Answers checked against bot/web/openapi.json, the API's published contract."""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bot.web.api import openapi_document

DOC: dict[str, Any] = json.loads(openapi_document())
REGISTRY = Registry().with_resource(
    "urn:openapi", Resource.from_contents(DOC, default_specification=DRAFT202012)
)
ETAG = re.compile(r'^"[0-9a-f]{32}"$')
TEMPLATES = [
    (re.compile(r"^/api/v1/services/[^/]+/reports$"), "/api/v1/services/{service_id}/reports"),
    (re.compile(r"^/api/v1/services/[^/]+$"), "/api/v1/services/{service_id}"),
    (re.compile(r"^/api/v1/services$"), "/api/v1/services"),
    (re.compile(r"^/api/v1/incidents$"), "/api/v1/incidents"),
    (re.compile(r"^/api/v1/openapi\.json$"), "/api/v1/openapi.json"),
]


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def check_response(path: str, status: int, body: bytes, headers: Any) -> Any:
    """Validate a JSON response against the documented response of its path and status."""
    template = next(t for pattern, t in TEMPLATES if pattern.match(path))
    responses = DOC["paths"][template]["get"]["responses"]
    assert str(status) in responses, f"{path} answered {status}, which is not documented"
    assert headers["Content-Type"].startswith("application/json")
    pointer = _pointer("paths", template, "get", "responses", str(status), "content")
    schema = {"$ref": f"urn:openapi#/{pointer}/application~1json/schema"}
    document = json.loads(body)
    Draft202012Validator(schema, registry=REGISTRY).validate(document)
    if status == 200:
        assert ETAG.match(headers["ETag"]), headers.get("ETag")
        assert headers["Cache-Control"]
    return document


def conforms(document: object, schema: str) -> None:
    """The document matches the named schema of the document's components."""
    ref = {"$ref": f"urn:openapi#/components/schemas/{schema}"}
    Draft202012Validator(ref, registry=REGISTRY).validate(document)
