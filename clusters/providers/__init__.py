"""Providers: where the database servers of a cluster come from.

`local` runs mariadbd instances on this host (`LocalSandbox`); the demo, the tests and the benchmarks use
it, and users use it for development clusters. Other providers plug in behind the same shape later.
"""

from clusters.providers.errors import SandboxError
from clusters.providers.local import LocalSandbox

__all__ = ["LocalSandbox", "SandboxError"]
