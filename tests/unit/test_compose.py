"""docker-compose.yml agrees with the settings module and with design.md's "Running it"."""

import re
from pathlib import Path

import pytest
import yaml

from controlplane.queues import ALL_QUEUES

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DBPILOT = {name: svc for name, svc in SERVICES.items() if svc.get("image", "").startswith("dbpilot")}
SECRETS = {"SECRET_KEY", "DBPILOT_FERNET_KEYS", "DBPILOT_TOKEN_PEPPER", "DBPILOT_METRICS_TOKEN"}


def settings_read_by_module() -> set[str]:
    source = (ROOT / "controlplane" / "settings.py").read_text()
    names = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', source))
    names |= set(re.findall(r'secret\(\s*"([A-Z_]+)"', source))
    names |= set(re.findall(r'_generated_secret\(\s*"([A-Z_]+)"', source))
    names |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z_]+)"', source))
    return names


def test_every_dbpilot_environment_variable_is_a_setting():
    known = settings_read_by_module()
    for name, service in DBPILOT.items():
        for var in service["environment"]:
            base = var[: -len("_FILE")] if var.endswith("_FILE") else var
            assert base in known, f"{name}: {var} is not read by controlplane/settings.py"
            if base in SECRETS:
                assert var.endswith("_FILE"), f"{name}: secret {base} should come from a file"


def test_control_plane_database_is_postgresql_and_redis_is_the_broker():
    for name, service in DBPILOT.items():
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgres://"), name
        host = re.match(r"postgres://[^@]+@([^:/]+)", env["DATABASE_URL"]).group(1)
        assert host in SERVICES and SERVICES[host]["image"].startswith("postgres:")
        redis_host = re.match(r"redis://([^:/]+)", env["REDIS_URL"]).group(1)
        assert redis_host in SERVICES and SERVICES[redis_host]["image"].startswith("redis:")
        assert env["DEBUG"] == "0", "production-like: DEBUG off"


def test_processes_are_those_of_running_it():
    commands = {name: svc["command"] for name, svc in DBPILOT.items()}
    assert "python manage.py migrate --noinput" in commands.values()
    web = [c for c in commands.values() if c.startswith("daphne")]
    assert len(web) == 1 and web[0].endswith("controlplane.asgi:application")
    beats = [c for c in commands.values() if c.startswith("celery -A controlplane beat")]
    assert len(beats) >= 2, "two beats or more (one active through the lease, the others standing by)"
    assert all(c == "celery -A controlplane beat" for c in beats), "each beat started plainly"
    consumed = []
    for command in commands.values():
        if command.startswith("celery -A controlplane worker"):
            match = re.search(r"-Q (\S+)", command)
            assert match, f"each worker consumes named queues: {command}"
            consumed += match.group(1).split(",")
    assert sorted(consumed) == sorted(ALL_QUEUES), "one worker per queue, every queue consumed"


def test_three_mariadb_nodes_start_read_only_with_gtid_replication_settings():
    nodes = {n: s for n, s in SERVICES.items() if s.get("image", "").startswith("mariadb:")}
    assert len(nodes) == 3
    server_ids = set()
    for name, node in nodes.items():
        command = node["command"]
        for option in (
            "--log-bin",
            "--log-slave-updates",
            "--gtid-strict-mode=ON",
            "--binlog-format=ROW",
            "--read-only=ON",
        ):
            assert option in command, f"{name} lacks {option}"
        server_ids.add(re.search(r"--server-id=(\d+)", command).group(1))
    assert len(server_ids) == 3


def test_allowed_networks_cover_the_database_nodes():
    import ipaddress

    subnet = ipaddress.ip_network(COMPOSE["networks"]["dbpilot"]["ipam"]["config"][0]["subnet"])
    for name, service in DBPILOT.items():
        allowed = [
            ipaddress.ip_network(n) for n in service["environment"]["DBPILOT_ALLOWED_NETWORKS"].split(",")
        ]
        assert any(subnet.subnet_of(net) for net in allowed), name
