"""`manage.py sandbox ...` and the other cluster commands."""
