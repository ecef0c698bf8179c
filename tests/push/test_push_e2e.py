"""Local edits reach the CardTrader sandbox through real Celery workers, real PostgreSQL and Redis.

Scale: the issue's 1,000 mixed edits across 10 sellers run as is (100 per seller, applied while
the workers push). The sandbox's job delays are shortened to 0.2 s (CardTrader's real delays are
unknown) to keep the test under a minute.
"""
from __future__ import annotations

import random
import threading
import time
from contextlib import contextmanager

from django.db import connection

from inventory.models import InventoryItem
from inventory.services.edits import InsufficientStock, item_adjust, item_delete, item_edit
from syncops.models import OperationState, SyncOperation
from syncops.services.push import settle_uncertain
from syncops.services.sweeper import sweep_push
from tests.push.helpers import connect_seller, history, mismatches, wait_settled

CONDITIONS = ["Near Mint", "Slightly Played", "Moderately Played", "Played", "Heavily Played", "Poor"]


def _random_edits(rng: random.Random, user, count: int) -> dict[str, int]:
    items = list(InventoryItem.objects.filter(seller=user).order_by("pk"))
    done = {"update": 0, "delete": 0, "sale": 0, "restock": 0}
    deleted: set[int] = set()
    while sum(done.values()) < count:
        item = rng.choice(items)
        if item.pk in deleted:
            continue
        roll = rng.random()
        if roll < 0.08:
            item_delete(seller=user, item_id=item.pk)
            deleted.add(item.pk)
            done["delete"] += 1
        elif roll < 0.45:
            try:
                item_adjust(seller=user, item_id=item.pk, delta=-rng.randint(1, 2), reason="sale")
                done["sale"] += 1
            except InsufficientStock:
                item_adjust(seller=user, item_id=item.pk, delta=rng.randint(1, 3), reason="restock")
                done["restock"] += 1
        else:
            changes: dict = {}
            if rng.random() < 0.6:
                changes["price_cents"] = rng.randint(10, 5000)
            if rng.random() < 0.2:
                changes["quantity"] = rng.randint(0, 9)
            if rng.random() < 0.3:
                changes["description"] = rng.choice([None, "", "mint copy", f"note {rng.randint(1, 99)}"])
            if rng.random() < 0.2:
                changes["user_data_field"] = rng.choice([None, f"box-{rng.randint(1, 9)}"])
            if rng.random() < 0.1:
                changes["graded"] = rng.random() < 0.5
            current = InventoryItem.objects.get(pk=item.pk).properties
            props: dict = {}
            if rng.random() < 0.3:
                props["condition"] = rng.choice(CONDITIONS)
            if "mtg_foil" in current and rng.random() < 0.3:
                props["foil"] = rng.choice([True, False, None])
            if props:
                changes["properties"] = props
            if not changes:
                changes["price_cents"] = rng.randint(10, 5000)
            item_edit(seller=user, item_id=item.pk, changes=changes)
            done["update"] += 1
    return done


def _edit_in_parallel(users, per_seller: int, *, seed: int) -> dict[str, int]:
    """Each seller's edits from its own thread (and database connection), as concurrent shops would."""
    totals: dict[str, int] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(index, user):
        try:
            done = _random_edits(random.Random(seed * 1000 + index), user, per_seller)
            with lock:
                for k, v in done.items():
                    totals[k] = totals.get(k, 0) + v
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, u)) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return totals


def _assert_all_equal(control, pairs):
    for account, user in pairs:
        diff = mismatches(control, account, user)
        if diff:  # the story of the first differing product says what went wrong
            story = history(control, account, int(diff[0].split(":")[0]))
            raise AssertionError(f"seller {account.user_id}: {len(diff)} differences, e.g. {diff[:5]}; {story}")


def _max_requests_in_10s(log: list[dict]) -> int:
    times = sorted(e["time"] for e in log)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= 10.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _assert_no_429(control, accounts, since: float) -> None:
    """Fault-free runs: the sandbox's own log shows CardTrader never had to refuse us."""
    for account in accounts:
        refused = [e for e in control.request_log(account.user_id, since=since) if e["status"] == 429]
        assert not refused, f"seller {account.user_id} got {len(refused)} 429s, e.g. {refused[:3]}"


@contextmanager
def _editing_until_a_batch_is_in_flight(users, per_seller: int, *, seed: int):
    """Edits run in the background while the body acts on a batch in flight (yielded: the running
    operations that have a CardTrader job). Waiting for every edit first let a fast worker finish
    every batch before the test looked for one. Edit errors are raised once the edits are done."""
    errors: list[BaseException] = []

    def edit() -> None:
        try:
            _edit_in_parallel(users, per_seller, seed=seed)
        except BaseException as exc:  # raised in the test's thread below
            errors.append(exc)

    editing = threading.Thread(target=edit)
    editing.start()
    in_flight = SyncOperation.objects.filter(seller__in=users, state=OperationState.RUNNING).exclude(
        cardtrader_job_uuid="")
    deadline = time.monotonic() + 30
    try:
        while not in_flight.exists():
            assert time.monotonic() < deadline, "no batch was ever in flight"
            time.sleep(0.02)
        yield in_flight
    finally:
        editing.join()
    if errors:
        raise errors[0]


def _settle_all(users):
    def settle():
        for user in users:
            settle_uncertain(str(user.pk), min_age_seconds=0.0)
        sweep_push(grace_seconds=2.0)
    return settle


def test_unfoil_reaches_cardtrader_as_false(push_workers, fast_jobs, cardtrader_sandbox):
    """The known pitfall: CardTrader keeps a boolean that is omitted, so clearing must send false."""
    control = cardtrader_sandbox.control
    push_workers.start()
    account, user = connect_seller(control, products=0)
    product = control.add_product(account.user_id, blueprint_id=6, quantity=2, price=1.5,
                                  properties={"mtg_foil": True, "condition": "Near Mint"})
    item = InventoryItem.objects.create(
        seller=user, product_id=product["id"], blueprint_id=6, game_id=1, quantity=2, price_cents=150,
        properties={"mtg_foil": True, "condition": "Near Mint"})
    started = time.time()
    item_edit(seller=user, item_id=item.pk, changes={"properties": {"foil": None}})
    wait_settled([user], timeout=30)
    _assert_no_429(control, [account], started)
    remote = {r["id"]: r for r in control.products(account.user_id)}[product["id"]]
    assert remote["properties_hash"]["mtg_foil"] is False
    op = SyncOperation.objects.get(item=item)
    assert op.state == OperationState.SUCCEEDED and op.cardtrader_job_uuid
    item.refresh_from_db()
    assert item.sync_state == "in_sync"


def test_thousand_mixed_edits_across_ten_sellers(push_workers, fast_jobs, cardtrader_sandbox):
    control = cardtrader_sandbox.control
    push_workers.start()
    pairs = [connect_seller(control, products=40, seed=i, name=f"Shop {i}") for i in range(10)]
    started = time.time()
    totals = _edit_in_parallel([u for _, u in pairs], 100, seed=7)
    users = [u for _, u in pairs]
    wait_settled(users, timeout=60)
    ops = SyncOperation.objects.filter(seller__in=users)
    assert ops.count() == 1000
    assert not ops.exclude(state=OperationState.SUCCEEDED).exists(), list(
        ops.exclude(state=OperationState.SUCCEEDED).values("kind", "state", "last_error")[:5])
    _assert_all_equal(control, pairs)
    _assert_no_429(control, [a for a, _ in pairs], started)
    for account, _ in pairs:
        assert _max_requests_in_10s(control.request_log(account.user_id, since=started)) <= 200
    assert totals["delete"] and totals["sale"] and totals["update"]


def test_mixed_edits_under_faults(push_workers, fast_jobs, cardtrader_sandbox, settings):
    """10% 5xx, 5% timeouts, HTML error pages and a 429 burst: still equal at the end, every
    operation settled with a reason, no duplicate listing."""
    control = cardtrader_sandbox.control
    push_workers.env.update(BREAKER_OPEN_SECONDS="2", CARDTRADER_WRITE_TIMEOUT="1",
                            PUSH_RETRY_BASE_SECONDS="0.25", PUSH_RETRY_MAX_SECONDS="2")
    settings.BREAKER_OPEN_SECONDS = 2.0  # this process settles too, on the same breakers
    push_workers.start()
    pairs = [connect_seller(control, products=30, seed=20 + i, name=f"Faulty {i}") for i in range(4)]
    for account, _ in pairs:
        control.set_faults(user_id=account.user_id, error_5xx_rate=0.10, timeout_rate=0.05,
                           timeout_seconds=3.0, html_error_rate=0.03, rate_limit_burst=2)
    users = [u for _, u in pairs]
    try:
        _edit_in_parallel(users, 60, seed=11)
        try:
            wait_settled(users, timeout=90, settle=_settle_all(users))
        except AssertionError as exc:
            accounts = {u.pk: a for a, u in pairs}
            stories = [history(control, accounts[op.seller_id], op.product_id) for op in SyncOperation.objects.filter(
                seller__in=users).exclude(state__in=("succeeded", "failed"))[:3]]
            raise AssertionError(f"{exc}\n" + "\n".join(stories)) from None
    finally:
        for account, _ in pairs:
            control.clear_faults(user_id=account.user_id)
    ops = SyncOperation.objects.filter(seller__in=users)
    failed = ops.filter(state=OperationState.FAILED)
    assert all(op.last_error for op in failed)
    if failed.exists():
        accounts = {u.pk: a for a, u in pairs}
        raise AssertionError("\n".join(history(control, accounts[op.seller_id], op.product_id) for op in failed[:2]))
    _assert_all_equal(control, pairs)
    for account, user in pairs:
        remote_ids = [r["id"] for r in control.products(account.user_id)]
        assert len(remote_ids) == len(set(remote_ids))
        assert len(remote_ids) <= InventoryItem.objects.filter(seller=user).count()


def test_fifty_concurrent_sales_reach_cardtrader_exactly(push_workers, fast_jobs, cardtrader_sandbox):
    control = cardtrader_sandbox.control
    push_workers.start()
    account, user = connect_seller(control)
    product = control.add_product(account.user_id, blueprint_id=6, quantity=10, price=2.0)
    item = InventoryItem.objects.create(seller=user, product_id=product["id"], blueprint_id=6, game_id=1,
                                        quantity=10, price_cents=200, properties=product.get("properties", {}))
    barrier = threading.Barrier(50)
    outcomes: list[str] = []

    def sell():
        try:
            barrier.wait()
            item_adjust(seller=user, item_id=item.pk, delta=-1, reason="sale")
            outcomes.append("ok")
        except InsufficientStock:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=sell) for _ in range(50)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 10
    wait_settled([user], timeout=30)
    _assert_no_429(control, [account], started)
    item.refresh_from_db()
    assert item.quantity == 0
    remote = {r["id"]: r for r in control.products(account.user_id)}
    assert remote.get(product["id"], {"quantity": 0})["quantity"] == 0
    sales = SyncOperation.objects.filter(item=item, kind="adjust")
    assert sales.count() == 10 and not sales.exclude(state=OperationState.SUCCEEDED).exists()


def test_worker_killed_mid_batch_loses_nothing_and_applies_nothing_twice(push_workers, fast_jobs,
                                                                          cardtrader_sandbox):
    control = cardtrader_sandbox.control
    control.set_config(job_pending_seconds=1.5, job_running_seconds=1.5)  # a window to kill in
    first = push_workers.start()
    pairs = [connect_seller(control, products=60, seed=40 + i, name=f"Crash {i}") for i in range(3)]
    users = [u for _, u in pairs]
    started = time.time()
    with _editing_until_a_batch_is_in_flight(users, 80, seed=3):
        push_workers.kill(first)
        assert SyncOperation.objects.filter(seller__in=users, state=OperationState.RUNNING).exists()
    control.set_config(job_pending_seconds=0.2, job_running_seconds=0.2)
    push_workers.start()
    # Pass after pass, as beat runs it: the new worker may already be pushing a seller (the edits
    # made after the kill queued tasks for it), and the sweeper leaves a seller whose lock a live
    # run holds to its next pass; the dead run's operations must be recovered by one of them.
    recovered = 0
    deadline = time.monotonic() + 30
    while not recovered:
        assert time.monotonic() < deadline, "the sweeper never recovered the dead worker's operations"
        report = sweep_push(grace_seconds=0.0)
        recovered = report["requeued"] + report["uncertain"]
        time.sleep(0.1)
    wait_settled(users, timeout=60, settle=_settle_all(users))
    ops = SyncOperation.objects.filter(seller__in=users)
    assert not ops.exclude(state=OperationState.SUCCEEDED).exists(), list(
        ops.exclude(state=OperationState.SUCCEEDED).values("kind", "state", "last_error")[:5])
    _assert_all_equal(control, pairs)
    _assert_no_429(control, [a for a, _ in pairs], started)


def test_sigterm_mid_batch_drains_and_loses_nothing(push_workers, fast_jobs, cardtrader_sandbox):
    """Issue 10's graceful shutdown: SIGTERM to a worker's main process while a push batch is in
    flight. The worker drains (the running batch finishes, or its operations go back to the
    outbox) and exits 0; a fresh worker then finishes the rest: equal on both sides, every
    operation succeeded, no sale applied twice (quantities would differ)."""
    control = cardtrader_sandbox.control
    control.set_config(job_pending_seconds=1.0, job_running_seconds=1.0)  # a batch in flight for ~2 s
    first = push_workers.start()
    pairs = [connect_seller(control, products=40, seed=60 + i, name=f"Term {i}") for i in range(2)]
    users = [u for _, u in pairs]
    started = time.time()
    with _editing_until_a_batch_is_in_flight(users, 60, seed=5) as in_flight:
        sent_before = set(in_flight.values_list("pk", flat=True))
        assert push_workers.terminate(first, timeout=45) == 0
    # Drained: nothing is left claimed by the stopped worker.
    assert not SyncOperation.objects.filter(seller__in=users, state=OperationState.RUNNING).exists()
    finished = SyncOperation.objects.filter(pk__in=sent_before, state=OperationState.SUCCEEDED).count()
    requeued = SyncOperation.objects.filter(pk__in=sent_before, state=OperationState.PENDING).count()
    assert finished + requeued == len(sent_before)
    control.set_config(job_pending_seconds=0.2, job_running_seconds=0.2)
    push_workers.start()
    sweep_push(grace_seconds=0.0)  # beat's sweeper: re-dispatch whatever the drained worker left
    wait_settled(users, timeout=45, settle=_settle_all(users))
    ops = SyncOperation.objects.filter(seller__in=users)
    assert not ops.exclude(state=OperationState.SUCCEEDED).exists(), list(
        ops.exclude(state=OperationState.SUCCEEDED).values("kind", "state", "last_error")[:5])
    _assert_all_equal(control, pairs)
    _assert_no_429(control, [a for a, _ in pairs], started)
    for account, user in pairs:
        log = control.request_log(account.user_id, since=started)
        increments = [e for e in log if e["path"].endswith("/increment") and e["status"] == 200]
        assert len(increments) <= ops.filter(seller=user, kind="adjust").count()
