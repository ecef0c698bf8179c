"""Idempotency-Key: replay, mismatch, concurrency, crash recovery, retention (issue 5)."""
from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from brxsync.api import idempotency
from brxsync.api.models import IdempotencyRecord, IdempotencyState
from syncops.models import SyncOperation
from tests.api.conftest import assert_envelope


@pytest.fixture
def test_urls(settings):
    settings.ROOT_URLCONF = "tests.api.urls"


def slow_url(seller) -> str:
    return f"/api/v1/test/sellers/{seller.pk}/slow"


@pytest.mark.django_db
def test_same_key_same_body_replays_without_acting(test_urls, service_client, seller):
    first = service_client.post(slow_url(seller), {"x": 1, "y": [1, 2]}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == 202
    assert "Idempotent-Replayed" not in first
    # Same JSON value, different key order and spacing: the same request.
    again = service_client.post(slow_url(seller), data='{"y": [1, 2],  "x": 1}', content_type="application/json",
                                HTTP_IDEMPOTENCY_KEY="k1")
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert again["Location"] == first["Location"]
    assert SyncOperation.objects.filter(seller=seller).count() == 1


@pytest.mark.django_db
def test_keys_are_scoped_per_caller(test_urls, service_client, seller_client, seller):
    a = service_client.post(slow_url(seller), {}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    b = seller_client(seller.pk).post(slow_url(seller), {}, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert a.status_code == b.status_code == 202
    assert a.json() != b.json()
    assert SyncOperation.objects.filter(seller=seller).count() == 2


@pytest.mark.django_db
def test_same_key_on_another_endpoint_is_422(test_urls, service_client, seller, make_operation):
    service_client.post(slow_url(seller), {}, format="json", HTTP_IDEMPOTENCY_KEY="k-x")
    op = make_operation(seller)
    response = service_client.post(f"/api/v1/operations/{op.pk}/retry", HTTP_IDEMPOTENCY_KEY="k-x")
    assert_envelope(response, 422, "idempotency_key_reused")
    op.refresh_from_db()
    assert op.state == "failed"


@pytest.mark.django_db
def test_without_a_key_each_request_acts(test_urls, service_client, seller):
    service_client.post(slow_url(seller), {}, format="json")
    service_client.post(slow_url(seller), {}, format="json")
    assert SyncOperation.objects.filter(seller=seller).count() == 2


@pytest.mark.django_db
def test_a_4xx_answer_is_replayed_too(service_client, seller, make_operation):
    op = make_operation(seller, state="running")
    url = f"/api/v1/operations/{op.pk}/retry"
    assert_envelope(service_client.post(url, HTTP_IDEMPOTENCY_KEY="k409"), 409, "operation_not_retryable")
    SyncOperation.objects.filter(pk=op.pk).update(state="failed")
    replay = service_client.post(url, HTTP_IDEMPOTENCY_KEY="k409")
    assert_envelope(replay, 409, "operation_not_retryable")  # the first answer, as Stripe does
    assert replay["Idempotent-Replayed"] == "true"
    assert service_client.post(url, HTTP_IDEMPOTENCY_KEY="k-new").status_code == 202


@pytest.mark.django_db
def test_a_crashed_request_is_taken_over_after_the_lock_expires(test_urls, service_client, seller, api_key):
    """A 'started' row with no answer is what a process killed mid-request leaves behind."""
    caller = f"apikey:{api_key[0].pk}"
    url = slow_url(seller)
    body = b"{}"
    stale = timezone.now() - idempotency.lock_timeout() - timedelta(seconds=1)
    IdempotencyRecord.objects.create(caller=caller, key="dead", method="POST", path=url,
                                     fingerprint=idempotency.fingerprint("POST", url, body),
                                     created_at=stale, locked_at=stale)
    response = service_client.post(url, data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="dead")
    assert response.status_code == 202
    record = IdempotencyRecord.objects.get(caller=caller, key="dead")
    assert record.state == IdempotencyState.COMPLETED and record.response_status == 202
    assert SyncOperation.objects.filter(seller=seller).count() == 1


@pytest.mark.django_db
def test_a_live_claim_answers_409(test_urls, service_client, seller, api_key):
    caller = f"apikey:{api_key[0].pk}"
    url = slow_url(seller)
    IdempotencyRecord.objects.create(caller=caller, key="busy", method="POST", path=url,
                                     fingerprint=idempotency.fingerprint("POST", url, b"{}"))
    response = service_client.post(url, data=b"{}", content_type="application/json", HTTP_IDEMPOTENCY_KEY="busy")
    assert_envelope(response, 409, "idempotency_key_in_use")
    assert not SyncOperation.objects.filter(seller=seller).exists()


@pytest.mark.django_db
def test_expired_keys_are_pruned_and_reusable(test_urls, service_client, seller, api_key):
    url = slow_url(seller)
    assert service_client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="old").status_code == 202
    fresh = service_client.post(url, {"n": 1}, format="json", HTTP_IDEMPOTENCY_KEY="fresh")
    assert fresh.status_code == 202
    # 23 h later nothing is pruned; 25 h later the old one goes, the fresh one (backdated 1 h) stays.
    now = timezone.now()
    assert idempotency.prune_expired(now=now + timedelta(hours=23)) == 0
    IdempotencyRecord.objects.filter(key="old").update(created_at=now - timedelta(hours=25))
    from brxsync.api.tasks import prune_idempotency_records

    assert prune_idempotency_records() == 1
    assert list(IdempotencyRecord.objects.filter(key__in=["old", "fresh"]).values_list("key", flat=True)) == ["fresh"]
    # The pruned key is free again: it acts.
    assert service_client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="old").status_code == 202
    assert SyncOperation.objects.filter(seller=seller).count() == 3


@pytest.mark.django_db
def test_expired_but_unpruned_key_acts_again(test_urls, service_client, seller):
    url = slow_url(seller)
    first = service_client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="aging")
    IdempotencyRecord.objects.filter(key="aging").update(created_at=timezone.now() - timedelta(hours=25))
    second = service_client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="aging")
    assert second.status_code == 202 and second.json() != first.json()


def _post_concurrently(url: str, headers: dict[str, str], body: dict, n: int) -> list[requests.Response]:
    barrier = threading.Barrier(n)
    results: list[requests.Response] = []
    lock = threading.Lock()

    def call() -> None:
        barrier.wait()
        r = requests.post(url, json=body, headers=headers, timeout=20)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=call) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_duplicates_act_once(test_urls, transactional_db, live_server, api_key, seller):
    """Real threads, real server, real PostgreSQL: requests overlap the first one's 0.6 s of work."""
    url = live_server.url + slow_url(seller)
    headers = {"Authorization": f"Api-Key {api_key[1]}", "Idempotency-Key": f"conc-{uuid.uuid4()}"}
    results = _post_concurrently(url, headers, {"q": 1}, n=4)

    assert SyncOperation.objects.filter(seller=seller).count() == 1  # acted exactly once
    accepted = [r for r in results if r.status_code == 202]
    in_use = [r for r in results if r.status_code == 409]
    assert len(accepted) + len(in_use) == 4, [(r.status_code, r.text) for r in results]
    assert len(accepted) >= 1
    op_id = SyncOperation.objects.get(seller=seller).pk
    assert all(r.json() == {"operation_id": op_id} for r in accepted)
    assert all(r.json()["error"]["code"] == "idempotency_key_in_use" for r in in_use)
    assert in_use, "the requests did not overlap: the test proved nothing"  # 0.6 s of work guarantees overlap
    # Once the first has finished, a duplicate gets its answer.
    after = requests.post(url, json={"q": 1}, headers=headers, timeout=10)
    assert after.status_code == 202 and after.json() == {"operation_id": op_id}
    assert after.headers["Idempotent-Replayed"] == "true"


def test_concurrent_retries_of_one_operation_act_once(transactional_db, live_server, api_key, seller, make_operation):
    """The real retry endpoint under 6 simultaneous identical requests: one retry_requested entry."""
    op = make_operation(seller, attempts=8, last_error="boom", error_code="server_error")
    url = f"{live_server.url}/api/v1/operations/{op.pk}/retry"
    headers = {"Authorization": f"Api-Key {api_key[1]}", "Idempotency-Key": f"retry-{uuid.uuid4()}"}
    results = _post_concurrently(url, headers, {}, n=6)
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) <= {202, 409}, [(r.status_code, r.text) for r in results]
    assert all(r.json() == {"operation_id": op.pk} for r in results if r.status_code == 202)
    assert all(r.json()["error"]["code"] == "idempotency_key_in_use" for r in results if r.status_code == 409)
    op.refresh_from_db()
    assert op.state == "pending"
    assert [e["event"] for e in op.attempt_log] == ["retry_requested"]


def test_two_db_connections_one_claim(transactional_db):
    """The claim itself, from two connections at once (not via HTTP): exactly one wins."""
    from django.db import connection

    from brxsync.api.models import IdempotencyRecord

    caller, key, path = f"apikey:{uuid.uuid4()}", f"two-{uuid.uuid4()}", "/p"
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def claim() -> None:
        try:
            barrier.wait()
            try:
                got = idempotency.begin(caller=caller, key=key, method="POST", path=path, body=b"{}")
                outcomes.append("claimed" if isinstance(got, IdempotencyRecord) else "replayed")
            except Exception as exc:
                outcomes.append(getattr(exc, "default_code", type(exc).__name__) if not hasattr(exc, "get_codes")
                                else exc.get_codes())
        finally:
            connection.close()

    # Threads use their own connections, outside the test transaction: commit for real.
    threads = [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["claimed", "idempotency_key_in_use"], outcomes
    assert IdempotencyRecord.objects.filter(caller=caller, key=key).count() == 1
