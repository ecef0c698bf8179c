"""Feature flags from the environment (``FEATURE_<NAME>=true|false``), all on by default.

They are kill switches for an incident, not a rollout system: flipping one means changing the
environment and restarting the processes (a flag is read once, at settings load, so web and
workers never disagree within one deploy). ``all_flags()`` feeds the status endpoint and the
admin dashboard. Asking for a flag that is not declared here is a KeyError, so a typo cannot
silently read as "off".
"""
from __future__ import annotations

from typing import Any

# name -> (default, what turning it off does)
FLAGS: dict[str, tuple[bool, str]] = {
    "adaptive_rate_limiting": (True, "Off: the limiter keeps every seller at the nominal budget after a 429."),
    "circuit_breaker": (True, "Off: breakers never open; failures are still counted."),
    "batch_updates": (True, "Off: pushes go out one item per CardTrader call instead of bulk jobs."),
    "webhook_auto_apply": (
        True, "Off: webhook deliveries are verified and stored but not applied; the sweeper applies "
              "them once the flag is back on.",
    ),
    "scheduled_reconcile": (True, "Off: beat's nightly reconcile is skipped (on-demand reconciles still run)."),
}


def from_env(env: Any) -> dict[str, bool]:
    """Read every flag with django-environ's ``env`` (called from settings)."""
    return {name: env.bool(f"FEATURE_{name.upper()}", default=default) for name, (default, _) in FLAGS.items()}


def enabled(name: str) -> bool:
    from django.conf import settings

    if name not in FLAGS:
        raise KeyError(f"unknown feature flag {name!r} (declare it in brxsync/features.py)")
    return bool(settings.FEATURE_FLAGS.get(name, FLAGS[name][0]))


def all_flags() -> dict[str, bool]:
    """Every flag and its current value, for the status endpoint and the dashboard."""
    return {name: enabled(name) for name in FLAGS}


def describe() -> list[dict[str, Any]]:
    """Flags with their default and effect, for the admin dashboard."""
    return [{"name": name, "enabled": enabled(name), "default": default, "when_off": effect}
            for name, (default, effect) in FLAGS.items()]
