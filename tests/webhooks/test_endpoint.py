"""The webhook endpoint: every status it answers, and that a refusal stores nothing."""
from __future__ import annotations

import json
import time

import pytest
from django.conf import settings

from syncops.models import OrderLedger, WebhookEvent, WebhookState
from syncops.services.orders import webhook_event_apply
from tests.webhooks import builders
from tests.webhooks.conftest import add_stock, make_shop

pytestmark = pytest.mark.django_db


def paid(order_id: int = 733733, product_id: int = 111, quantity: int = 1) -> dict:
    return builders.delivery(builders.order(order_id, "paid", [(product_id, quantity)]), cause="order.create")


def assert_nothing_stored(*shops) -> None:
    """Scoped to the test's sellers: the test database is shared with concurrent suites."""
    users = [s.user for s in shops]
    assert WebhookEvent.objects.filter(seller__in=users).count() == 0
    assert OrderLedger.objects.filter(seller__in=users).count() == 0


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["error"]["code"] == code


def test_valid_delivery_is_stored_and_answered_200(shop, post, django_capture_on_commit_callbacks):
    doc = paid()
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(shop, doc)
    assert response.status_code == 200
    assert response.json() == {"delivery_id": doc["id"], "state": "received", "duplicate": False}
    event = WebhookEvent.objects.get(seller=shop.user)
    assert (event.delivery_id, event.seller_id, event.object_id, event.state) == (
        doc["id"], shop.user.pk, 733733, WebhookState.RECEIVED)
    assert event.payload == doc
    assert event.dispatched_at is not None
    assert len(callbacks) == 1, "one hand-off to the queue, on commit"


def test_duplicate_delivery_is_200_with_no_second_row_or_effect(shop, post, django_capture_on_commit_callbacks):
    item = add_stock(shop, 111, 5)
    doc = paid(quantity=2)
    assert post(shop, doc).status_code == 200
    webhook_event_apply(event_id=WebhookEvent.objects.get(seller=shop.user).pk)
    with django_capture_on_commit_callbacks() as callbacks:
        again = post(shop, doc)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert callbacks == []
    assert WebhookEvent.objects.filter(seller=shop.user).count() == 1
    item.refresh_from_db()
    assert item.quantity == 3


def test_unknown_webhook_id_is_404(shop, post):
    response = post(shop, paid(), url="/api/v1/webhooks/cardtrader/not-a-real-id/")
    assert_error(response, 404, "not_found")
    assert_nothing_stored(shop)


def test_get_is_405(client, shop):
    assert_error(client.get(shop.url), 405, "method_not_allowed")


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", "garbage!"], ids=["missing", "wrong", "junk"])
def test_bad_signature_is_401_and_nothing_stored(shop, post, signature):
    assert_error(post(shop, paid(), signature=signature), 401, "invalid_signature")
    assert_nothing_stored(shop)


def test_signature_with_another_sellers_secret_is_401(shop, post):
    other = make_shop()
    assert_error(post(shop, paid(), secret=other.secret), 401, "invalid_signature")
    assert_nothing_stored(shop, other)


def test_signature_with_surrounding_whitespace_is_accepted(shop, post):
    doc = paid()
    _, good = builders.signed(doc, shop.secret)
    assert post(shop, doc, signature=f" {good} ").status_code == 200
    assert WebhookEvent.objects.filter(seller=shop.user).count() == 1


def test_a_signed_tampered_body_is_401(shop, client):
    body, good = builders.signed(paid(), shop.secret)
    tampered = body.replace(b'"quantity":1', b'"quantity":9')
    response = client.post(shop.url, data=tampered, content_type="application/json", HTTP_SIGNATURE=good)
    assert_error(response, 401, "invalid_signature")
    assert_nothing_stored(shop)


def test_connected_seller_without_a_secret_cannot_be_written(db, post):
    keyless = make_shop(secret="")
    assert_error(post(keyless, paid()), 401, "invalid_signature")
    assert_nothing_stored(keyless)


def test_disconnected_seller_is_410_and_nothing_stored(db, post):
    gone = make_shop(connected=False)
    assert_error(post(gone, paid()), 410, "seller_disconnected")
    assert_nothing_stored(gone)


# The endpoint keeps each process's sellers in a cache (selectors/webhooks.py). These post once
# to fill it, change the seller in the database behind its back — as another process (the API,
# the admin, an import that finds the token revoked) would, with no cache to invalidate — and
# expect the very next delivery to see the change.


def test_disconnect_answers_410_on_the_very_next_delivery(shop, post):
    from syncops.services.connection import connection_disconnect

    assert post(shop, paid(order_id=1)).status_code == 200
    connection_disconnect(seller_id=shop.user.pk)
    assert_error(post(shop, paid(order_id=2)), 410, "seller_disconnected")
    assert list(WebhookEvent.objects.filter(seller=shop.user).values_list("object_id", flat=True)) == [1]


def test_token_found_invalid_answers_410_on_the_very_next_delivery(shop, post):
    from inventory.models import ConnectionState, SyncSettings

    assert post(shop, paid(order_id=1)).status_code == 200
    SyncSettings.objects.filter(pk=shop.user.pk).update(connection_state=ConnectionState.TOKEN_INVALID)
    assert_error(post(shop, paid(order_id=2)), 410, "seller_disconnected")
    assert WebhookEvent.objects.filter(seller=shop.user).count() == 1


def test_reconnect_with_a_new_secret_verifies_with_it_at_once_and_refuses_the_old(shop, post):
    """What connection_connect stores (a new token and CardTrader's new shared secret); set
    directly because the real connect asks CardTrader's /info first."""
    from inventory.models import SyncSettings

    assert post(shop, paid(order_id=1)).status_code == 200
    old_secret, new_secret = shop.secret, "rotated-" + shop.secret
    sync = SyncSettings.objects.get(pk=shop.user.pk)
    sync.set_credentials(token="tok-new", shared_secret=new_secret)
    sync.save()
    assert_error(post(shop, paid(order_id=2), secret=old_secret), 401, "invalid_signature")
    assert post(shop, paid(order_id=3), secret=new_secret).status_code == 200
    assert_error(post(shop, paid(order_id=4), secret=old_secret), 401, "invalid_signature")
    assert sorted(WebhookEvent.objects.filter(seller=shop.user).values_list("object_id", flat=True)) == [1, 3]


def test_reconnect_after_disconnect_accepts_at_once(shop, post):
    from inventory.models import ConnectionState, SyncSettings
    from syncops.services.connection import connection_disconnect

    assert post(shop, paid(order_id=1)).status_code == 200
    connection_disconnect(seller_id=shop.user.pk)
    assert_error(post(shop, paid(order_id=2)), 410, "seller_disconnected")
    sync = SyncSettings.objects.get(pk=shop.user.pk)
    sync.set_credentials(token="tok-again", shared_secret=shop.secret)
    sync.connection_state = ConnectionState.CONNECTED
    sync.save()
    assert post(shop, paid(order_id=3)).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_cached_seller_costs_one_statement_per_delivery(post, django_assert_num_queries):
    """The hot path, outside any transaction as under gunicorn: seller check and insert are one
    autocommitted statement (no BEGIN / COMMIT) once the seller is cached, on the inbox's own
    connection; the request's connection is never used."""
    from django.test.utils import CaptureQueriesContext

    from syncops.services.webhooks import inbox_connection

    shop = make_shop()
    assert post(shop, paid(order_id=1)).status_code == 200
    with django_assert_num_queries(0), CaptureQueriesContext(inbox_connection.current()) as inbox_queries:
        response = post(shop, paid(order_id=2))
    assert response.status_code == 200 and response.json()["duplicate"] is False
    assert len(inbox_queries) == 1, [q["sql"][:80] for q in inbox_queries]
    assert WebhookEvent.objects.filter(seller=shop.user, object_id=2).exists()


def test_the_stored_payload_is_the_signed_document(shop, post):
    """PostgreSQL parses the verified body itself (no re-encoding): what is stored is what was
    signed, whatever its spacing, escapes, non-ASCII text or numbers beyond 64 bits."""
    doc = paid(order_id=41)
    doc["data"]["buyer"] = {"username": "Jos\u00e9 \u30ab\u30fc\u30c9", "note": "tab\there \"quoted\""}
    doc["data"]["huge"] = 123456789012345678901234567890
    doc["data"]["ratio"] = 0.1
    body = json.dumps(doc, indent=3, ensure_ascii=True).encode()
    assert post(shop, body).status_code == 200
    stored = WebhookEvent.objects.get(seller=shop.user).payload
    assert stored == json.loads(body)
    assert stored["data"]["buyer"]["username"] == "Jos\u00e9 \u30ab\u30fc\u30c9"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_a_body_json_accepts_but_jsonb_would_not_is_stored_from_the_parsed_document(shop, post, encoding):
    """``json.loads`` takes UTF-16 and a UTF-8 BOM; PostgreSQL's jsonb would refuse that text, so
    the parsed document is stored instead (a real sender's bytes are never refused for it)."""
    doc = paid(order_id=42)
    body = json.dumps(doc).encode(encoding)
    assert post(shop, body).status_code == 200
    assert WebhookEvent.objects.get(seller=shop.user).payload == doc


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("prepared", [True, False])
def test_the_insert_is_prepared_once_per_connection_unless_turned_off(settings, prepared):
    """Server-side binding with a prepared statement (PostgreSQL parses and plans the insert once
    per connection); ``DB_PREPARED_STATEMENTS=false`` for poolers that cannot keep them. Django's
    execute wrappers (the SQL spans) still see the statement. Outside a transaction the statement
    runs on the inbox's own connection, which is asked what it prepared."""
    from syncops.selectors.webhooks import webhook_target
    from syncops.services.webhooks import inbox_connection, webhook_receive

    settings.DB_PREPARED_STATEMENTS = prepared
    inbox_connection.close()  # a new session: nothing prepared yet
    shop = make_shop()
    target = webhook_target(shop.settings.webhook_id, fresh=True)
    seen: list[str] = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    db = inbox_connection.current()
    with db.execute_wrapper(wrapper):
        for order_id in (51, 52, 53):
            body, signature = builders.signed(paid(order_id=order_id), shop.secret)
            assert webhook_receive(target=target, body=body, signature=signature).duplicate is False
    with db.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                       ["%INSERT INTO \"syncops_webhookevent\"%"])
        prepared_count = cursor.fetchone()[0]
    assert sum("INSERT INTO" in sql for sql in seen) == 3
    assert WebhookEvent.objects.filter(seller=shop.user).count() == 3
    assert prepared_count == (1 if prepared else 0)


def test_a_duplicate_of_a_cached_seller_is_still_200_duplicate(shop, post):
    doc = paid(order_id=1)
    assert post(shop, doc).json()["duplicate"] is False
    again = post(shop, doc)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert WebhookEvent.objects.filter(seller=shop.user).count() == 1


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda d: b"{not json", "malformed_json"),
        (lambda d: b"\xff\xfe", "malformed_json"),
        (lambda d: b"[1, 2]", "invalid_delivery"),
        (lambda d: {k: v for k, v in d.items() if k != "id"}, "invalid_delivery"),
        (lambda d: {k: v for k, v in d.items() if k != "time"}, "invalid_delivery"),
        (lambda d: {k: v for k, v in d.items() if k != "cause"}, "invalid_delivery"),
        (lambda d: {k: v for k, v in d.items() if k != "object_class"}, "invalid_delivery"),
        (lambda d: {k: v for k, v in d.items() if k != "object_id"}, "invalid_delivery"),
        (lambda d: {k: v for k, v in d.items() if k != "mode"}, "invalid_delivery"),
        (lambda d: {k: v for k, v in d.items() if k != "data"}, "invalid_delivery"),
        (lambda d: {**d, "time": "yesterday"}, "invalid_delivery"),
        (lambda d: {**d, "time": True}, "invalid_delivery"),
        (lambda d: {**d, "time": 10**20}, "invalid_delivery"),
        (lambda d: {**d, "object_id": "733733"}, "invalid_delivery"),
        (lambda d: {**d, "object_id": 2**70}, "invalid_delivery"),
        (lambda d: {**d, "id": ""}, "invalid_delivery"),
        (lambda d: {**d, "id": "x" * 65}, "invalid_delivery"),
        (lambda d: {**d, "id": None}, "invalid_delivery"),
        (lambda d: {**d, "mode": "staging"}, "invalid_delivery"),
        (lambda d: {**d, "data": [1]}, "invalid_delivery"),
        (lambda d: {**d, "data": None}, "invalid_delivery"),
        (lambda d: {**d, "data": {**d["data"], "buyer": {"username": "nul\u0000"}}}, "invalid_delivery"),
    ],
    ids=["syntax", "not-utf8", "array", "no-id", "no-time", "no-cause", "no-class", "no-object-id", "no-mode",
         "no-data", "time-str", "time-bool", "time-huge", "object-id-str", "object-id-huge", "id-empty",
         "id-long", "id-null", "mode-unknown", "data-list", "data-null-on-create", "nul-char"],
)
def test_malformed_delivery_is_400_and_nothing_stored(shop, post, mutate, code):
    body = mutate(paid())
    assert_error(post(shop, body), 400, code)
    assert_nothing_stored(shop)


def test_body_over_the_limit_is_413_by_header(shop, post):
    doc = paid()
    doc["padding"] = "x" * settings.WEBHOOK_MAX_BODY_BYTES
    assert_error(post(shop, doc), 413, "payload_too_large")
    assert_nothing_stored(shop)


def test_body_over_the_limit_is_413_without_a_content_length(shop, rf):
    """The header can be absent or lie; the view also counts the bytes it actually read."""
    from io import BytesIO

    from syncops.apis.webhooks import cardtrader_webhook

    body = b"x" * (settings.WEBHOOK_MAX_BODY_BYTES + 10)
    request = rf.post(shop.url, data=b"", content_type="application/json")
    request._stream = BytesIO(body)  # a stream with no declared length, like chunked input
    request.META.pop("CONTENT_LENGTH", None)
    response = cardtrader_webhook(request, webhook_id=shop.settings.webhook_id)
    assert_error(response, 413, "payload_too_large")
    assert_nothing_stored(shop)


def test_body_exactly_at_the_limit_is_accepted(shop, post):
    doc = paid()
    base = len(builders.body_of({**doc, "padding": ""}))
    doc["padding"] = "x" * (settings.WEBHOOK_MAX_BODY_BYTES - base)
    assert len(builders.body_of(doc)) == settings.WEBHOOK_MAX_BODY_BYTES
    assert post(shop, doc).status_code == 200


@pytest.mark.parametrize("offset", [-2 * 86400, 2 * 86400], ids=["old", "future"])
def test_delivery_far_outside_the_window_is_stored_stale_not_applied(shop, post, offset):
    item = add_stock(shop, 111, 5)
    doc = builders.delivery(builders.order(1, "paid", [(111, 2)]), at=time.time() + offset)
    response = post(shop, doc)
    assert response.status_code == 200 and response.json()["state"] == "stale"
    event = WebhookEvent.objects.get(seller=shop.user)
    assert event.state == WebhookState.STALE
    assert webhook_event_apply(event_id=event.pk) == "stale"
    item.refresh_from_db()
    assert item.quantity == 5 and OrderLedger.objects.filter(seller=shop.user).count() == 0


def test_delivery_inside_the_window_is_applied(shop, post):
    add_stock(shop, 111, 5)
    doc = builders.delivery(builders.order(1, "paid", [(111, 2)]), at=time.time() - 23 * 3600)
    assert post(shop, doc).json()["state"] == "received"


def test_test_mode_is_recorded_not_applied(shop, post):
    item = add_stock(shop, 111, 5)
    response = post(shop, builders.delivery(builders.order(1, "paid", [(111, 2)]), mode="test"))
    assert response.json()["state"] == "ignored"
    event = WebhookEvent.objects.get(seller=shop.user)
    assert webhook_event_apply(event_id=event.pk) == "ignored"
    item.refresh_from_db()
    assert item.quantity == 5 and OrderLedger.objects.filter(seller=shop.user).count() == 0


def test_routing_is_by_url_never_by_data_seller(db, post):
    mine, other = make_shop(), make_shop()
    add_stock(mine, 111, 5)
    theirs = add_stock(other, 111, 5)
    data = builders.order(1, "paid", [(111, 2)])
    data["seller"] = {"id": other.settings.cardtrader_user_id or 1, "username": other.user.username}
    assert post(mine, builders.delivery(data)).status_code == 200
    event = WebhookEvent.objects.get(seller=mine.user)
    assert event.seller_id == mine.user.pk
    webhook_event_apply(event_id=event.pk)
    theirs.refresh_from_db()
    assert theirs.quantity == 5
    assert mine.user.inventory_items.get().quantity == 3


def test_integer_delivery_id_is_accepted_as_text(shop, post):
    doc = paid()
    doc["id"] = 123456789
    assert post(shop, doc).status_code == 200
    assert WebhookEvent.objects.get(seller=shop.user).delivery_id == "123456789"


def test_response_is_json_with_the_state(shop, post):
    response = post(shop, paid())
    assert json.loads(response.content)["state"] == "received"
