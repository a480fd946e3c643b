"""Backups: storage (a directory or S3), the stored format (compressed, optionally encrypted, checksummed),
the catalog (clusters.backup_models), binlog archiving and restore. docs/backups.md describes them."""
