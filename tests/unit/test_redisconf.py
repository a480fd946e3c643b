"""REDIS_URL: plain Redis or Sentinel, and the form each client (broker, beat, Channels, hot state) gets."""

import pytest

from controlplane import redisconf

pytestmark = pytest.mark.unit


def test_a_plain_url_is_used_as_is_by_every_client():
    target = redisconf.parse("redis://127.0.0.1:6379/7")
    assert not target.is_sentinel
    assert redisconf.broker_url(target) == "redis://127.0.0.1:6379/7"
    assert redisconf.broker_transport_options(target) == {}
    assert redisconf.channel_host(target) == "redis://127.0.0.1:6379/7"
    assert redisconf.redbeat_url(target) == "redis://127.0.0.1:6379/7"


def test_a_sentinel_url_names_sentinels_master_db_and_passwords():
    target = redisconf.parse(
        "sentinel://:p%40ss@10.0.0.1:26379,[::1]:26380,sentinel-c/dbpilot/3?sentinel_password=sp"
    )
    assert target.sentinels == (("10.0.0.1", 26379), ("::1", 26380), ("sentinel-c", 26379))
    assert (target.master_name, target.db, target.password, target.sentinel_password) == (
        "dbpilot",
        3,
        "p@ss",
        "sp",
    )
    assert redisconf.broker_url(target) == (
        "sentinel://:p%40ss@10.0.0.1:26379/3;sentinel://:p%40ss@[::1]:26380/3;sentinel://:p%40ss@sentinel-c:26379/3"
    )
    assert redisconf.broker_transport_options(target) == {
        "master_name": "dbpilot",
        "sentinel_kwargs": {"password": "sp"},
    }
    host = redisconf.channel_host(target)
    assert host["master_name"] == "dbpilot" and host["db"] == 3 and host["password"] == "p@ss"
    assert host["sentinels"][1] == ("::1", 26380)
    options = redisconf.redbeat_options(target)
    assert redisconf.redbeat_url(target).startswith("redis-sentinel://")
    assert options["service_name"] == "dbpilot" and options["db"] == 3 and len(options["sentinels"]) == 3
    assert "p@ss" not in redisconf.describe(target) and "sp" not in redisconf.describe(target)


def test_the_database_defaults_to_zero():
    assert redisconf.parse("sentinel://127.0.0.1:26379/mymaster").db == 0


@pytest.mark.parametrize(
    "url, says",
    [
        ("sentinel://127.0.0.1:26379", "master name"),
        ("sentinel:///mymaster", "at least one Sentinel"),
        ("sentinel://h:port/mymaster", "not a number"),
        ("sentinel://h:26379/mymaster/x", "not a number"),
        ("sentinel://h:26379/mymaster/0/extra", "nothing more"),
        ("sentinel://h:26379/mymaster?master=x", "unknown"),
        ("http://127.0.0.1:6379", "sentinel://"),
    ],
)
def test_a_bad_url_says_what_to_fix(url, says):
    with pytest.raises(redisconf.RedisUrlError, match=says):
        redisconf.parse(url)


def test_plain_urls_lose_their_password_when_described():
    assert (
        redisconf.describe(redisconf.parse("redis://:secret@10.0.0.5:6379/0"))
        == "redis://***@10.0.0.5:6379/0"
    )
