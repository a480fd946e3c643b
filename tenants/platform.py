"""The platform-wide pause: operators stop every automatic action at once (maintenance of dbpilot
itself, incidents). Monitoring and the job services call `platform_paused()` before acting on their own.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from tenants.models import PlatformState


def platform_state() -> PlatformState:
    """The current state (a default, running one when nobody ever paused)."""
    return PlatformState.objects.filter(pk=PlatformState.SINGLETON_ID).first() or PlatformState()


def platform_paused() -> bool:
    """True while operators have paused the platform: take no automatic action on any cluster."""
    return PlatformState.objects.filter(pk=PlatformState.SINGLETON_ID, paused=True).exists()


@transaction.atomic
def set_platform_paused(paused: bool, *, by: str, reason: str = "") -> PlatformState:
    """Pause or resume (idempotent); `by` labels who did it (an operator's actor label)."""
    state, _ = PlatformState.objects.select_for_update().get_or_create(pk=PlatformState.SINGLETON_ID)
    state.paused = paused
    state.reason = reason[:200] if paused else ""
    state.changed_by = by[:200]
    state.changed_at = timezone.now()
    state.save()
    return state
