"""The guide's Appendix B latency budget table, filled from runner figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jetson_rt.report.model import LatencyBudget, RunnerStats, StageStats

# Appendix B rows, in its order, with the stage names runners use for them.
APPENDIX_B_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Camera capture", ("capture", "camera", "camera_capture", "acquire")),
    ("Preprocessing", ("preprocess", "preprocessing", "pre")),
    ("H2D transfer", ("h2d", "h2d_transfer", "upload", "copy_in")),
    ("Inference", ("infer", "inference", "execute", "compute", "gpu_compute")),
    ("D2H transfer", ("d2h", "d2h_transfer", "download", "copy_out")),
    ("Postprocessing", ("postprocess", "postprocessing", "post")),
    ("Application logic", ("app", "application", "application_logic", "logic")),
)
TOTAL_NAMES = ("total", "end_to_end", "e2e", "latency", "frame")

SlaVerdict = Literal["yes", "no", "unknown"]


@dataclass(frozen=True)
class BudgetRow:
    stage: str
    budget_ms: float | None
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    over_budget: bool


@dataclass(frozen=True)
class BudgetTable:
    application: str | None
    target_fps: float | None
    deadline_ms: float | None
    sla_percent: float | None
    rows: tuple[BudgetRow, ...]
    total: BudgetRow
    meets_sla: SlaVerdict
    sla_detail: str


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def _row(label: str, budget: float | None, stage: StageStats | None) -> BudgetRow:
    p99 = stage.p99_ms if stage else None
    return BudgetRow(
        stage=label,
        budget_ms=budget,
        p50_ms=stage.p50_ms if stage else None,
        p99_ms=p99,
        max_ms=stage.max_ms if stage else None,
        over_budget=budget is not None and p99 is not None and p99 > budget,
    )


def build_budget(runner: RunnerStats, budget: LatencyBudget | None) -> BudgetTable:
    stages = {_key(s.name): s for s in runner.stages}
    budgets = {_key(k): v for k, v in (budget.stages_ms.items() if budget else ())}
    used: set[str] = set()
    rows: list[BudgetRow] = []
    for label, aliases in APPENDIX_B_ROWS:
        names = (_key(label), *aliases)
        stage_name = next((n for n in names if n in stages), None)
        budget_name = next((n for n in names if n in budgets), None)
        if stage_name:
            used.add(stage_name)
        rows.append(
            _row(
                label,
                budgets.get(budget_name) if budget_name else None,
                stages.get(stage_name) if stage_name else None,
            )
        )
    total_name = next((n for n in TOTAL_NAMES if n in stages), None)
    if total_name:
        used.add(total_name)
    # Stages the template has no row for are still shown, before the total.
    for name, stage in stages.items():
        if name not in used:
            rows.append(_row(stage.name, budgets.get(name), stage))
    deadline = (budget.deadline_ms if budget else None) or runner.deadline_ms
    if deadline is None and budget and budget.target_fps:
        deadline = 1000.0 / budget.target_fps
    total_budget = next((budgets[n] for n in TOTAL_NAMES if n in budgets), None)
    if total_budget is None:
        stage_budgets = [r.budget_ms for r in rows if r.budget_ms is not None]
        total_budget = sum(stage_budgets) if stage_budgets else deadline
    total = _row("Total", total_budget, stages.get(total_name) if total_name else None)
    sla = budget.sla_percent if budget else None
    meets, detail = _meets_sla(runner, total, deadline, sla)
    return BudgetTable(
        application=budget.application if budget else None,
        target_fps=budget.target_fps if budget else None,
        deadline_ms=deadline,
        sla_percent=sla,
        rows=tuple(rows),
        total=total,
        meets_sla=meets,
        sla_detail=detail,
    )


def _meets_sla(
    runner: RunnerStats, total: BudgetRow, deadline: float | None, sla: float | None
) -> tuple[SlaVerdict, str]:
    if deadline is None:
        return "unknown", "no deadline: set budget.deadline_ms or budget.target_fps in run.json"
    required = 99.0 if sla is None else sla
    if runner.frames and runner.deadline_misses is not None:
        within = 100.0 * (1 - runner.deadline_misses / runner.frames)
        verdict: SlaVerdict = "yes" if within >= required else "no"
        return verdict, (
            f"{within:.3f} % of {runner.frames} frames within {deadline:g} ms (SLA {required:g} %)"
        )
    if total.max_ms is not None and total.max_ms <= deadline:
        return "yes", f"every frame within {deadline:g} ms (max {total.max_ms:g} ms)"
    if total.p99_ms is not None and total.p99_ms > deadline and required >= 99.0:
        return "no", f"p99 {total.p99_ms:g} ms exceeds the {deadline:g} ms deadline"
    if total.p99_ms is not None and required <= 99.0:
        return "yes", f"p99 {total.p99_ms:g} ms within the {deadline:g} ms deadline"
    return "unknown", "runner figures do not decide the SLA (need total max/p99 or frame counts)"
