"""`GET /metrics` for Prometheus: inventory, open findings, jobs and monitoring freshness.

Refused until DBPILOT_METRICS_TOKEN is set; the scraper sends it as `Authorization: Bearer <token>`.
Values are read at scrape time (a custom collector), so every web process reports the same numbers.
"""

from __future__ import annotations

import hmac
import json
import time

import redis
from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from clusters.services.history import TICK_BUCKETS

FINISHED = ("succeeded", "failed", "refused")


JOB_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0)
ROLE_VALUES = ("primary", "replica", "relay", "orphan", "unknown")


class DbpilotCollector:
    """Everything is read at scrape time: inventory, findings and jobs from the database (a few grouped
    queries), per-server state from the hot state (topology snapshots and the latest history entry, two
    Redis round trips), monitoring counters from one Redis hash. Cardinality: per server about 12 series
    plus one per GTID domain, per cluster about 6 plus a job histogram per (kind, outcome) seen; see
    docs/metrics.md."""

    def collect(self):
        from clusters.models import Cluster, Finding, Job, Server

        clusters = list(Cluster.objects.select_related("tenant").values_list("id", "tenant__name", "name"))
        names = {cid: (tenant, name) for cid, tenant, name in clusters}
        yield GaugeMetricFamily("dbpilot_clusters", "Clusters under management", value=len(clusters))
        yield GaugeMetricFamily("dbpilot_servers", "Servers under management", value=Server.objects.count())
        findings = GaugeMetricFamily(
            "dbpilot_open_findings", "Open findings", labels=["tenant", "cluster", "severity"]
        )
        for row in (
            Finding.objects.filter(resolved_at__isnull=True)
            .values("cluster__tenant__name", "cluster__name", "severity")
            .annotate(n=Count("id"))
        ):
            findings.add_metric(
                [row["cluster__tenant__name"], row["cluster__name"], row["severity"]], row["n"]
            )
        yield findings
        jobs = GaugeMetricFamily("dbpilot_jobs", "Jobs by kind and state", labels=["kind", "state"])
        for row in Job.objects.values("kind", "state").annotate(n=Count("id")):
            jobs.add_metric([row["kind"], row["state"]], row["n"])
        yield jobs
        yield from self._jobs(names)
        try:
            yield from self._hot(names)
        except redis.RedisError:  # Redis down: no per-server or monitoring figures, the rest still reports
            pass

    def _jobs(self, names):
        from clusters.models import Job

        ha = CounterMetricFamily(
            "dbpilot_ha_jobs",
            "Finished failovers and switchovers by outcome",
            labels=["tenant", "cluster", "kind", "outcome"],
        )
        for row in (
            Job.objects.filter(kind__in=("failover", "switchover"), state__in=FINISHED)
            .values("cluster_id", "kind", "state")
            .annotate(n=Count("id"))
        ):
            if row["cluster_id"] in names:
                ha.add_metric([*names[row["cluster_id"]], row["kind"], row["state"]], row["n"])
        yield ha
        last = GaugeMetricFamily(
            "dbpilot_last_failover_duration_seconds",
            "Duration of the cluster's latest finished failover",
            labels=["tenant", "cluster"],
        )
        seen: set[int] = set()
        durations: dict[tuple, list[float]] = {}
        rows = (
            Job.objects.filter(state__in=FINISHED, started_at__isnull=False, finished_at__isnull=False)
            .order_by("-finished_at")
            .values_list("cluster_id", "kind", "state", "started_at", "finished_at")
        )
        for cid, kind, state, started, finished in rows.iterator():
            if cid not in names:
                continue
            seconds = max(0.0, (finished - started).total_seconds())
            durations.setdefault((*names[cid], kind, state), []).append(seconds)
            if kind == "failover" and cid not in seen:
                seen.add(cid)
                last.add_metric(list(names[cid]), seconds)
        yield last
        hist = HistogramMetricFamily(
            "dbpilot_job_duration_seconds",
            "Duration of finished jobs",
            labels=["tenant", "cluster", "kind", "outcome"],
        )
        for labels, values in durations.items():
            buckets = [(str(b), sum(1 for v in values if v <= b)) for b in JOB_BUCKETS]
            buckets.append(("+Inf", len(values)))
            hist.add_metric(list(labels), buckets, sum(values))
        yield hist

    def _hot(self, names):
        from clusters import hotstate
        from clusters.domain.history import gtid_sequence
        from clusters.services import history

        ids = list(names)
        topologies = hotstate.read_topologies(ids)
        latest = history.latest(ids)
        states = {}
        if ids:
            raws = hotstate.client().mget([f"dbpilot:cluster:{cid}:state" for cid in ids])
            states = {cid: json.loads(raw) for cid, raw in zip(ids, raws, strict=True) if raw}
        labels = ["tenant", "cluster", "server"]
        up = GaugeMetricFamily(
            "dbpilot_server_up", "1 when the server answered its latest probe", labels=labels
        )
        role = GaugeMetricFamily(
            "dbpilot_server_role", "1 for the server's current role", labels=[*labels, "role"]
        )
        read_only = GaugeMetricFamily("dbpilot_server_read_only", "1 when read_only is on", labels=labels)
        lag = GaugeMetricFamily(
            "dbpilot_replication_lag_seconds",
            "Seconds behind its source beyond any intended delay",
            labels=labels,
        )
        io = GaugeMetricFamily("dbpilot_replication_io_running", "1 when the IO thread runs", labels=labels)
        sql = GaugeMetricFamily(
            "dbpilot_replication_sql_running", "1 when the SQL thread runs", labels=labels
        )
        semi = GaugeMetricFamily(
            "dbpilot_semi_sync_on",
            "1 when semi-sync is active (primary: master status; replica: slave status)",
            labels=labels,
        )
        conns = GaugeMetricFamily("dbpilot_server_connections", "Threads_connected", labels=labels)
        seq = GaugeMetricFamily(
            "dbpilot_gtid_sequence", "GTID sequence number per replication domain", labels=[*labels, "domain"]
        )
        age = GaugeMetricFamily(
            "dbpilot_observation_age_seconds",
            "Seconds since the cluster's latest observation",
            labels=["tenant", "cluster"],
        )
        now = time.time()
        for cid, (tenant, name) in names.items():
            observed = states.get(cid, {}).get("observed_at")
            if observed:
                age.add_metric([tenant, name], max(0.0, now - float(observed)))
            snapshot = topologies.get(cid)
            if not snapshot:
                continue
            samples = latest.get(cid, {})
            for server in snapshot.get("servers", []):
                lv = [tenant, name, server["address"]]
                up.add_metric(lv, 1.0 if server.get("state") == "up" else 0.0)
                for r in ROLE_VALUES:
                    role.add_metric([*lv, r], 1.0 if server.get("role") == r else 0.0)
                if server.get("read_only") is not None:
                    read_only.add_metric(lv, 1.0 if server["read_only"] else 0.0)
                repl = server.get("replication")
                sample = samples.get(server["id"])
                if repl:
                    io.add_metric(lv, 1.0 if repl.get("io_running") == "Yes" else 0.0)
                    sql.add_metric(lv, 1.0 if repl.get("sql_running") == "Yes" else 0.0)
                    if sample is not None and sample.lag is not None:
                        lag.add_metric(lv, sample.lag)
                if sample is not None and sample.semi_sync is not None:
                    semi.add_metric(lv, 1.0 if sample.semi_sync else 0.0)
                if sample is not None and sample.connections is not None:
                    conns.add_metric(lv, sample.connections)
                for domain, number in gtid_sequence(server.get("gtid_current_pos")).items():
                    seq.add_metric([*lv, domain], number)
        yield from (up, role, read_only, lag, io, sql, semi, conns, seq, age)
        stats = hotstate.read_monitor_stats()
        yield CounterMetricFamily("dbpilot_monitor_ticks", "Shard ticks run", value=stats.get("shards", 0.0))
        yield CounterMetricFamily(
            "dbpilot_monitor_cluster_ticks", "Cluster ticks run", value=stats.get("clusters", 0.0)
        )
        yield CounterMetricFamily(
            "dbpilot_monitor_skipped_ticks",
            "Cluster ticks skipped because the previous one still ran",
            value=stats.get("skipped", 0.0),
        )
        yield CounterMetricFamily(
            "dbpilot_monitor_probes",
            "Server probes sent by shard ticks (rate(): probes per second)",
            value=stats.get("probes", 0.0),
        )
        duration = HistogramMetricFamily(
            "dbpilot_monitor_tick_duration_seconds", "Duration of a shard's tick"
        )
        buckets = [(str(b), stats.get(f"le:{b}", 0.0)) for b in TICK_BUCKETS]
        buckets.append(("+Inf", stats.get("shards", 0.0)))
        duration.add_metric([], buckets, stats.get("seconds", 0.0))
        yield duration


@require_GET
def metrics(request):
    expected = settings.DBPILOT_METRICS_TOKEN
    if not expected:
        return JsonResponse(
            {"detail": "Metrics are disabled: set DBPILOT_METRICS_TOKEN.", "code": "metrics_disabled"},
            status=403,
        )
    header = request.META.get("HTTP_AUTHORIZATION", "")
    given = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return JsonResponse(
            {
                "detail": "Send the metrics token as 'Authorization: Bearer <token>'.",
                "code": "not_authenticated",
            },
            status=401,
        )
    registry = CollectorRegistry()
    registry.register(DbpilotCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def api_not_found(request, exception=None):
    """Unknown URLs under /api/ answer JSON like the rest of the API; others get Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)
