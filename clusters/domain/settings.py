"""Cluster settings: defaults, types and validation (the contract of design.md)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from clusters.domain.rejoin_plan import RejoinMethodError, parse_rejoin_method

HOOK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
BACKUP_WINDOW = re.compile(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d")


class SettingsError(ValueError):
    """Invalid settings; `errors` maps each setting to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class ClusterSettings:
    failover_mode: str = "manual"
    paused: bool = False
    tick_seconds: float = 1.0
    failcount: int = 3
    reprobe_interval_ms: int = 200
    failover_limit: int = 3
    failover_window_seconds: int = 3600
    failover_min_interval_seconds: int = 60
    max_replica_delay_seconds: int = 30
    check_replication_state: bool = True
    candidate_requires_semi_sync: bool = False
    semi_sync: bool = False
    semi_sync_timeout_ms: int = 10000
    semi_sync_on_timeout: str = "async"
    tls: str = "preferred"
    tls_ca: str = ""
    preferred_servers: list[str] = field(default_factory=list)
    ignored_servers: list[str] = field(default_factory=list)
    switchover_wait_trx_seconds: int = 10
    switchover_wait_kill_ms: int = 5000
    replicas_read_only: bool = True
    autorejoin: bool = True
    # How a returning old primary rejoins (clusters.domain.rejoin_plan): a method or an ordered list; None
    # is the origin's default (gtid for registered clusters, flashback then reseed for provisioned ones).
    rejoin_method: str | list[str] | None = None
    # Provisioned clusters: a server down this long is replaced by a new replica (0: never).
    replace_after_seconds: int = 300
    pre_failover: str = ""
    post_failover: str = ""
    fence: str = ""
    fence_required: bool = False
    # Provisioned clusters default to true (set when they are created): DELETE is refused while it is on.
    deletion_protection: bool = False
    # Backups (docs/backups.md): a daily window "HH:MM-HH:MM" (UTC; "" = no schedule), how long backups
    # are kept, whether stored backups and binlogs are encrypted with the cluster's key, and whether the
    # primary's binary logs are archived (once the cluster has a backup to replay them onto).
    backup_window: str = ""
    backup_retention_days: int = 7
    backup_encryption: bool = True
    binlog_archiving: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# (min, max) for numeric settings
_RANGES: dict[str, tuple[float, float]] = {
    "tick_seconds": (1, 60),
    "failcount": (1, 20),
    "reprobe_interval_ms": (50, 5000),
    "failover_limit": (0, 100),
    "failover_window_seconds": (60, 7 * 86400),
    "failover_min_interval_seconds": (0, 86400),
    "max_replica_delay_seconds": (0, 86400),
    "semi_sync_timeout_ms": (100, 3600_000),
    "switchover_wait_trx_seconds": (0, 3600),
    "switchover_wait_kill_ms": (0, 600_000),
    "replace_after_seconds": (0, 7 * 86400),
    "backup_retention_days": (1, 3650),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "failover_mode": ("manual", "automatic"),
    "semi_sync_on_timeout": ("async", "wait"),
    "tls": ("disabled", "preferred", "verify"),
}
_HOOKS = ("pre_failover", "post_failover", "fence")
_ADDRESS_LISTS = ("preferred_servers", "ignored_servers")
NAMES = tuple(f.name for f in fields(ClusterSettings))


def merge_settings(current: dict[str, Any] | None, changes: dict[str, Any]) -> ClusterSettings:
    """Validate `changes` on top of `current` (or the defaults); raise SettingsError naming every bad key."""
    if not isinstance(changes, dict):
        raise SettingsError({"settings": "must be an object"})
    base = ClusterSettings(**{k: v for k, v in (current or {}).items() if k in NAMES}).as_dict()
    errors: dict[str, str] = {}
    defaults = ClusterSettings()
    for key, value in changes.items():
        if key not in NAMES:
            errors[key] = "unknown setting"
            continue
        default = getattr(defaults, key)
        if key == "rejoin_method":
            try:
                # null, "" or [] is the origin's default (gtid, or flashback then reseed)
                base[key] = None if value in (None, "", []) else list(parse_rejoin_method(value))
            except RejoinMethodError as exc:
                errors[key] = str(exc)
            continue
        if isinstance(default, bool):
            if not isinstance(value, bool):
                errors[key] = "must be true or false"
                continue
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                errors[key] = "must be a number"
                continue
            if isinstance(default, int) and not isinstance(default, bool) and value != int(value):
                errors[key] = "must be a whole number"
                continue
            low, high = _RANGES.get(key, (0, 1e12))
            if not low <= value <= high:
                errors[key] = f"must be between {low:g} and {high:g}"
                continue
            value = type(default)(value)
        elif isinstance(default, list):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                errors[key] = 'must be a list of "host:port" strings'
                continue
        elif isinstance(default, str):
            if not isinstance(value, str):
                errors[key] = "must be a string"
                continue
            if key in _CHOICES and value not in _CHOICES[key]:
                errors[key] = f"must be one of {', '.join(_CHOICES[key])}"
                continue
            if key == "backup_window" and value and not BACKUP_WINDOW.fullmatch(value):
                errors[key] = 'must be "HH:MM-HH:MM" (UTC, e.g. "02:00-04:00") or "" for no schedule'
                continue
            if key in _HOOKS and value and not HOOK_NAME.fullmatch(value):
                errors[key] = (
                    "must be the name of a script in the hooks directory (letters, digits, . _ -; no path)"
                )
                continue
        base[key] = value
    if errors:
        raise SettingsError(errors)
    if base["tls"] == "verify" and not base["tls_ca"]:
        raise SettingsError({"tls_ca": "a CA certificate (PEM) is required when tls is verify"})
    # Checked when either is changed (settings saved before this rule still load; the failover job
    # refuses to promote with them): a required fence with no hook would be a silent promotion.
    if ("fence_required" in changes or "fence" in changes) and base["fence_required"] and not base["fence"]:
        raise SettingsError(
            {
                "fence_required": "fence_required needs a fence hook: set fence to the name of a "
                "script in the hooks directory, or set fence_required to false"
            }
        )
    return ClusterSettings(**base)
