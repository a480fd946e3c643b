"""Clusters: inventory, monitoring, jobs, routes. Decisions live in clusters.domain (no Django)."""
