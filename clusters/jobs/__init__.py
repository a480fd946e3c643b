"""The job engine: HA jobs (switchover, failover, rejoin, adopt) as ordered, recorded, resumable steps.

- `steps`: plans and step records as plain data (no Django), so plans are defined and tested without a
  database.
- `engine`: create (one HA job per cluster, enforced by the database), claim (compare-and-swap), run with
  a lease renewed from a background thread, finish (events, audit), reap jobs whose worker died.
- `registry`: every job kind's plan; `<kind>_steps`: each kind's steps, abort and plan.
- `state`: the typed job state, saved in the job's result; `context`: what an HA plan's steps share (the
  servers' sessions, `observe`, the state).
- The HA primitives plans compose, split along the switch: `ha_freeze` (freeze a live primary, wait for
  the candidate, undo), `ha_promote` (promote, repoint, open writes, record the primary), `ha_after`
  (hooks, routes, verify replication, replicas read-only).
"""
