"""Create the demo cluster through the provisioning API (as a user's script would), unless it exists, and
follow its provision job step by step until the cluster is healthy and armed."""

import json
import sys
import time
import urllib.error
import urllib.request

base, token = sys.argv[1:3]
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def call(method, path, body=None):
    request = urllib.request.Request(
        base + path,
        method=method,
        headers=headers,
        data=json.dumps(body).encode() if body is not None else None,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def follow(job_id):
    shown = set()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = call("GET", f"/api/v1/jobs/{job_id}/")
        for step in job["steps"]:
            if step["state"] in ("ok", "failed", "skipped") and step["name"] not in shown:
                shown.add(step["name"])
                print(f"demo:   {step['name']:<20} {step['state']:<8} {step['detail']}")
        if job["state"] in ("succeeded", "failed", "refused"):
            break
        time.sleep(0.3)
    if job["state"] != "succeeded":
        print(f"demo: the {job['kind']} job {job['state']}: {job['result'].get('detail')}", file=sys.stderr)
        sys.exit(1)


existing = [c for c in call("GET", "/api/v1/clusters/")["results"] if c["name"] == "demo"]
if existing:  # a previous run: its servers were started again read-only; the start job opens writes
    job = call("POST", f"/api/v1/clusters/{existing[0]['id']}/start/")
    print(f"demo: cluster 'demo' exists; starting it (job {job['id']})")
    follow(job["id"])
    sys.exit(0)
payload = {
    "name": "demo",
    "provision": {
        "provider": "local",
        "replicas": 2,
        "semi_sync": True,
        "master_user": {"user": "demo", "password": "demo-master-password"},
        "size": {"memory_mb": 256},
    },
}
try:
    cluster = call("POST", "/api/v1/clusters/", payload)
except urllib.error.HTTPError as exc:
    print(f"demo: provisioning the cluster failed: {exc.code} {exc.read().decode()}", file=sys.stderr)
    sys.exit(1)
print(f"demo: provisioning cluster 'demo' (id {cluster['id']}), job {cluster['job']['id']}")
follow(cluster["job"]["id"])
cluster = call("GET", f"/api/v1/clusters/{cluster['id']}/")
print(
    f"demo: cluster 'demo' is up: writer {cluster['endpoints']['writer']}, readers "
    f"{', '.join(cluster['endpoints']['readers'])} (user demo / demo-master-password)"
)
