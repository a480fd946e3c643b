"""`ws /ws/jobs/{id}/`: one job's progress, live (its steps as they start and finish, then its end).

The same permission as `GET /api/v1/jobs/{id}/`: view on the job's cluster (a job the caller may not see
closes with 4404, the same answer as a job that does not exist). The socket greets with the job as it is
now, then forwards the `job` messages of that job that the cluster's group carries (clusters/services/
events.py publishes one when a step changes and when the job ends), re-checking the grant every few seconds
like the cluster socket. A client stops reading once it has seen a final state (`succeeded`, `failed`,
`refused`).
"""

from __future__ import annotations

import time

from channels.db import database_sync_to_async

from clusters.consumers import CLOSE_NOT_FOUND, _ScopedConsumer, cluster_group


@database_sync_to_async
def _visible_job(actor, job_id: int) -> dict | None:
    from clusters.events import job_payload
    from clusters.models import Job
    from tenants.access import VIEW, clusters_for

    job = Job.objects.filter(pk=job_id, cluster__in=clusters_for(actor, VIEW).values("id")).first()
    return job_payload(job) if job is not None else None


class JobConsumer(_ScopedConsumer):
    """Forwards one job's messages from its cluster's group."""

    async def connect(self):
        self.job_id = int(self.scope["url_route"]["kwargs"]["job_id"])
        actor = self.scope.get("actor")
        signed_in = actor is not None and actor.is_authenticated
        job = await _visible_job(actor, self.job_id) if signed_in and self.job_id < 2**63 else None
        if job is None:
            # Accept, then close: the documented refusal a client reads and stops reconnecting on.
            await self.accept()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.cluster_id = job["cluster"]
        self._visible = await self._allowed()
        self._checked_at = time.monotonic()
        # Join first, then read the snapshot: a step that changes in between is sent twice, never lost.
        await self.channel_layer.group_add(cluster_group(self.cluster_id), self.channel_name)
        await self.accept()
        job = await _visible_job(actor, self.job_id) or job
        await self.send_json({"type": "job", "cluster_id": self.cluster_id, "job": job})

    async def disconnect(self, code):
        if getattr(self, "cluster_id", None) is not None:
            await self.channel_layer.group_discard(cluster_group(self.cluster_id), self.channel_name)

    async def cluster_message(self, message):
        payload = message["payload"]
        if payload.get("type") != "job" or (payload.get("job") or {}).get("id") != self.job_id:
            return
        await super().cluster_message(message)
