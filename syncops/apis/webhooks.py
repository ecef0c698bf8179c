"""CardTrader's webhook endpoint: ``POST /api/v1/webhooks/cardtrader/<webhook_id>/``.

Thin: find the seller by the URL's unguessable id, read the raw body once (bounded), hand it to
the inbox service, translate its refusal into the error envelope. No JWT and no CSRF: the
signature is the authentication, and it covers exactly the bytes read here.
"""
from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from brxsync.api.errors import error_response
from syncops.selectors.webhooks import webhook_target
from syncops.services.webhooks import WebhookRejected, webhook_outcome_count, webhook_receive


def _too_large(limit: int) -> HttpResponse:
    return error_response(413, "payload_too_large", "The request body is too large.", {"max_bytes": limit})


def _answer(response: HttpResponse, result: str, reason: str = "") -> HttpResponse:
    """Every answer goes through here: tag it with its outcome for the metrics middleware (no
    re-parsing the JSON) and count it for the dashboard's day (rejections and duplicates store no
    row, so this is where they are seen; accepted ones are rows and cost nothing here)."""
    response.webhook_outcome = (result, reason)
    webhook_outcome_count(result, reason)
    return response


@csrf_exempt
def cardtrader_webhook(request: HttpRequest, webhook_id: str) -> HttpResponse:
    if request.method != "POST":
        return _answer(error_response(405, "method_not_allowed", "Use POST.", Allow="POST"), "rejected",
                       "method_not_allowed")
    target = webhook_target(webhook_id)  # may come from the process cache: see webhook_receive
    if target is None:
        return _answer(error_response(404, "not_found", "Unknown webhook."), "rejected", "not_found")
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _answer(error_response(400, "bad_request", "Content-Length is not a number."), "rejected", "bad_request")
    if declared > limit:
        return _answer(_too_large(limit), "rejected", "payload_too_large")
    body = request.read(limit + 1)  # never trust the header alone
    if len(body) > limit:
        return _answer(_too_large(limit), "rejected", "payload_too_large")
    signature = request.headers.get("Signature")
    try:
        receipt = webhook_receive(target=target, body=body, signature=signature)
    except WebhookRejected as exc:
        return _answer(error_response(exc.status, exc.code, exc.message, exc.details or None), "rejected", exc.code)
    response = JsonResponse(
        {"delivery_id": receipt.delivery_id, "state": receipt.state, "duplicate": receipt.duplicate}, status=200
    )
    return _answer(response, "duplicate" if receipt.duplicate else "accepted")
