"""The privacy report in the web interface, when this installation has `facility.privacy.report`."""

from __future__ import annotations

import importlib.util

from facility.web.context import Web

REPORT_CSP = (  # the report is one self-contained page: inline CSS and SVG, and nothing else
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def report_available() -> bool:
    """Whether this installation has the privacy report (`facility.privacy.report`)."""
    return importlib.util.find_spec("facility.privacy.report") is not None


def build_report(web: Web):
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
