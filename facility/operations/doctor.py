"""`facility doctor`: the health checks an operator runs, each an OK / WARN / FAIL line saying what to do.

Checks never change anything. A check that cannot run (the database is down) says so and the others
still run, so one broken part does not hide the state of the rest.

The daemon's own MQTT connection lives in its process; doctor checks that the broker accepts TCP
connections, and each job's last success and failure as the daemons stored them in `job_runs`
(`facility.operations.jobruns.schedule` lists the jobs the settings call for).
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

from facility import sites
from facility.accounts.access import ROLES
from facility.errors import FacilityError, InputError, SchemaNotReady
from facility.notify import message, outbox
from facility.operations import jobruns
from facility.retention import evidence, policies
from facility.retention.camera_files import root_state
from facility.settings import Settings
from facility.store import db
from facility.store.models import JobRun, Site
from facility.timeutil import format_duration
from facility.trail import audit
from facility.visitors import hosts


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    status: str  # OK | WARN | FAIL
    name: str
    message: str


def run_checks(settings: Settings, *, now: datetime, config: Path | None) -> list[Check]:
    """Every check, in the order an operator fixes things."""
    where = config or "defaults, no configuration file"
    checks = [Check("OK", "settings", f"valid ({where}); home {settings.home}")]
    checks += list(_database(settings, now))
    checks.append(_broker(settings))
    checks.append(_recordings(settings))
    checks.append(_evidence(settings))
    checks += [_lease_file(source.path) for source in settings.dhcp]
    checks += list(_roles(settings))
    checks.append(_audit_key(settings))
    return checks


def _database(settings: Settings, now: datetime) -> Iterator[Check]:
    where = db.redact(settings.url)
    try:
        engine = db.make_engine(settings.url)
    except FacilityError as err:
        yield Check("FAIL", "database", str(err))
        yield Check("WARN", "jobs", "not checked: their last runs are kept in the database")
        return
    try:
        _schema(engine)
        with db.session_scope(engine) as session:
            drift = policies.drift(session, settings.retention_configured)
            try:
                site: Site | None = sites.resolve(session, explicit=None, configured=settings.site)
            except InputError as err:
                site, unresolved = None, str(err)
            runs = {} if site is None else {r.job: r for r in jobruns.all_runs(session, site.id)}
            waiting = outbox.waiting(session)
            told = sum(
                1 for host in hosts.listing(session, site_id=None) if host.email or host.webhook
            )
    except FacilityError as err:
        yield Check("FAIL", "database", str(err))
        yield Check("WARN", "jobs", "not checked: their last runs are kept in the database")
        return
    finally:
        engine.dispose()
    yield Check("OK", "database", f"{where} reachable, schema at {db.head_revision()}")
    yield _retention(settings, drift)
    if site is None:
        yield Check("WARN", "site", f"{unresolved}: a daemon or terminal here needs `site` set")
        yield Check("WARN", "jobs", "not checked: each site's daemon keeps its own")
        yield from _notifications(settings, waiting, told, now)
        return
    yield _site(settings, site)
    yield from _jobs(settings, runs, now)
    yield from _notifications(settings, waiting, told, now)


def _site(settings: Settings, site: Site) -> Check:
    zone = sites.zone_name(site, settings)
    # The configuration's zone wins for its own site; other hosts read the database's.
    differs = (
        f" (the configuration's; {site.timezone} in the database)" if zone != site.timezone else ""
    )
    return Check("OK", "site", f"{site.code} ({site.name}), {zone}{differs}, {site.country}")


def _retention(settings: Settings, drift: list[policies.Change]) -> Check:
    if drift:
        return Check(
            "WARN",
            "retention",
            f"{policies.describe_drift(drift)}: the database's value is in force; run "
            "`facility policy sync` to apply the configuration, or change the configuration",
        )
    if settings.retention_configured:
        return Check("OK", "retention", "the database's policies match the configuration")
    return Check("OK", "retention", "kept in the database (the configuration sets none)")


def _notifications(
    settings: Settings, waiting: outbox.Waiting, told: int, now: datetime
) -> Iterator[Check]:
    """How hosts are told: the [notify] settings, the mail server, and what waits in the outbox."""
    notify = settings.notify
    if not notify.configured:
        if told:
            yield Check(
                "WARN",
                "notifications",
                f"{told} host(s) in the directory, but [notify] is not set: nobody is told; set "
                "notify.smtp_host (e-mail) or notify.webhook_secret_file (webhooks)",
            )
        return
    for problem in _notify_files(settings):
        yield Check("FAIL", "notifications", problem)
    if notify.smtp_host is not None:
        yield _mail_server(settings)
    if waiting.failing:
        yield Check(
            "WARN",
            "notifications",
            f"{waiting.failing} of {waiting.count} waiting notification(s) could not be "
            f"delivered; last failure {_ago(now, waiting.last_failure or now)}: "
            f"{waiting.last_error}",
        )
    elif waiting.count:
        oldest = _ago(now, waiting.oldest or now)
        yield Check("OK", "notifications", f"{waiting.count} waiting, the oldest queued {oldest}")
    else:
        yield Check("OK", "notifications", "nothing waiting to be sent")


def _notify_files(settings: Settings) -> Iterator[str]:
    notify = settings.notify
    wanted = [("notify.webhook_secret_file", notify.webhook_secret_file)]
    if notify.smtp_user:
        wanted.append(("notify.smtp_password_file", notify.smtp_password_file))
    for key, path in wanted:
        if path is None:
            if key == "notify.smtp_password_file":
                yield f"{key} is not set, but notify.smtp_user is: the login cannot work"
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            yield f"{key} {path} cannot be read by this user ({err.strerror or err})"
            continue
        if key == "notify.webhook_secret_file":
            try:
                message.check_secret(text)
            except FacilityError as err:
                yield str(err)


def _mail_server(settings: Settings) -> Check:
    notify = settings.notify
    target = f"{notify.smtp_host}:{notify.smtp_port}"
    try:
        with socket.create_connection((notify.smtp_host, notify.smtp_port), timeout=3):
            return Check("OK", "mail server", f"{target} accepts connections")
    except OSError as err:
        return Check(
            "WARN",
            "mail server",
            f"{target} unreachable ({err.strerror or err}): hosts are not told by e-mail until "
            "it is back (the daemon retries)",
        )


def _schema(engine: Engine) -> None:
    """Raise SchemaNotReady unless at head, saying whether `init` or a newer facility is the fix."""
    current = db.current_revision(engine)
    if current is not None and current != db.head_revision() and not _known(current):
        raise SchemaNotReady(
            f"database {db.redact(str(engine.url))} is at schema revision {current}, which this "
            f"facility (schema {db.head_revision()}) does not know: a newer facility wrote it; "
            "upgrade facility rather than run `facility init`"
        )
    db.ensure_ready(engine)


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory(str(db.MIGRATIONS)).get_revision(revision) is not None
    except CommandError:
        return False


def _jobs(settings: Settings, runs: dict[str, JobRun], now: datetime) -> Iterator[Check]:
    for name, interval in jobruns.schedule(settings).items():
        run = runs.get(name)
        if (
            run is not None
            and run.last_failure is not None
            and (run.last_success is None or run.last_failure > run.last_success)
        ):
            yield Check(
                "WARN",
                f"job {name}",
                f"last run failed {_ago(now, run.last_failure)}: {run.last_error}",
            )
        elif run is None or run.last_success is None:
            yield Check("WARN", f"job {name}", "never ran: is `facility daemon` running?")
        elif now - run.last_success > 3 * interval + timedelta(minutes=1):
            yield Check(
                "WARN",
                f"job {name}",
                f"last success {_ago(now, run.last_success)} (every "
                f"{format_duration(interval)}): is `facility daemon` running?",
            )
        else:
            yield Check("OK", f"job {name}", f"last success {_ago(now, run.last_success)}")


def _ago(now: datetime, then: datetime) -> str:
    age = now - then
    if age < timedelta(seconds=1):
        return "just now"
    return f"{format_duration(age)} ago"


def _broker(settings: Settings) -> Check:
    target = f"{settings.mqtt.host}:{settings.mqtt.port}"
    try:
        with socket.create_connection((settings.mqtt.host, settings.mqtt.port), timeout=3):
            return Check("OK", "mqtt broker", f"{target} accepts connections")
    except OSError as err:
        return Check(
            "WARN",
            "mqtt broker",
            f"{target} unreachable ({err.strerror or err}): start it or fix mqtt.host/mqtt.port "
            "(the daemon runs on and catches up when it is back)",
        )


def _recordings(settings: Settings) -> Check:
    root = settings.camera.root
    if root is None:
        return Check("OK", "recordings", "camera.root not set: no camera data is kept")
    problem = root_state(root)
    if problem:
        return Check(
            "FAIL",
            "recordings",
            f"{problem}; mount it or fix camera.root (purge and scan refuse meanwhile)",
        )
    return Check("OK", "recordings", f"{root} present and not empty")


def _evidence(settings: Settings) -> Check:
    root, camera = settings.evidence.root, settings.camera.root
    if root is None:
        if camera is None:
            return Check("OK", "evidence", "evidence.root not set (no camera data either)")
        return Check(
            "WARN",
            "evidence",
            "evidence.root not set: footage a hold keeps is not preserved against the recorder's "
            "own deletions; set it to a folder beside camera.root",
        )
    wrong = evidence.problem(settings)
    if wrong is not None and camera is not None:
        return Check("FAIL", "evidence", wrong)
    try:
        found = root.lstat()
    except FileNotFoundError:
        return Check("FAIL", "evidence", f"{root} does not exist: create it (mode 0700)")
    except OSError as err:
        return Check("FAIL", "evidence", f"{root} cannot be read: {err.strerror}")
    if not stat.S_ISDIR(found.st_mode):
        return Check("FAIL", "evidence", f"{root} is not a directory")
    if not os.access(root, os.W_OK | os.X_OK):
        return Check("FAIL", "evidence", f"{root} is not writable by this user: fix its owner")
    if stat.S_IMODE(found.st_mode) & stat.S_IRWXO:
        return Check(
            "WARN", "evidence", f"{root} is open to other users (it holds footage): chmod 700 it"
        )
    if camera is not None and camera.exists() and os.stat(camera).st_dev != found.st_dev:
        return Check(
            "WARN",
            "evidence",
            f"{root} is on another file system than {camera}: held segments are copied "
            "(verified), not hard-linked, which takes their space and time",
        )
    return Check("OK", "evidence", f"{root} writable, private, held segments are hard-linked")


def _lease_file(path: Path) -> Check:
    # Read a byte rather than ask os.access: that answers for the real user id, and yes for root.
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except FileNotFoundError:
        problem = "does not exist"
    except IsADirectoryError:
        problem = "is a directory, not a lease file"
    except OSError as err:
        problem = f"cannot be read by this user ({err.strerror or err})"
    else:
        return Check("OK", "lease file", f"{path} readable")
    return Check(
        "FAIL", "lease file", f"{path} {problem}; fix the [[dhcp]] path or the file's permissions"
    )


def _roles(settings: Settings) -> Iterator[Check]:
    roles = settings.roles
    if roles is None:
        yield Check(
            "WARN",
            "roles",
            "no [roles] section: every user holds every role; map roles to users or @groups",
        )
        return
    warned = False
    for role in ROLES:
        unknown = [member for member in getattr(roles, role) if not _somebody(member)]
        if unknown:
            warned = True
            yield Check(
                "WARN",
                "roles",
                f"roles.{role}: {', '.join(unknown)} is no user or group with members on this "
                "machine; fix the name or create it",
            )
    holders = {role: [m for m in getattr(roles, role) if _somebody(m)] for role in ROLES}
    for role in ("admin", "privacy"):
        if not holders[role] and not holders["admin"]:
            warned = True
            what = "policy changes and user accounts" if role == "admin" else "subject requests"
            yield Check(
                "WARN",
                "roles",
                f"nobody holds {role}: {what} are impossible; add an existing user or @group "
                f"to roles.{role}",
            )
    if not warned:
        yield Check("OK", "roles", "configured; every entry is an existing user or group")


def _somebody(entry: str) -> bool:
    """Whether a [roles] entry names an existing user, or a group somebody belongs to."""
    member = entry.partition(":")[0]  # `alice:ams`: alice, at site ams
    if not member.startswith("@"):
        try:
            pwd.getpwnam(member)
        except KeyError:
            return False
        return True
    try:
        group = grp.getgrnam(member[1:])
    except KeyError:
        return False
    return bool(group.gr_mem) or any(user.pw_gid == group.gr_gid for user in pwd.getpwall())


def _audit_key(settings: Settings) -> Check:
    path = settings.home / audit.KEY_FILE
    if not path.exists():
        return Check(
            "FAIL",
            "audit key",
            f"{path} is missing: run `facility init` (or restore it from backup)",
        )
    try:
        audit.load_or_create_key(path)
    except FacilityError as err:
        return Check("FAIL", "audit key", str(err))
    return Check("OK", "audit key", f"{path} present, private")
