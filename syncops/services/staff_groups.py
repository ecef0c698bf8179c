"""The read-only staff group: every console page visible, no action, no edit.

Shared by the data migration (``0003_admin_readonly_group``, with historical models) and the
``setup_staff_groups`` command (re-run it after a release that adds models), so both grant the
same thing. Permissions are created first: on a fresh database ``post_migrate`` has not run yet
when the migration does.
"""
from __future__ import annotations

from typing import Any

READONLY_GROUP = "Staff (read-only)"
# Apps whose models the console shows; "view" is the only codename granted.
CONSOLE_APPS = ("inventory", "syncops", "ratelimit", "django_celery_beat", "api", "admin")


def ensure_readonly_staff_group(apps: Any) -> int:
    """Create/refresh the group with exactly the view permissions of CONSOLE_APPS; return their count."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        if app_config.label in (*CONSOLE_APPS, "auth", "contenttypes"):
            if not getattr(app_config, "models_module", None):
                app_config.models_module = True  # historical app configs lack it; create_permissions needs it
            create_permissions(app_config, verbosity=0, apps=apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=READONLY_GROUP)
    perms = list(Permission.objects.filter(content_type__app_label__in=CONSOLE_APPS, codename__startswith="view_"))
    group.permissions.set(perms)
    return len(perms)
