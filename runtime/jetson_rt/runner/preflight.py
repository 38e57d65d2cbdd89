"""Checks of the host against a valid configuration, before anything is loaded.

The schema (``config.py``) says what a file may contain; these say whether this
host can run it: a DLA lane needs DLA cores (Orin Nano has none: they are fused
off, so a DLA model must be detected, never assumed), a camera source needs
OpenCV. ``jetson-rt check-config`` reports them with the schema's problems; the
runner refuses to start on them with a :class:`~jetson_rt.errors.PlatformError`.
"""

from __future__ import annotations

from jetson_rt import platform
from jetson_rt.runner.config import RunnerConfig
from jetson_rt.runner.sources import source_available


def host_problems(
    config: RunnerConfig,
    root: str = platform.ROOT,
    supplied_sources: frozenset[str] = frozenset(),
) -> list[str]:
    """What this host lacks for ``config``, one line each with its key path.

    Tasks named in ``supplied_sources`` get their frames from the embedding
    program, so their configured camera needs nothing here.
    """
    problems: list[str] = []
    dla_models = [model for model in config.models.values() if model.device == "dla"]
    if dla_models:
        identity = platform.identity(root)
        cores = platform.dla_count(root, identity.module_sku)
        for model in dla_models:
            if cores == 0:
                problems.append(
                    f"models.{model.name}.device: dla, but this host has no usable DLA core "
                    f"({identity.model or 'not a Jetson'}; Orin Nano has none): "
                    "use device: gpu with a GPU engine"
                )
            else:
                core = model.options.get("dla_core")
                if isinstance(core, int) and not isinstance(core, bool) and core >= cores:
                    problems.append(
                        f"models.{model.name}.options.dla_core: {core}, but this host has "
                        f"{cores} DLA core(s) (0-{cores - 1})"
                    )
    for index, task in enumerate(config.tasks):
        if task.input.source in ("v4l2", "gstreamer") and task.name not in supplied_sources:
            available, why = source_available(task.input.source)
            if not available:
                problems.append(f"tasks[{index}].input.source: {why}")
            elif task.input.source == "gstreamer":
                from jetson_rt.runner.gst import check_pipeline

                problem = check_pipeline(task.input.pipeline)
                if problem is not None:
                    problems.append(
                        f"tasks[{index}].input.pipeline: GStreamer cannot build it here: {problem}"
                    )
    return problems
