"""The audit as a page a person reads at a glance (``target/audit/audit.html``).

A heading with the instant audited, a summary table (feature, compared, equal, mismatch rate,
verdict) and a chart per feature drawn by matplotlib, with axes, ticks and a legend: served
against offline values for numeric features (the diagonal is agreement, mismatches in red), equal
and differing counts otherwise. A feature whose compared values are NULL on both sides is called
out as such, never shown as a pass: nothing was compared. The page is self-contained (charts are
inline SVG), so it opens from a CI artifact with no network.
"""

from __future__ import annotations

import html
import io
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skewless.audit import AuditReport, FeatureAudit

OK, MISMATCH = "#2a7f62", "#c62828"

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 2em; max-width: 75em; color: #222 }
table { border-collapse: collapse; margin: 1em 0 2em }
th, td { padding: .3em .8em; border-bottom: 1px solid #ddd; text-align: right }
th:first-child, td:first-child { text-align: left }
.pass { color: #2a7f62 } .fail { color: #c62828; font-weight: 600 } .null { color: #a66b00 }
section { display: inline-block; vertical-align: top; margin: 0 1.5em 1.5em 0; width: 24em }
section h2 { font-size: 14px; margin: .2em 0 }
.example { color: #c62828; font-size: 12px }
"""


def verdict(feature: FeatureAudit, threshold: float) -> str:
    """``fail`` above the threshold, ``all NULL`` when every compared pair is NULL on both
    sides (or nothing was compared), else ``pass``."""
    if feature.rate > threshold:
        return "fail"
    if not feature.pairs or all(_missing(o) and _missing(s) for o, s, _ in feature.pairs):
        return "all NULL"
    return "pass"


def render_page(report: AuditReport) -> str:
    """The whole HTML page for ``report``."""
    instant = report.as_of.isoformat(sep=" ")
    rows = "".join(_summary_row(f, report.threshold) for f in report.features)
    failing = sum(verdict(f, report.threshold) == "fail" for f in report.features)
    nulls = sum(verdict(f, report.threshold) == "all NULL" for f in report.features)
    summary = (
        f"{failing} of {len(report.features)} features above the "
        f"{report.threshold:.2%} mismatch threshold"
        if failing
        else f"every feature at or below the {report.threshold:.2%} mismatch threshold"
    )
    if nulls:
        summary += f"; {nulls} compared only NULLs (nothing to compare: look at them)"
    sections = "".join(_section(f, report.threshold) for f in report.features)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>skewless audit at {html.escape(instant)} UTC</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>skewless audit at {html.escape(instant)} UTC</h1>"
        f"<p>Served values against the as-of macro recomputed offline at the same instant, over "
        f"{report.keys} sampled keys. {html.escape(summary)}.</p>"
        "<table id='summary'><thead><tr><th>feature</th><th>compared</th><th>equal</th>"
        f"<th>mismatch rate</th><th>verdict</th></tr></thead><tbody>{rows}</tbody></table>"
        f"{sections}</body></html>"
    )


def _summary_row(feature: FeatureAudit, threshold: float) -> str:
    word = verdict(feature, threshold)
    css = {"pass": "pass", "fail": "fail", "all NULL": "null"}[word]
    return (
        f"<tr><td>{html.escape(feature.view)}.{html.escape(feature.feature)}</td>"
        f"<td>{feature.compared}</td><td>{feature.equal}</td><td>{feature.rate:.2%}</td>"
        f"<td class='{css}'>{word}</td></tr>"
    )


def _section(feature: FeatureAudit, threshold: float) -> str:
    name = f"{feature.view}.{feature.feature}"
    examples = "".join(
        f"<div class='example'>{html.escape(str(key))}: served {html.escape(repr(served))}, "
        f"offline {html.escape(repr(offline))}</div>"
        for key, served, offline in feature.examples
    )
    return (
        f"<section class='chart'><h2>{html.escape(name)}</h2>"
        f"<div>{feature.equal}/{feature.compared} equal ({feature.rate:.2%} mismatch, "
        f"{verdict(feature, threshold)})</div>{_chart(feature)}{examples}</section>"
    )


def _chart(feature: FeatureAudit) -> str:
    """An inline SVG chart: a scatter of served against offline values when both are numbers,
    else bars of equal and differing pairs."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(3.6, 3.0), dpi=100)
    try:
        numeric = [(number(o), number(s), ok) for o, s, ok in feature.pairs]
        numeric = [(o, s, ok) for o, s, ok in numeric if o is not None and s is not None]
        if numeric:
            _scatter(ax, numeric)
        else:
            _bars(ax, feature)
        ax.set_title(f"{feature.view}.{feature.feature}", fontsize=9)
        fig.tight_layout()
        out = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: searchable
            fig.savefig(out, format="svg")
    finally:
        plt.close(fig)
    svg = out.getvalue()
    return svg[svg.index("<svg") :]


def _scatter(ax, points: list[tuple[float, float, bool]]) -> None:
    for ok, color, label in ((True, OK, "equal"), (False, MISMATCH, "mismatch")):
        xs = [o for o, _, good in points if good is ok]
        ys = [s for _, s, good in points if good is ok]
        if xs:
            ax.scatter(xs, ys, s=12, alpha=0.6, color=color, label=f"{label} ({len(xs)})")
    values = [v for o, s, _ in points for v in (o, s)]
    lo, hi = min(values), max(values)
    ax.plot([lo, hi], [lo, hi], color="#999", linewidth=0.8, label="served = offline")
    ax.set_xlabel("offline (as-of macro)", fontsize=8)
    ax.set_ylabel("served", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left")


def _bars(ax, feature: FeatureAudit) -> None:
    equal = sum(1 for _, _, ok in feature.pairs if ok)
    differ = len(feature.pairs) - equal
    both_null = sum(1 for o, s, _ in feature.pairs if _missing(o) and _missing(s))
    labels = ["equal", "mismatch", "both NULL"]
    ax.bar(
        labels,
        [equal - both_null, differ, both_null],
        color=[OK, MISMATCH, "#d9a441"],
        label=labels,
    )
    ax.set_ylabel("pairs", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)


def _missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and pandas NA
    except TypeError:
        return True  # pd.NA compared raises in bool()


def number(value: object) -> float | None:
    """A number as float (bools as 0/1); None for NULL, NaN and anything else."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    return None
