"""Operations in the console: bulk retry/cancel through the operation services, filters, search,
and the detail page (attempt log, per-item results, item link), all with the Django test client."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from syncops.models import OperationKind, OperationState, SyncOperation
from tests.admin_console.conftest import messages_of, post_action

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:syncops_syncoperation_changelist"


def test_retry_selected_retries_the_retryable_and_says_why_others_were_skipped(
    staff_client, staff_user, make_seller, make_operation, django_capture_on_commit_callbacks
):
    seller = make_seller()
    failed = [make_operation(seller, state=OperationState.FAILED, attempts=8, error_code="server_error",
                             last_error="CardTrader 502") for _ in range(3)]
    running = make_operation(seller, state=OperationState.RUNNING)
    done = make_operation(seller, state=OperationState.SUCCEEDED)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_action(staff_client, reverse(CHANGELIST), "retry_selected",
                               [op.pk for op in (*failed, running, done)])

    assert response.status_code == 200
    text = " ".join(messages_of(response))
    assert "3 retried" in text and "2 skipped" in text
    assert "1 running" in text and "1 succeeded" in text
    for op in failed:
        op.refresh_from_db()
        assert op.state == OperationState.PENDING
        assert op.last_error == "" and op.max_attempts == 16
        assert op.attempt_log[-1]["event"] == "retry_requested"
        assert op.attempt_log[-1]["by"] == f"admin:{staff_user.username}"
        assert op.attempt_log[-1]["error"] == "CardTrader 502"
    running.refresh_from_db()
    done.refresh_from_db()
    assert (running.state, done.state) == (OperationState.RUNNING, OperationState.SUCCEEDED)
    assert len(callbacks) == 3  # one dispatch per retried operation, after commit
    logged = LogEntry.objects.filter(user=staff_user, object_id__in=[str(op.pk) for op in failed])
    assert logged.count() == 3
    assert "retried" in logged.first().get_change_message()


def test_cancel_selected_cancels_waiting_and_failed_only(staff_client, make_seller, make_operation):
    seller = make_seller()
    pending = make_operation(seller, state=OperationState.PENDING)
    failed = make_operation(seller, state=OperationState.FAILED)
    running = make_operation(seller, state=OperationState.RUNNING)

    response = post_action(staff_client, reverse(CHANGELIST), "cancel_selected",
                           [pending.pk, failed.pk, running.pk])

    assert "2 cancelled" in " ".join(messages_of(response))
    states = dict(SyncOperation.objects.filter(pk__in=[pending.pk, failed.pk, running.pk]).values_list("pk", "state"))
    assert states == {pending.pk: "cancelled", failed.pk: "cancelled", running.pk: "running"}
    assert SyncOperation.objects.get(pk=pending.pk).attempt_log[-1]["reason"] == "cancelled by staff"


def _listed(client, **params) -> set[int]:
    response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return {op.pk for op in response.context["cl"].result_list}


def test_filters_and_search(staff_client, make_seller, make_operation):
    a, b = make_seller(), make_seller()
    op1 = make_operation(a, state=OperationState.FAILED, kind=OperationKind.PUSH_UPDATE, product_id=4242,
                         cardtrader_job_uuid="job-uuid-1")
    op2 = make_operation(b, state=OperationState.SUCCEEDED, kind=OperationKind.IMPORT)
    op3 = make_operation(b, state=OperationState.FAILED, kind=OperationKind.ADJUST)
    SyncOperation.objects.filter(pk=op3.pk).update(created_at=timezone.now() - timedelta(days=30))
    mine = {op1.pk, op2.pk, op3.pk}

    assert _listed(staff_client, state__exact="failed") & mine == {op1.pk, op3.pk}
    assert _listed(staff_client, kind__exact="import") & mine == {op2.pk}
    assert _listed(staff_client, seller=str(b.pk)) == {op2.pk, op3.pk}
    assert _listed(staff_client, seller="not-a-uuid") == set()
    since = str(timezone.now() - timedelta(days=7))
    assert _listed(staff_client, created_at__gte=since) & mine == {op1.pk, op2.pk}
    assert _listed(staff_client, q=op2.operation_key) == {op2.pk}
    assert _listed(staff_client, q="job-uuid-1") == {op1.pk}
    assert _listed(staff_client, q="4242") == {op1.pk}


def test_detail_shows_attempts_results_and_item_link_escaped(staff_client, make_seller, make_item, make_operation):
    seller = make_seller()
    item = make_item(seller)
    op = make_operation(
        seller, item=item, product_id=item.product_id, state=OperationState.FAILED,
        attempt_log=[{"event": "attempt", "outcome": "server_error", "detail": "<script>alert(1)</script>"}],
        result={"items": [{"product_id": item.product_id, "status": "error", "errors": {"price": ["too low"]}}]},
    )
    response = staff_client.get(reverse("admin:syncops_syncoperation_change", args=[op.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "too low" in html
    assert reverse("admin:inventory_inventoryitem_change", args=[item.pk]) in html


def test_changelist_query_count_does_not_grow_with_rows(staff_client, make_seller, make_operation,
                                                         django_assert_max_num_queries):
    sellers = [make_seller() for _ in range(5)]
    for i in range(60):
        make_operation(sellers[i % 5], state=OperationState.FAILED)
    with django_assert_max_num_queries(8):
        assert staff_client.get(reverse(CHANGELIST)).status_code == 200


def test_changelist_count_stops_at_the_cap(staff_client, make_seller, make_operation, monkeypatch):
    from syncops import admin_support

    monkeypatch.setattr(admin_support, "COUNT_CAP", 10)
    seller = make_seller()
    for _ in range(15):
        make_operation(seller)
    response = staff_client.get(reverse(CHANGELIST), {"seller": str(seller.pk)})
    assert response.context["cl"].result_count == 10


def test_an_actions_message_travels_in_the_session_not_a_cookie(staff_client, make_seller, make_operation):
    """MESSAGE_STORAGE is SessionStorage: no signed ``messages`` cookie is set (the default storage
    built one for every request), and the message still reaches the page the action redirects to."""
    op = make_operation(make_seller(), state=OperationState.RUNNING)
    response = staff_client.post(reverse(CHANGELIST), {"action": "retry_selected", "_selected_action": [str(op.pk)],
                                                       "index": "0"})
    assert response.status_code == 302
    assert "messages" not in response.cookies
    page = staff_client.get(response["Location"])
    assert "1 running" in " ".join(messages_of(page))
