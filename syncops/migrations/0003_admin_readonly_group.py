"""Data migration: the read-only staff group (see syncops/services/staff_groups.py)."""
from django.db import migrations


def forwards(apps, schema_editor):
    from syncops.services.staff_groups import ensure_readonly_staff_group

    ensure_readonly_staff_group(apps)


def backwards(apps, schema_editor):
    from syncops.services.staff_groups import READONLY_GROUP

    apps.get_model("auth", "Group").objects.filter(name=READONLY_GROUP).delete()


class Migration(migrations.Migration):
    # Pinned, never "__latest__": a later migration in one of these apps must not make this one
    # "applied before its dependency" on every database that already ran it.
    dependencies = [
        ("syncops", "0002_webhooks_dispatched_at"),
        ("inventory", "0002_inventory_stats_view"),
        ("ratelimit", "0001_initial"),
        ("api", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
