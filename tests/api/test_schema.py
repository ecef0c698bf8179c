"""Property-based contract test: schemathesis drives every operation of /api/schema/ in-process.

It generates requests from the schema (bounded: a few examples per operation) and checks
that no response is a 5xx, every status is documented, and every body matches its schema.
Requests go to the WSGI app through werkzeug (no network), against the real PostgreSQL.
"""
from __future__ import annotations

import zlib

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


# Loaded at collection from the WSGI app (the schema view touches no database). Not
# ``schemathesis.pytest.from_fixture``: its lazy loader breaks on pytest 9 (``_nodeid``).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture(autouse=True)
def keep_test_connection():
    """Like Django's test client: stop the WSGI handler from closing the test's DB connection
    (and so its transaction) at the end of each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(seller, make_operation, api_key, sandbox_settings, monkeypatch):
    """A seller with a failed operation, so generated ids sometimes hit real rows (200/202/409).

    CardTrader is the sandbox over real HTTP (connect validates tokens against it), metered by
    the real Redis limiter under keys of this test alone, so no other suite's breaker state leaks in.
    """
    import uuid

    import ratelimit

    sandbox_settings.RATE_LIMIT_KEY_PREFIX = f"rl-schema-{uuid.uuid4().hex[:10]}"
    monkeypatch.setattr(ratelimit, "_default", None)
    operation = make_operation(seller, last_error="boom", error_code="server_error")
    return {"seller": seller, "operation": operation, "auth": f"Api-Key {api_key[1]}"}


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case, seeded):
    # Point half the cases at the seeded seller / operation so 2xx bodies are checked too.
    params = case.path_parameters or {}
    coin = zlib.crc32(repr(sorted(params.items())).encode()) % 2 == 0  # deterministic, unlike hash()
    if "seller_uuid" in params and coin:
        params["seller_uuid"] = str(seeded["seller"].pk)
    if "operation_id" in params and coin:
        params["operation_id"] = seeded["operation"].pk
    case.call_and_validate(headers={"Authorization": seeded["auth"]}, checks=CHECKS)


def test_schema_documents_auth_errors_and_idempotency(client):
    body = client.get("/api/schema/?format=json").json()
    assert set(body["components"]["securitySchemes"]) == {"SellerJWT", "ServiceApiKey"}
    for path, operations in body["paths"].items():
        for method, operation in operations.items():
            assert {"401", "429"} <= set(operation["responses"]), (method, path)
            if method in {"post", "put", "patch", "delete"}:
                names = {p["name"] for p in operation.get("parameters", [])}
                assert "Idempotency-Key" in names, (method, path)
                assert "422" in operation["responses"], (method, path)


def test_docs_are_served_without_internet(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html  # assets come from the sidecar
