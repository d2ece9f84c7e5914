"""The privacy report in the web interface, when this installation has `facility.privacy.report`."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from facility.web.context import Web

if TYPE_CHECKING:  # the module itself is imported when a report is built, if it is there
    from facility.privacy.report import Report

REPORT_CSP = (  # the report is one self-contained page: inline CSS and SVG, and nothing else
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def report_available() -> bool:
    """Whether this installation has the privacy report (`facility.privacy.report`)."""
    return importlib.util.find_spec("facility.privacy.report") is not None


def build_report(web: Web) -> Report:
    """The privacy report at the clock's now, as `facility report` builds it."""
    from facility.privacy import report

    with web.session() as session:
        return report.build(
            session,
            now=web.now(),
            interval=web.settings.purge.interval,
            grace=web.settings.holds.release_grace,
            skew=web.settings.limits.clock_skew,
            privacy=web.settings.privacy,
        )
