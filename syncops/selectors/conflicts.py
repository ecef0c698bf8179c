"""Reads of conflicts (oversells, unknown products, drift) that staff must look at."""
from __future__ import annotations

import uuid

from syncops.models import Conflict


def conflict_open_count(*, seller_id: uuid.UUID) -> int:
    return Conflict.objects.filter(seller_id=seller_id, resolved_at__isnull=True).count()
