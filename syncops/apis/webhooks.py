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
from syncops.selectors.webhooks import sync_settings_for_webhook
from syncops.services.webhooks import WebhookRejected, webhook_receive


def _too_large(limit: int) -> HttpResponse:
    return error_response(413, "payload_too_large", "The request body is too large.", {"max_bytes": limit})


@csrf_exempt
def cardtrader_webhook(request: HttpRequest, webhook_id: str) -> HttpResponse:
    if request.method != "POST":
        return error_response(405, "method_not_allowed", "Use POST.", Allow="POST")
    sync_settings = sync_settings_for_webhook(webhook_id)
    if sync_settings is None:
        return error_response(404, "not_found", "Unknown webhook.")
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return error_response(400, "bad_request", "Content-Length is not a number.")
    if declared > limit:
        return _too_large(limit)
    body = request.read(limit + 1)  # never trust the header alone
    if len(body) > limit:
        return _too_large(limit)
    signature = request.headers.get("Signature")
    try:
        receipt = webhook_receive(sync_settings=sync_settings, body=body, signature=signature)
    except WebhookRejected as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details or None)
    return JsonResponse(
        {"delivery_id": receipt.delivery_id, "state": receipt.state, "duplicate": receipt.duplicate}, status=200
    )
