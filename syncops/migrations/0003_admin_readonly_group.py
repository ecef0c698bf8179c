"""Data migration: the read-only staff group (see syncops/services/staff_groups.py)."""
from django.db import migrations


def forwards(apps, schema_editor):
    from syncops.services.staff_groups import ensure_readonly_staff_group

    ensure_readonly_staff_group(apps)


def backwards(apps, schema_editor):
    from syncops.services.staff_groups import READONLY_GROUP

    apps.get_model("auth", "Group").objects.filter(name=READONLY_GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("syncops", "0002_webhooks_dispatched_at"),
        ("inventory", "__latest__"),
        ("ratelimit", "__latest__"),
        ("api", "__latest__"),
        ("django_celery_beat", "__latest__"),
        ("admin", "__latest__"),
        ("auth", "__latest__"),
        ("contenttypes", "__latest__"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
