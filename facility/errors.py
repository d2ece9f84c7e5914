"""The errors facility raises, and the exit code each one maps to at the CLI edge.

    FacilityError                 exit 1  something failed; the message says what to check
    ├── StoreError                exit 1  the database cannot be reached (URL shown without password)
    │   └── SchemaNotReady        exit 1  database missing or behind head: run `facility init`
    ├── NotDelivered              exit 1  a host notification could not be sent this time (retried);
    │                                     the message names the server, never the person
    ├── InputError                exit 2  bad input: argument, time, duration, unknown visit/badge
    │   ├── ConfigError           exit 2  a setting is unknown or invalid (names the key)
    │   └── RejectedInput         exit 2  a connector could not parse a payload, line or file name;
    │                                     carries the source and a raw excerpt for `rejections`
    ├── NotPermitted              exit 3  the user lacks the role an action needs (`permissions`)
    └── HeldError                 exit 4  an incident hold keeps what was asked to be removed

The core raises these; `facility.cli` turns them into one line on stderr and an exit code, and
`facility.web` into an HTTP status (`web.app.STATUS`: 400, 403, 409, 503). Connectors wrap library
errors as one of these `from err`.
"""

from __future__ import annotations


class FacilityError(Exception):
    """Base of every error facility raises on purpose."""

    exit_code = 1


class StoreError(FacilityError):
    """The database cannot be reached or refused an operation."""


class SchemaNotReady(StoreError):
    """The database has no schema, or an older one than this code needs."""


class NotDelivered(FacilityError):
    """A host notification was not delivered this time; it is tried again later."""


class InputError(FacilityError):
    """Input from a person or a source is invalid; nothing stored was changed."""

    exit_code = 2


class ConfigError(InputError):
    """A configuration key is unknown or its value is invalid."""


class RejectedInput(InputError):
    """A connector rejected a payload, lease line or file name."""

    def __init__(self, reason: str, *, source: str = "", raw: bytes | str = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.source = source
        self.raw = raw


class NotPermitted(FacilityError):
    """The acting user or account lacks a role the action needs (`accounts.permissions.check`)."""

    exit_code = 3


class HeldError(FacilityError):
    """An active incident hold keeps a record that was asked to be removed."""

    exit_code = 4

    def __init__(self, message: str, cases: list[str] | None = None) -> None:
        super().__init__(message)
        self.cases = cases or []
