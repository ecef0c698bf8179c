"""One error envelope for every status the API answers (issue 5: 400 401 404 405 413 422 429 500)."""
from __future__ import annotations

import json
import logging
import uuid

import pytest
from django.test import Client
from rest_framework.test import APIClient

from syncops.models import SyncOperation
from tests.api.conftest import assert_envelope

pytestmark = pytest.mark.django_db


@pytest.fixture
def test_urls(settings):
    settings.ROOT_URLCONF = "tests.api.urls"


def test_400_lists_each_invalid_field(service_client, seller):
    response = service_client.get(
        f"/api/v1/sellers/{seller.pk}/operations",
        {"state": "bogus", "created_after": "yesterday", "product_id": "x"},
    )
    error = assert_envelope(response, 400, "validation_error")
    fields = error["details"]["fields"]
    assert set(fields) == {"state", "created_after", "product_id"}
    assert all(isinstance(msgs, list | dict) and msgs for msgs in fields.values())


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "201"}, {"limit": "ten"}, {"cursor": "garbage"}])
def test_400_for_bad_pagination(service_client, seller, params):
    response = service_client.get(f"/api/v1/sellers/{seller.pk}/operations", params)
    assert_envelope(response, 400, "validation_error")


def test_400_for_malformed_json_body(service_client, seller):
    response = service_client.patch(
        f"/api/v1/sellers/{seller.pk}/inventory/1", data="{not json", content_type="application/json"
    )
    assert_envelope(response, 400, "parse_error")


def test_400_for_an_invalid_idempotency_key(service_client, make_operation, seller):
    op = make_operation(seller)
    response = service_client.post(f"/api/v1/operations/{op.pk}/retry", HTTP_IDEMPOTENCY_KEY="has space")
    error = assert_envelope(response, 400, "validation_error")
    assert "Idempotency-Key" in error["details"]["fields"]
    op.refresh_from_db()
    assert op.state == "failed"


def test_401(seller):
    assert_envelope(APIClient().get(f"/api/v1/sellers/{seller.pk}/status"), 401, "not_authenticated")


@pytest.mark.parametrize("url", ["/api/v1/nope", "/api/v1/operations/abc", "/nowhere", "/api/v1/operations/999999999"])
def test_404_everywhere(service_client, url):
    assert_envelope(service_client.get(url), 404, "not_found")


def test_405_from_drf_keeps_allow(service_client, make_operation, seller):
    op = make_operation(seller)
    response = service_client.delete(f"/api/v1/operations/{op.pk}")
    assert_envelope(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_405_from_a_plain_django_view(client):
    response = client.post("/health/live")
    assert_envelope(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_413_for_an_oversized_body(settings, service_client, seller):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"description": "x" * 5000})
    response = service_client.patch(f"/api/v1/sellers/{seller.pk}/inventory/1", data=body,
                                    content_type="application/json")
    error = assert_envelope(response, 413, "payload_too_large")
    assert error["details"]["max_bytes"] == 1000


def test_422_for_a_reused_idempotency_key(service_client, seller, test_urls):
    url = f"/api/v1/test/sellers/{seller.pk}/slow"
    first = service_client.post(url, {"a": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-422")
    assert first.status_code == 202
    second = service_client.post(url, {"a": 2}, format="json", HTTP_IDEMPOTENCY_KEY="k-422")
    assert_envelope(second, 422, "idempotency_key_reused")
    assert SyncOperation.objects.filter(seller=seller).count() == 1


def test_429_with_retry_after(settings, make_token, seller):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "seller": "3/min"},
    }
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(seller.pk)}")
    url = f"/api/v1/sellers/{seller.pk}/status"
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(url)
    error = assert_envelope(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert error["details"]["retry_after"] == int(response["Retry-After"])
    # Per caller: another seller is not affected by this one's flood.
    other = uuid.uuid4()
    other_client = APIClient()
    other_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(other)}")
    assert other_client.get(f"/api/v1/sellers/{other}/status").status_code == 200


def test_forced_500_in_an_api_view(test_urls, service_client, seller, caplog):
    with caplog.at_level(logging.ERROR, logger="brxsync.api"):
        response = service_client.get(f"/api/v1/test/sellers/{seller.pk}/crash", HTTP_X_REQUEST_ID="req-abc.123")
    error = assert_envelope(response, 500, "internal_error")
    assert error["details"] == {"request_id": "req-abc.123"}
    assert response["X-Request-ID"] == "req-abc.123"
    assert "hunter2" not in response.content.decode()
    # The trace is in the log, with the request id, for whoever reads the report.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "req-abc.123" in r.getMessage()]
    assert errors
    assert "RuntimeError" in caplog.text and "secret internal detail" in caplog.text


def test_forced_500_after_a_write_rolls_it_back(test_urls, service_client, seller):
    url = f"/api/v1/test/sellers/{seller.pk}/crash"
    response = service_client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="crash-1")
    assert_envelope(response, 500, "internal_error")
    assert not SyncOperation.objects.filter(seller=seller).exists()
    # The key was released, not stored: the client may retry with it (and crash again here).
    from brxsync.api.models import IdempotencyRecord

    assert not IdempotencyRecord.objects.filter(key="crash-1").exists()


def test_forced_500_outside_drf(test_urls):
    client = Client(raise_request_exception=False)
    response = client.get("/test/django-crash")
    error = assert_envelope(response, 500, "internal_error")
    assert error["details"]["request_id"] == response["X-Request-ID"]
    assert "hunter2" not in response.content.decode()


def test_request_id_generated_when_absent_or_unsafe(service_client, seller):
    plain = service_client.get(f"/api/v1/sellers/{seller.pk}/status")
    assert len(plain["X-Request-ID"]) == 32
    forged = service_client.get(f"/api/v1/sellers/{seller.pk}/status", HTTP_X_REQUEST_ID="x\nInjected: 1")
    assert forged["X-Request-ID"] != "x\nInjected: 1" and len(forged["X-Request-ID"]) == 32


def _with_seller_rate(settings, rate: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "seller": rate},
    }


def test_probing_other_sellers_is_throttled_too(settings, make_token, seller):
    _with_seller_rate(settings, "3/min")
    prober = uuid.uuid4()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(prober)}")
    url = f"/api/v1/sellers/{seller.pk}/status"
    assert [client.get(url).status_code for _ in range(3)] == [404, 404, 404]
    assert_envelope(client.get(url), 429, "throttled")


def test_throttle_fails_open_when_redis_is_down(settings, make_token, seller):
    _with_seller_rate(settings, "1/min")
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {**settings.CACHES["default"]["OPTIONS"], "SOCKET_CONNECT_TIMEOUT": 0.2},
        }
    }
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(seller.pk)}")
    url = f"/api/v1/sellers/{seller.pk}/status"
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
