"""Fleet validation report: reads a RUN_DIR written by the ``rt_validate`` role.

The RUN_DIR format is specified in ``docs/validation-report.md``. Reading it
(:mod:`.loader`, :mod:`.cyclictest`) needs only the standard library and numpy,
so it works on a Jetson; rendering (:mod:`.plots`, :mod:`.html`) imports
matplotlib and jinja2 lazily, inside the functions that need them.
"""

from __future__ import annotations

#: Version of the RUN_DIR layout this package reads (``run.json``, ``host.json``,
#: ``audit.json`` carry it as ``schema_version``).
RUN_DIR_SCHEMA_VERSION = 1

#: Version of ``report.json`` this package writes.
REPORT_SCHEMA_VERSION = 1
