"""`GET /metrics` for Prometheus: inventory, open findings, jobs and monitoring freshness.

Refused until DBPILOT_METRICS_TOKEN is set; the scraper sends it as `Authorization: Bearer <token>`.
Values are read at scrape time (a custom collector), so every web process reports the same numbers.
"""
from __future__ import annotations

import hmac
import time

from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class DbpilotCollector:
    def collect(self):
        from clusters import hotstate
        from clusters.models import Cluster, Finding, Job, Server

        clusters = list(Cluster.objects.select_related("tenant").values_list("id", "tenant__name", "name"))
        yield GaugeMetricFamily("dbpilot_clusters", "Clusters under management", value=len(clusters))
        yield GaugeMetricFamily("dbpilot_servers", "Servers under management", value=Server.objects.count())
        findings = GaugeMetricFamily("dbpilot_open_findings", "Open findings", labels=["tenant", "cluster", "severity"])
        for row in (Finding.objects.filter(resolved_at__isnull=True)
                    .values("cluster__tenant__name", "cluster__name", "severity").annotate(n=Count("id"))):
            findings.add_metric([row["cluster__tenant__name"], row["cluster__name"], row["severity"]], row["n"])
        yield findings
        jobs = GaugeMetricFamily("dbpilot_jobs", "Jobs by kind and state", labels=["kind", "state"])
        for row in Job.objects.values("kind", "state").annotate(n=Count("id")):
            jobs.add_metric([row["kind"], row["state"]], row["n"])
        yield jobs
        age = GaugeMetricFamily("dbpilot_observation_age_seconds", "Seconds since the cluster's latest observation",
                                labels=["tenant", "cluster"])
        now = time.time()
        states = {}
        for cid, tenant, name in clusters:
            try:
                states[cid] = hotstate.read_state(cid)
            except Exception:  # noqa: BLE001 - Redis down: no freshness figures, the rest still reports
                states = {}
                break
            observed = states[cid].get("observed_at")
            if observed:
                age.add_metric([tenant, name], max(0.0, now - float(observed)))
        yield age


@require_GET
def metrics(request):
    expected = settings.DBPILOT_METRICS_TOKEN
    if not expected:
        return JsonResponse({"detail": "Metrics are disabled: set DBPILOT_METRICS_TOKEN.", "code": "metrics_disabled"},
                            status=403)
    header = request.META.get("HTTP_AUTHORIZATION", "")
    given = header[len("Bearer "):] if header.startswith("Bearer ") else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return JsonResponse({"detail": "Send the metrics token as 'Authorization: Bearer <token>'.",
                             "code": "not_authenticated"}, status=401)
    registry = CollectorRegistry()
    registry.register(DbpilotCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def api_not_found(request, exception=None):
    """Unknown URLs under /api/ answer JSON like the rest of the API; others get Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)
