"""The incident report: the incident's figures gathered (incident), then rendered (render).

Callers import this package (`from auth import report`).
"""

from auth.report.incident import AffectedAccount, Exposure, Incident, Measure, gather
from auth.report.render import KIND_LABELS, TO_FILL, to_html, to_markdown

__all__ = [
    "KIND_LABELS",
    "TO_FILL",
    "AffectedAccount",
    "Exposure",
    "Incident",
    "Measure",
    "gather",
    "to_html",
    "to_markdown",
]
