"""Seed data for the portal smoke test, run with `manage.py shell` inside the test server's environment.

Creates a registered cluster of three servers owned by the team that create_tenant made (all cluster
permissions granted to it), and a viewer member; prints the cluster id. Servers are rows only: the
smoke test needs no database servers, and the portal shows them as not yet observed.
"""

import os

from django.contrib.auth import get_user_model

from clusters.models import Cluster, Server
from tenants.models import Role, Team
from tenants.services import add_member, grant_cluster

team = Team.objects.get(tenant__name=os.environ["SEED_TENANT"], name=os.environ["SEED_TEAM"])
cluster = Cluster.objects.create(tenant=team.tenant, name=os.environ["SEED_CLUSTER"])
for port in (3306, 3307, 3308):
    Server.objects.create(cluster=cluster, host="127.0.0.1", port=port, ip="127.0.0.1")
grant_cluster(team, cluster)
User = get_user_model()
viewer = User.objects.create_user(
    username=os.environ["SEED_VIEWER"],
    email=os.environ["SEED_VIEWER"],
    password=os.environ["SEED_VIEWER_PASSWORD"],
)
add_member(team, viewer, Role.VIEWER)
print(f"cluster_id={cluster.id}")
