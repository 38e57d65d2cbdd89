"""The self-contained HTML page: jinja2 templates, autoescaped, plots inlined as SVG."""

from __future__ import annotations

from typing import Any

from jetson_rt.report.plots import Plots


def _number(value: Any, unit: str, digits: int) -> str:
    if value is None:
        return "\u2014"
    number = float(value)
    text = f"{number:.0f}" if number.is_integer() else f"{number:.{digits}f}"
    return f"{text}\u00a0{unit}" if unit else text


def _us(value: Any) -> str:
    return _number(value, "us", 1)


def _ms(value: Any) -> str:
    return _number(value, "ms", 2)


def _signed_us(value: Any) -> str:
    if value is None:
        return "\u2014"
    sign = "+" if value > 0 else ""
    return sign + _us(value)


def render_html(data: dict[str, Any], plots: Plots) -> str:
    """Render ``report.html`` from the ``report.json`` data and the plots."""
    import jinja2
    from markupsafe import Markup

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("jetson_rt.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["us"] = _us
    environment.filters["ms"] = _ms
    environment.filters["signed_us"] = _signed_us
    template = environment.get_template("report.html.j2")
    # The SVG is matplotlib's output, whose text it escapes itself: safe to inline.
    host_plots = {name: Markup(svg) for name, svg in plots.hosts.items()}  # noqa: S704
    fleet_plot = Markup(plots.fleet_max) if plots.fleet_max else None  # noqa: S704
    return template.render(
        report=data, host_plots=host_plots, fleet_plot=fleet_plot, legends=plots.legends
    )
