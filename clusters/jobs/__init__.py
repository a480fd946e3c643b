"""The job engine: HA jobs (switchover, failover, rejoin, adopt) as ordered, recorded, resumable steps.

- `steps`: plans and step records as plain data (no Django), so plans are defined and tested without a
  database.
- `engine`: create (one HA job per cluster, enforced by the database), claim (compare-and-swap), run with
  a lease renewed from a background thread, finish (events, audit), reap jobs whose worker died.
- `context` and `ha_steps`: what an HA plan's steps share (the servers' sessions, the job's result) and
  the step functions switchover and failover plans compose (promote, repoint, open writes, routes, hooks).
"""
