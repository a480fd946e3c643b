"""Tenants, teams, members, API tokens and the audit log."""
