"""docs/prometheus: the alerting rules pass `promtool check rules`, and the rules and the Grafana dashboard
use only metric names /metrics exports."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.test import override_settings

pytestmark = [pytest.mark.api, pytest.mark.django_db]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "prometheus"
METRIC = re.compile(r"\bdbpilot_[a-z_]+\b")


def exported_names(client) -> set[str]:
    with override_settings(DBPILOT_METRICS_TOKEN="metrics-secret-123"):
        text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-secret-123").content.decode()
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names.add(name)
        if kind == "counter":
            names.add(f"{name}_total")
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def test_promtool_accepts_the_rules():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/setup.sh --tests installs Debian's prometheus package"
    result = subprocess.run(
        [promtool, "check", "rules", str(DOCS / "rules.yml")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_and_dashboard_use_only_exported_metrics(client, make_cluster, world, clean_redis):
    exported = exported_names(client)
    assert {
        "dbpilot_replication_lag_seconds",
        "dbpilot_ha_jobs_total",
        "dbpilot_monitor_probes_total",
        "dbpilot_job_duration_seconds_bucket",
    } <= exported
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    expressions += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    expressions.append((DOCS / "rules.yml").read_text())
    used = {name for expr in expressions for name in METRIC.findall(expr)}
    assert used and used <= exported, f"not exported: {sorted(used - exported)}"
