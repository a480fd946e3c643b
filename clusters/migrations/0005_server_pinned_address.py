"""Servers keep the canonical address they were pinned to, and one address belongs to one cluster."""

import socket

from django.db import migrations, models


def pin_existing(apps, schema_editor):
    from clusters.domain.addresses import canonical_ip

    Server = apps.get_model("clusters", "Server")
    seen = set()
    for server in Server.objects.order_by("id"):
        ip = canonical_ip(server.host)
        if ip is None:
            try:
                ip = canonical_ip(socket.gethostbyname(server.host)) or server.host
            except OSError:
                ip = server.host  # unresolvable now: keep the name itself as its identity
        if (ip, server.port) in seen:
            raise RuntimeError(
                f"server {server.host}:{server.port} (id {server.id}) is the same address as another registered "
                "server: remove one of them (a server belongs to one cluster) and migrate again"
            )
        seen.add((ip, server.port))
        server.ip = ip
        server.save(update_fields=["ip"])


class Migration(migrations.Migration):
    dependencies = [("clusters", "0004_routes")]

    operations = [
        migrations.AddField(
            model_name="server",
            name="ip",
            field=models.CharField(default="", max_length=45),
            preserve_default=False,
        ),
        migrations.RunPython(pin_existing, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="server",
            constraint=models.UniqueConstraint(fields=("ip", "port"), name="one_cluster_per_server_address"),
        ),
        migrations.AddConstraint(
            model_name="server",
            constraint=models.CheckConstraint(condition=~models.Q(ip=""), name="server_address_pinned"),
        ),
    ]
