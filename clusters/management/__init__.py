"""Management commands of the clusters app."""
