"""Parameter groups' allowlist: types, ranges, dangerous settings, and how a change splits into live
settings and ones waiting for a restart."""

import pytest

from clusters.domain.parameters import ALLOWED, ParameterError, plan_change, validate_parameters

pytestmark = pytest.mark.unit


def test_values_are_normalised_to_what_my_cnf_takes():
    assert validate_parameters(
        {
            "max_connections": "300",
            "innodb_buffer_pool_size": "256M",
            "slow-query-log": True,
            "transaction_isolation": "READ-COMMITTED",
        }
    ) == {
        "max_connections": "300",
        "innodb_buffer_pool_size": str(256 << 20),
        "slow_query_log": "ON",
        "transaction_isolation": "READ-COMMITTED",
    }


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"max_connections": 5}, "at least 10"),
        ({"max_connections": 10**7}, "at most 100000"),
        ({"max_connections": "many"}, "integer"),
        ({"max_connections": True}, "number"),
        ({"innodb_buffer_pool_size": "1T"}, "size"),
        ({"slow_query_log": "maybe"}, "true or false"),
        ({"transaction_isolation": "CHAOS"}, "one of"),
        ({"secure_file_priv": ""}, "file system"),
        ({"plugin_dir": "/tmp"}, "loads code"),
        ({"init_file": "/tmp/x.sql"}, "as root"),
        ({"log_error": "/tmp/e"}, "log file paths"),
        ({"read_only": "OFF"}, "dbpilot"),
        ({"no_such_thing": 1}, "unknown"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(raw, message):
    with pytest.raises(ParameterError) as caught:
        validate_parameters(raw)
    assert message in next(iter(caught.value.errors.values()))


def test_every_error_is_named_at_once():
    with pytest.raises(ParameterError) as caught:
        validate_parameters({"max_connections": 1, "plugin_dir": "/x", "sync_binlog": 1})
    assert set(caught.value.errors) == {"max_connections", "plugin_dir"}


def test_a_change_splits_into_live_and_pending_restart():
    old = {"max_connections": "300", "performance_schema": "OFF", "sync_binlog": "1"}
    new = {"max_connections": "350", "performance_schema": "ON"}
    change = plan_change(old, new)
    assert change.live == {"max_connections": "350"}
    assert change.pending_restart == {"performance_schema": "ON"}
    assert change.removed == ("sync_binlog",) and change.needs_restart
    assert not plan_change(new, new).needs_restart and not plan_change(new, new).live


def test_static_and_dynamic_flags_match_the_server():
    # Checked on MariaDB 10.11 by SET GLOBAL of each allowlisted variable (error 1238 = read-only).
    assert ALLOWED["max_connections"].dynamic and ALLOWED["innodb_buffer_pool_size"].dynamic
    assert ALLOWED["innodb_log_file_size"].dynamic and ALLOWED["innodb_read_io_threads"].dynamic
    assert not ALLOWED["performance_schema"].dynamic
