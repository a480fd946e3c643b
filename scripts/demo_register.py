"""Register the demo sandbox cluster through the API (as a user's script would), unless it exists."""
import json
import sys
import urllib.error
import urllib.request

base, token, sandbox_file = sys.argv[1:4]
sandbox = json.load(open(sandbox_file))
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def call(method, path, body=None):
    request = urllib.request.Request(base + path, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


existing = call("GET", "/api/v1/clusters/")["results"]
if any(c["name"] == "demo" for c in existing):
    print("demo: cluster 'demo' already registered")
    sys.exit(0)
payload = {
    "name": "demo",
    "servers": [{"host": n["host"], "port": n["port"]} for n in sandbox["nodes"]],
    "credentials": sandbox["credentials"]["admin"],
    "replication_credentials": sandbox["credentials"]["replication"],
    "settings": {"semi_sync": bool(sandbox.get("semi_sync"))},
}
try:
    cluster = call("POST", "/api/v1/clusters/", payload)
except urllib.error.HTTPError as exc:
    print(f"demo: registering the cluster failed: {exc.code} {exc.read().decode()}", file=sys.stderr)
    sys.exit(1)
print(f"demo: registered cluster 'demo' (id {cluster['id']}) with {len(cluster['servers'])} servers")
