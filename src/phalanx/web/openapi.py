"""The REST API's OpenAPI 3.1 document, built from the route table itself.

Every ``/api/v1`` route of :data:`phalanx.web.app.ROUTES` (and the admin
routes) appears with its method, the role it needs and, for POST, the JSON
body it accepts (:data:`BODIES`: the same bounds the handlers enforce). A
test checks that every POST route has a body schema, so the document cannot
silently fall behind the code; schemathesis fuzzes the running app from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from phalanx.web.rbac import Role

API_PREFIX: Final = "/api/v1"

_NAME: Final = {"type": "string", "minLength": 1, "maxLength": 64}
_PASSWORD: Final = {"type": "string", "minLength": 1, "maxLength": 1024}
_ROLE: Final = {"type": "string", "enum": [role.value for role in Role]}


def _object(properties: Mapping[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": dict(properties), "required": list(required),
            "additionalProperties": False}


BODIES: Final[Mapping[str, dict[str, Any]]] = {
    f"{API_PREFIX}/run/start": _object({
        "users": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
        "spawn_rate": {"type": "number", "minimum": 0.001, "maximum": 1_000_000},
        "host": {"type": "string", "maxLength": 2048},
        "run_time": {"type": "number", "minimum": 1, "maximum": 30 * 86_400},
    }, ["users", "spawn_rate"]),
    f"{API_PREFIX}/run/change": _object({
        "users": {"type": "integer", "minimum": 0, "maximum": 10_000_000},
        "spawn_rate": {"type": "number", "minimum": 0.001, "maximum": 1_000_000},
    }, ["users"]),
    f"{API_PREFIX}/run/stop": _object({}),
    f"{API_PREFIX}/run/reset": _object({}),
    f"{API_PREFIX}/users/add": _object({"name": _NAME, "role": _ROLE, "password": _PASSWORD},
                                       ["name", "role", "password"]),
    f"{API_PREFIX}/users/reset-password": _object({"name": _NAME, "password": _PASSWORD},
                                                  ["name", "password"]),
    f"{API_PREFIX}/users/set-role": _object({"name": _NAME, "role": _ROLE}, ["name", "role"]),
    f"{API_PREFIX}/users/disable": _object({"name": _NAME}, ["name"]),
    f"{API_PREFIX}/users/enable": _object({"name": _NAME}, ["name"]),
    f"{API_PREFIX}/users/remove": _object({"name": _NAME}, ["name"]),
    f"{API_PREFIX}/tokens/create": _object({
        "role": {"type": "string", "enum": ["viewer", "operator"]},
        "expires": {"type": "string", "maxLength": 16},
        "label": {"type": "string", "maxLength": 64},
    }, ["role"]),
    f"{API_PREFIX}/tokens/revoke": _object({"token_id": {"type": "string", "maxLength": 32}},
                                           ["token_id"]),
}

_ERROR: Final = {"description": "refused", "content": {"application/json": {"schema": _object(
    {"error": {"type": "string"}, "correlation_id": {"type": "string"}}, ["error"])}}}


def build_openapi(routes: Sequence[Any], version: str) -> dict[str, Any]:
    """The document for ``routes`` (``RouteSpec`` objects); only ``/api/v1`` ones appear."""
    paths: dict[str, dict[str, Any]] = {}
    for spec in routes:
        if not spec.path.startswith(API_PREFIX):
            continue
        method = spec.method.lower()
        summary = (spec.handler.__doc__ or spec.handler.__name__).strip().splitlines()[0]
        operation: dict[str, Any] = {
            "summary": summary,
            "operationId": f"{method}_{spec.path.removeprefix(API_PREFIX).strip('/')}"
                           .replace("/", "_").replace("-", "_"),
            "x-phalanx-permission": spec.permission.value if spec.permission else None,
            "responses": {
                "200": {"description": "done", "content": {"application/json": {
                    "schema": {"type": "object"}}}},
                "400": _ERROR, "401": _ERROR, "403": _ERROR, "409": _ERROR,
            },
        }
        if spec.permission is not None:
            operation["security"] = [{"bearer": []}, {"session": []}]
        if method == "post":
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": BODIES[spec.path]}}}
        paths.setdefault(spec.path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "phalanx", "version": version,
                 "description": "Load-test control and results. State changes need POST "
                                "with a bearer token, or a session cookie plus X-CSRF-Token "
                                "and a same-origin Origin."},
        "paths": paths,
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "phalanx_session"},
        }},
    }
