"""The project's URLs plus test-only views: a crash (forced 500) and a slow idempotent write.

Used through ``settings.ROOT_URLCONF = "tests.api.urls"`` by the tests that need them; the
real routes are all still here, so nothing else changes.
"""
from __future__ import annotations

import time
import uuid

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from brxsync.api.views import SellerScopedView, accepted
from brxsync.urls import handler400, handler403, handler404, handler500  # noqa: F401
from brxsync.urls import urlpatterns as project_patterns

SLOW_SECONDS = 0.6


class CrashApi(SellerScopedView):
    def get(self, request: Request, seller_uuid: uuid.UUID) -> Response:
        raise RuntimeError("secret internal detail: password=hunter2")

    def post(self, request: Request, seller_uuid: uuid.UUID) -> Response:
        from syncops.models import SyncOperation

        # Writes, then crashes: the write must roll back and the idempotency key be released.
        SyncOperation.objects.create(seller=self.get_seller(), kind="import", operation_key=f"crash:{uuid.uuid4()}")
        raise RuntimeError("crash after writing")


class SlowCreateApi(SellerScopedView):
    """Acts (creates an operation) and takes a while, so concurrent duplicates overlap it."""

    def post(self, request: Request, seller_uuid: uuid.UUID) -> Response:
        from syncops.models import SyncOperation

        op = SyncOperation.objects.create(
            seller=self.get_seller(), kind="import", operation_key=f"slow:{uuid.uuid4()}",
            payload={"body": request.data},
        )
        time.sleep(SLOW_SECONDS)
        return accepted(op.pk)


def django_crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("plain django view crashed: password=hunter2")


urlpatterns = [
    *project_patterns,
    path("api/v1/test/sellers/<uuid:seller_uuid>/crash", CrashApi.as_view()),
    path("api/v1/test/sellers/<uuid:seller_uuid>/slow", SlowCreateApi.as_view()),
    path("test/django-crash", django_crash),
]
