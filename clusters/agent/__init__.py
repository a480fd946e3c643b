"""The dbpilot agent: what runs on a database host of the `hosts` provider.

An agent is a Celery worker of the host's own queue, started by the operator as
`DBPILOT_AGENT_HOST=<name> DBPILOT_AGENT_KEY=<key> celery -A controlplane worker -Q host.<name>` with the
broker's REDIS_URL and nothing else of the platform's: no control-plane database, no Fernet keys
(controlplane/settings.py makes the ORM unusable there). It does the `local` provider's work on its own
host (clusters.providers.local_provider), one registered operation per request (operations.py), and
streams clones to another host's agent directly (receiver.py). This package imports no Django and no
model: an import-linter contract in pyproject.toml keeps it so.
"""
