"""JSON Schema (draft 2020-12) of ``report.json``, written next to it as ``report.schema.json``.

Kept in Python so it ships inside the package with no package-data rule.
Bump :data:`jetson_rt.report.REPORT_SCHEMA_VERSION` on any incompatible change.
"""

from __future__ import annotations

from typing import Any

from jetson_rt.report import REPORT_SCHEMA_VERSION
from jetson_rt.report.model import HOST_STATES

_NUM = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}
_STR = {"type": ["string", "null"]}
_BOOL = {"type": ["boolean", "null"]}
_VERDICT = {"enum": ["pass", "warn", "fail", "error"]}
_STR_LIST = {"type": "array", "items": {"type": "string"}}


def _object(properties: dict[str, Any], *, extra: bool = False) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(properties),
        "properties": properties,
        "additionalProperties": extra,
    }


_GATE = _object(
    {
        "max_us": _NUM,
        "avg_us": _NUM,
        "p99_9_us": _NUM,
        "max_overflows": _INT,
        "exclusive": {"type": "boolean"},
        "note": _STR,
    }
)

_COUNTS = _object({v: {"type": "integer", "minimum": 0} for v in ("pass", "warn", "fail", "error")})

_THREAD = _object(
    {
        "index": {"type": "integer"},
        "cpu": _INT,
        "label": {"type": "string"},
        "cycles": {"type": "integer", "minimum": 0},
        "min_us": _NUM,
        "avg_us": _NUM,
        "max_us": _NUM,
        "p99_us": _NUM,
        "p99_9_us": _NUM,
        "p99_9_in_overflow": {"type": "boolean"},
        "overflows": _INT,
        "buckets": {"type": "integer", "minimum": 0},
    }
)

_LATENCY = _object(
    {
        "source": {"enum": ["json", "text"]},
        "file": _STR,
        "version": _STR,
        "cmdline": _STR,
        "kernel_release": _STR,
        "kernel_realtime": _BOOL,
        "histogram_limit_us": _INT,
        "interval_us": _INT,
        "priority": _INT,
        "max_us": _NUM,
        "max_cpu": _STR,
        "avg_us": _NUM,
        "p99_9_us": _NUM,
        "p99_9_in_overflow": {"type": "boolean"},
        "overflows": _INT,
        "cycles": {"type": "integer", "minimum": 0},
        "notes": _STR_LIST,
        "threads": {"type": "array", "items": _THREAD, "minItems": 1},
    }
)

_CHECK = _object(
    {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "status": {"enum": ["pass", "warn", "fail", "unknown"]},
        "observed": _STR,
        "expected": _STR,
        "hint": _STR,
    }
)

_GATE_RESULT = _object(
    {
        "metric": {"enum": ["max_us", "avg_us", "p99_9_us", "overflows"]},
        "title": {"type": "string"},
        "limit": _NUM,
        "observed": _NUM,
        "status": {"enum": ["pass", "fail", "unknown"]},
        "detail": {"type": "string"},
    }
)

_BUDGET_ROW = _object(
    {
        "stage": {"type": "string"},
        "budget_ms": _NUM,
        "p50_ms": _NUM,
        "p99_ms": _NUM,
        "max_ms": _NUM,
        "over_budget": {"type": "boolean"},
    }
)

_BUDGET = _object(
    {
        "application": _STR,
        "target_fps": _NUM,
        "deadline_ms": _NUM,
        "sla_percent": _NUM,
        "rows": {"type": "array", "items": _BUDGET_ROW},
        "total": _BUDGET_ROW,
        "meets_sla": {"enum": ["yes", "no", "unknown"]},
        "sla_detail": {"type": "string"},
    }
)

_TREND = _object(
    {
        "previous_verdict": _VERDICT,
        "previous_max_us": _NUM,
        "previous_avg_us": _NUM,
        "previous_p99_9_us": _NUM,
        "delta_max_us": _NUM,
    }
)

_HOST = _object(
    {
        "name": {"type": "string", "minLength": 1},
        "groups": _STR_LIST,
        "state": {"enum": list(HOST_STATES)},
        "verdict": _VERDICT,
        "reasons": _STR_LIST,
        "problems": _STR_LIST,
        "reachable": _BOOL,
        "error": _STR,
        "facts": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
        },
        "gate": _object(
            {"sources": _STR_LIST, "limits": _GATE, "notes": _STR_LIST},
        ),
        "checks": {"oneOf": [{"type": "null"}, {"type": "array", "items": _CHECK}]},
        "latency": {"oneOf": [{"type": "null"}, _LATENCY]},
        "gate_results": {"type": "array", "items": _GATE_RESULT},
        "budget": {"oneOf": [{"type": "null"}, _BUDGET]},
        "trend": {"oneOf": [{"type": "null"}, _TREND]},
    }
)

REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"https://jetson-rt.invalid/schemas/report-v{REPORT_SCHEMA_VERSION}.json",
    "title": "jetson-rt fleet validation report",
    **_object(
        {
            "schema_version": {"const": REPORT_SCHEMA_VERSION},
            "generator": {"type": "string"},
            "generated_at": {"type": "string"},
            "run": _object(
                {
                    "run_id": {"type": "string"},
                    "run_dir": {"type": "string"},
                    "started_at": _STR,
                    "finished_at": _STR,
                    "profile": _STR,
                    "cyclictest_cmdline": _STR,
                    "load": _STR,
                }
            ),
            "verdict": {"enum": ["pass", "fail"]},
            "exit_code": {"enum": [0, 1]},
            "summary": _object(
                {
                    "hosts": {"type": "integer", "minimum": 1},
                    "pass": {"type": "integer", "minimum": 0},
                    "warn": {"type": "integer", "minimum": 0},
                    "fail": {"type": "integer", "minimum": 0},
                    "error": {"type": "integer", "minimum": 0},
                    "max_latency_us": _NUM,
                    "max_latency_host": _STR,
                    "max_latency_cpu": _STR,
                }
            ),
            "gates": {"type": "object", "additionalProperties": _GATE},
            "groups": {
                "type": "array",
                "items": _object(
                    {
                        "name": {"type": "string"},
                        "hosts": _STR_LIST,
                        "verdict": _VERDICT,
                        "counts": _COUNTS,
                        "max_latency_us": _NUM,
                        "max_latency_host": _STR,
                        "gate": {"oneOf": [{"type": "null"}, _GATE]},
                    }
                ),
            },
            "hosts": {"type": "array", "items": _HOST, "minItems": 1},
            "previous": {
                "oneOf": [
                    {"type": "null"},
                    _object(
                        {
                            "run_id": {"type": "string"},
                            "verdict": {"enum": ["pass", "fail"]},
                            "max_latency_us": _NUM,
                            "new_hosts": _STR_LIST,
                            "gone_hosts": _STR_LIST,
                        }
                    ),
                ]
            },
        }
    ),
}


# ----------------------------------------------------------------------------- RUN_DIR
# What rt_validate should write (docs/validation-report.md). The loader is more
# lenient than these: they are the contract for writers, e.g. for a molecule
# verify step, not a gate on reading.

_GATE_IN = {
    "type": "object",
    "properties": {
        "max_us": {"type": ["number", "null"], "minimum": 0},
        "avg_us": {"type": ["number", "null"], "minimum": 0},
        "p99_9_us": {"type": ["number", "null"], "minimum": 0},
        "max_overflows": {"type": ["integer", "null"], "minimum": 0},
        "exclusive": {"type": "boolean"},
        "note": {"type": ["string", "null"]},
    },
    "additionalProperties": False,
}

RUN_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "rt_validate RUN_DIR/run.json",
    "type": "object",
    "required": ["schema_version", "run_id", "hosts"],
    "properties": {
        "schema_version": {"const": 1},
        "run_id": {"type": "string", "minLength": 1},
        "started_at": {"type": "string"},
        "finished_at": {"type": "string"},
        "profile": {"type": "string"},
        "hosts": {"type": "object", "additionalProperties": _STR_LIST},
        "gates": {"type": "object", "additionalProperties": _GATE_IN},
        "cyclictest": {
            "type": "object",
            "properties": {
                "cmdline": {"type": "string"},
                "load": {"type": "string"},
                "measured": {"type": "boolean"},
                "why": {"type": "string"},
            },
        },
        "budget": {
            "type": "object",
            "properties": {
                "application": {"type": "string"},
                "target_fps": {"type": "number", "exclusiveMinimum": 0},
                "deadline_ms": {"type": "number", "exclusiveMinimum": 0},
                "sla_percent": {"type": "number", "minimum": 0, "maximum": 100},
                "stages_ms": {"type": "object", "additionalProperties": {"type": "number"}},
            },
        },
    },
}

HOST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "rt_validate RUN_DIR/hosts/<inventory_hostname>/host.json",
    "type": "object",
    "required": ["schema_version", "inventory_hostname", "groups", "reachable"],
    "properties": {
        "schema_version": {"const": 1},
        "inventory_hostname": {"type": "string", "minLength": 1},
        "groups": _STR_LIST,
        "reachable": {"type": "boolean"},
        "error": _STR,
        "failed_stage": {"type": "string"},
        "facts": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
        },
    },
}

AUDIT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "rt_validate RUN_DIR/hosts/<inventory_hostname>/audit.json",
    "type": "object",
    "required": ["schema_version", "checks"],
    "properties": {
        "schema_version": {"const": 1},
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "title", "status"],
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9_]+$"},
                    "title": {"type": "string"},
                    "status": {"enum": ["pass", "warn", "fail", "unknown"]},
                    "observed": {},
                    "expected": {},
                    "hint": _STR,
                },
            },
        },
    },
}
