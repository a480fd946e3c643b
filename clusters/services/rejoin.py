"""The `rejoin` job kind: its plan lives with fencing (clusters.services.fencing); the job engine finds a
kind's plan by importing `clusters.services.<kind>`, which this module satisfies."""
from clusters.services.fencing import REJOIN_PLAN as PLAN  # noqa: F401 - registers the plan
