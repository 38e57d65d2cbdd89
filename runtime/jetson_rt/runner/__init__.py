"""The real-time inference runner: ``jetson-rt run``, ``bench`` and ``check-config``.

The runner drives :class:`jetson_rt.backends.base.Backend` instances in a loop
that allocates nothing after warm-up, under a watchdog, a deadline monitor, an
SLA tracker and degradation tiers, and reports what it measured in a JSON stats
file (schema in ``docs/runner.md``).
"""

from __future__ import annotations
