"""Create or refresh the django-celery-beat rows listed in ``brxsync.schedules``."""
from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from brxsync.schedules import PERIODIC_TASKS


class Command(BaseCommand):
    help = "Create missing beat schedules (idempotent; keeps intervals and flags edited in admin)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        created = 0
        for spec in PERIODIC_TASKS:
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=spec.every_seconds, period=IntervalSchedule.SECONDS
            )
            task, was_created = PeriodicTask.objects.get_or_create(
                name=spec.name,
                defaults={"task": spec.task, "interval": interval, "queue": spec.queue,
                          "description": spec.description, "kwargs": json.dumps({})},
            )
            if not was_created:
                task.task = spec.task
                task.queue = spec.queue
                task.description = spec.description
                task.save(update_fields=["task", "queue", "description"])
            created += was_created
        self.stdout.write(f"periodic tasks: {created} created, {len(PERIODIC_TASKS) - created} already present")
