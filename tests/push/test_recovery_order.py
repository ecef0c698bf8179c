"""Ordering after an unclear outcome, run in this process against the sandbox over HTTP.

Two races the end-to-end fault and crash tests hit only sometimes, made deterministic here:

- an increment whose outcome is unknown (a 500 after sending) followed by a sale of the same item:
  sent straight away, the sale could take CardTrader's quantity to 0 or below, where CardTrader
  deletes the listing, and it blurs the read-back that settles the increment;
- a bulk job sent by a run that then died, followed by a newer edit of the same item: sent before
  the old job is read to its end, the newer values can be overwritten by the older job;
- the same with the job's answer lost too (the run died between CardTrader accepting the bulk call
  and the answer reaching it): the job exists, its uuid is recorded nowhere, and a newer edit sent at
  once could still be overwritten when that job runs.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from inventory.models import InventoryItem, SyncSettings
from inventory.services.edits import item_adjust, item_delete, item_edit
from syncops.models import OperationState, SyncOperation
from syncops.services.push import PushRun, RunReport, claim, make_client, push_seller_run, settle_uncertain
from syncops.services.sweeper import recover_dead_runs
from tests.push.helpers import connect_seller

pytestmark = pytest.mark.django_db(transaction=True)


def _listed_item(control, *, quantity: int):
    """A connected seller with one product on the sandbox and its local row, equal on both sides."""
    account, user = connect_seller(control)
    product = control.add_product(account.user_id, blueprint_id=6, quantity=quantity, price=2.0)
    item = InventoryItem.objects.create(seller=user, product_id=product["id"], blueprint_id=6, game_id=1,
                                        quantity=quantity, price_cents=200, properties=product.get("properties", {}))
    return account, user, product, item


def _remote(control, account, product_id: int) -> dict | None:
    return next((p for p in control.products(account.user_id) if p["id"] == product_id), None)


def test_sale_waits_for_an_uncertain_restock_to_be_settled(cardtrader_sandbox, sandbox_settings):
    control = cardtrader_sandbox.control
    account, user, product, item = _listed_item(control, quantity=1)
    seller = str(user.pk)

    item_adjust(seller=user, item_id=item.pk, delta=3, reason="restock")
    control.set_faults(user_id=account.user_id, error_5xx_rate=1.0)  # the 500 arrives after sending
    try:
        push_seller_run(seller)
    finally:
        control.clear_faults(user_id=account.user_id)
    restock = SyncOperation.objects.get(item=item, kind="adjust")
    assert restock.state == OperationState.UNCERTAIN
    assert _remote(control, account, product["id"])["quantity"] == 1  # the sandbox refused before applying

    item_adjust(seller=user, item_id=item.pk, delta=-2, reason="sale")  # local 4 → 2
    report = push_seller_run(seller)
    assert report.requests == 0, "the sale went out while the restock before it was unsettled"
    assert _remote(control, account, product["id"])["quantity"] == 1

    # The read-back accounts for the held sale: 1 on CardTrader = 2 locally − (−2) held − 3 missing.
    assert settle_uncertain(seller, min_age_seconds=0.0)["resent"] == 1
    push_seller_run(seller)
    assert _remote(control, account, product["id"])["quantity"] == 2
    assert set(SyncOperation.objects.filter(item=item).values_list("state", flat=True)) == {OperationState.SUCCEEDED}


def test_hold_ends_after_the_window(cardtrader_sandbox, sandbox_settings, settings):
    """Unsettled for longer than the hold (CardTrader unreadable, say): later changes go out."""
    control = cardtrader_sandbox.control
    account, user, _product, item = _listed_item(control, quantity=5)
    item_adjust(seller=user, item_id=item.pk, delta=1, reason="restock")
    control.set_faults(user_id=account.user_id, error_5xx_rate=1.0)
    try:
        push_seller_run(str(user.pk))
    finally:
        control.clear_faults(user_id=account.user_id)
    item_edit(seller=user, item_id=item.pk, changes={"price_cents": 999})
    assert claim(str(user.pk), 10) == []
    settings.PUSH_UNCERTAIN_HOLD_SECONDS = 0.0
    groups = claim(str(user.pk), 10)
    assert [g.item.item_id for g in groups] == [item.pk]


def test_newer_edit_waits_for_the_job_a_dead_run_sent(cardtrader_sandbox, sandbox_settings, fast_jobs):
    control = cardtrader_sandbox.control
    account, user, product, item = _listed_item(control, quantity=3)
    seller = str(user.pk)

    # A run sends the job for price 5.00, then "dies": its operation is left running with the job recorded.
    item_edit(seller=user, item_id=item.pk, changes={"price_cents": 500})
    sync = SyncSettings.objects.get(user=user)
    client = make_client(sync)
    try:
        run = PushRun(sync, client, RunReport())
        groups = claim(seller, 10)
        list(run._send_bulk("bulk_update", groups))
    finally:
        client.close()
    first = SyncOperation.objects.get(item=item)
    assert first.state == OperationState.RUNNING and first.cardtrader_job_uuid
    assert recover_dead_runs()["requeued"] == 1

    item_edit(seller=user, item_id=item.pk, changes={"price_cents": 700})
    push_seller_run(seller)

    assert _remote(control, account, product["id"])["price_cents"] == 700
    ops = list(SyncOperation.objects.filter(item=item).order_by("pk"))
    assert [op.state for op in ops] == [OperationState.SUCCEEDED, OperationState.SUCCEEDED]
    # The old job was read, not forgotten: the first edit landed through it, the newer one in a job of its own.
    assert ops[0].result["job"] == first.cardtrader_job_uuid
    assert ops[1].result["job"] != first.cardtrader_job_uuid
    sent = [e for e in control.request_log(account.user_id) if e["method"] == "POST" and "bulk_update" in e["path"]]
    assert len(sent) == 2
    assert sent[1]["time"] > max(e["time"] for e in control.request_log(account.user_id)
                                 if e["method"] == "GET" and first.cardtrader_job_uuid in e["path"])


@pytest.mark.parametrize("change", ["delete", "absolute quantity"])
def test_delete_or_absolute_quantity_is_not_held(cardtrader_sandbox, sandbox_settings, fast_jobs, change):
    """They make the uncertain increment's fate moot: they go out at once, and the next settle closes it."""
    control = cardtrader_sandbox.control
    account, user, product, item = _listed_item(control, quantity=5)
    seller = str(user.pk)
    item_adjust(seller=user, item_id=item.pk, delta=-1, reason="sale")
    control.set_faults(user_id=account.user_id, error_5xx_rate=1.0)
    try:
        push_seller_run(seller)
    finally:
        control.clear_faults(user_id=account.user_id)
    if change == "delete":
        item_delete(seller=user, item_id=item.pk)
    else:
        item_edit(seller=user, item_id=item.pk, changes={"quantity": 9})
    push_seller_run(seller)
    remote = _remote(control, account, product["id"])
    assert remote is None if change == "delete" else remote["quantity"] == 9
    settle_uncertain(seller, min_age_seconds=0.0)
    assert not SyncOperation.objects.filter(seller=user).exclude(state=OperationState.SUCCEEDED).exists()


class _WorkerDied(BaseException):
    """Stands for a worker killed between CardTrader accepting a bulk call and the answer reaching
    it. A real SIGKILL cannot be aimed at that window of a few milliseconds; the bulk call itself
    goes to the sandbox for real, so the job exists there exactly as it would."""


class _DiesAfterSending:
    def __init__(self, client) -> None:
        self._client = client

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def bulk_update(self, *args, **kwargs):
        self._client.bulk_update(*args, **kwargs)
        raise _WorkerDied


def _send_and_lose_the_answer(user) -> SyncOperation:
    client = make_client(SyncSettings.objects.get(user=user))
    try:
        with pytest.raises(_WorkerDied):
            push_seller_run(str(user.pk), client=_DiesAfterSending(client))
    finally:
        client.close()
    return SyncOperation.objects.get(seller=user)


def test_newer_edit_waits_for_a_job_whose_answer_was_lost(cardtrader_sandbox, sandbox_settings, fast_jobs, settings):
    control = cardtrader_sandbox.control
    account, user, product, item = _listed_item(control, quantity=3)
    seller = str(user.pk)
    settings.PUSH_UNRECORDED_JOB_SECONDS = 2.5

    control.set_config(job_pending_seconds=1.5, job_running_seconds=0.5)  # the lost job runs for 2 s
    item_edit(seller=user, item_id=item.pk, changes={"price_cents": 500})
    lost = _send_and_lose_the_answer(user)
    assert lost.state == OperationState.PENDING and not lost.cardtrader_job_uuid
    control.set_config(job_pending_seconds=0.2, job_running_seconds=0.2)  # the re-send would overtake it

    item_edit(seller=user, item_id=item.pk, changes={"price_cents": 700})
    assert push_seller_run(seller).requests == 0, "the newer edit went out while the lost job could still run"
    assert set(SyncOperation.objects.filter(item=item).values_list("next_attempt_at", flat=True)) == {
        datetime.fromtimestamp(lost.result["sending_at"] + 2.5, tz=UTC)}

    time.sleep(max(0.0, lost.result["sending_at"] + 2.5 - time.time()) + 0.05)
    push_seller_run(seller)
    assert _remote(control, account, product["id"])["price_cents"] == 700
    time.sleep(0.5)  # past the lost job's own end, whichever order the sandbox saw
    assert _remote(control, account, product["id"])["price_cents"] == 700
    assert set(SyncOperation.objects.filter(item=item).values_list("state", flat=True)) == {OperationState.SUCCEEDED}
    sent = [e for e in control.request_log(account.user_id) if e["method"] == "POST" and "bulk_update" in e["path"]]
    assert len(sent) == 2 and sent[1]["time"] - sent[0]["time"] >= 2.4


def test_lost_answer_without_a_newer_edit_is_resent_at_once(cardtrader_sandbox, sandbox_settings, fast_jobs):
    """The same values again are harmless whenever the lost job lands: no wait, only the re-send."""
    control = cardtrader_sandbox.control
    _account, user, _product, item = _listed_item(control, quantity=3)
    item_edit(seller=user, item_id=item.pk, changes={"price_cents": 500})
    lost = _send_and_lose_the_answer(user)
    SyncOperation.objects.filter(pk=lost.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))

    assert [g.item.item_id for g in claim(str(user.pk), 10)] == [item.pk]
