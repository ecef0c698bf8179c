"""Bench databases outlive the sandbox they were filled from.

A sandbox numbers its accounts from 1 every time it starts, while a bench database keeps the
sellers of earlier runs (and of runs that crashed before cleaning up). BRX Sync refuses to connect
a CardTrader account another seller holds (docs/DECISIONS.md), so a bench frees the account id in
its own database before it connects a new seller to it.
"""
from __future__ import annotations


def free_sandbox_account(cardtrader_user_id: int) -> int:
    """Disconnect earlier runs' sellers holding this sandbox account id; returns how many."""
    from inventory.models import ConnectionState, SyncSettings

    return SyncSettings.objects.filter(cardtrader_user_id=cardtrader_user_id).exclude(
        connection_state=ConnectionState.DISCONNECTED).update(connection_state=ConnectionState.DISCONNECTED)
