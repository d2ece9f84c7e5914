"""Daemon logging: one line per event worth knowing, on stdout, as text (journald) or JSON.

A log call may carry machine-readable fields (`extra=fields(event="job.done", job="purge", ...)`):
the text form shows only the message, the JSON form adds the fields beside it, so a monitoring
script never has to parse prose.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from facility.timefmt import utc_text

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_CORE = ("time", "level", "logger", "message")

log = logging.getLogger("facility.daemon")


def fields(**values: Any) -> dict[str, dict[str, Any]]:
    """`extra=` for a log call: fields the JSON form carries beside the message."""
    return {"fields": values}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's fields, any exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": utc_text(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in (getattr(record, "fields", None) or {}).items():
            if key not in _CORE:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=_json_value)


def _json_value(value: Any) -> Any:
    return utc_text(value) if isinstance(value, datetime) else str(value)


_formatter: logging.Formatter = logging.Formatter(TEXT_FORMAT)


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """Send every log record to stdout in `log_format` ('text' or 'json')."""
    global _formatter
    _formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler logs every run, and warns every second a long job overlaps its next time; the
    # daemon's own listener and job runner say what matters once (scheduler/daemon.py, jobs.py).
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    # Alembic announces its migration context whenever the schema version is read.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Python warnings and crashes of stray threads go to the same stream, in the same format,
    # rather than as bare tracebacks on stderr that a JSON reader would trip over.
    logging.captureWarnings(True)
    threading.excepthook = _thread_crashed


def emergency(message: str, **values: Any) -> None:
    """One warning line straight to stdout's file descriptor: safe in a signal handler (no locks)."""
    record = logging.LogRecord(log.name, logging.WARNING, __file__, 0, message, None, None)
    record.fields = values
    os.write(sys.stdout.fileno(), (_formatter.format(record) + "\n").encode("utf-8", "replace"))


def _thread_crashed(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread else "?"
    log.error(
        "thread %s crashed: %s: %s",
        name,
        args.exc_type.__name__,
        args.exc_value,
        exc_info=args.exc_value,  # its type and traceback are the ones the hook is given
        extra=fields(event="thread.crashed", thread=name),
    )
