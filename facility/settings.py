"""The settings object: built once at the edge from `facility.toml` and `FACILITY_…` variables.

This is the only module that reads the environment. Every key is declared here once, with its
default and the help text the README's configuration table repeats (a test keeps them in step).

Where the data lives never depends on the directory a command is run from: a relative `home` or
SQLite path in the configuration file is read against that file's directory, one in the
environment or on the command line against the current directory once, and an unset `home` is
beside the configuration file (`var/`), or `/var/lib/facility` for the system configuration and
for root, or the user's data directory (`~/.local/share/facility`).
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import iso3166
from platformdirs import user_data_path
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from facility.errors import ConfigError, InputError
from facility.store import kinds
from facility.timeutil import parse_duration, zone

SYSTEM_CONFIG = Path("/etc/facility/facility.toml")
CONFIG_SEARCH = (Path("facility.toml"), SYSTEM_CONFIG)
SYSTEM_HOME = Path("/var/lib/facility")


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except InputError as err:
            raise ValueError(str(err).removeprefix("duration: ")) from err
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


if TYPE_CHECKING:

    class Retention(_Section):
        """How long each kind is kept: one duration per kind, named as the kind."""

        def __getattr__(self, kind: str) -> timedelta: ...

else:
    # One setting per record kind, its default and description declared with the kind.
    _RETENTION: dict[str, Any] = {
        kind.name: (Duration, Field(kind.retention, description=kind.retention_help))
        for kind in kinds.ALL
    }
    Retention = create_model(
        "Retention",
        __base__=_Section,
        __doc__="How long each kind is kept: seeds the policies at `facility init`.",
        **_RETENTION,
    )


class Limits(_Section):
    max_visit: Duration = Field(
        timedelta(hours=24), description="open visits are auto-closed after this"
    )
    max_badge_out: Duration = Field(
        timedelta(hours=24), description="badges not returned after this are marked lost"
    )
    max_lease_silence: Duration = Field(
        timedelta(days=30), description="a never-ending lease not seen for this long is closed"
    )
    clock_skew: Duration = Field(
        timedelta(minutes=5),
        description="an event time further ahead of the clock than this is refused",
    )


class Holds(_Section):
    release_grace: Duration = Field(
        timedelta(hours=24), description="a released hold keeps protecting for this long"
    )


class Purge(_Section):
    interval: Duration = Field(timedelta(minutes=15), description="how often the daemon purges")
    batch_size: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="rows deleted per transaction (unset: 50000 on SQLite, 200000 on PostgreSQL)",
    )


class Mqtt(_Section):
    host: str = Field("127.0.0.1", description="broker host name")
    port: int = Field(1883, ge=1, le=65535, description="broker port")
    client_id: str | None = Field(
        None,
        min_length=1,
        description="client id of the persistent session (unset: facility on SQLite, "
        "facility-<host>-<hash of home> on PostgreSQL, distinct per daemon)",
    )
    topic_prefix: str = Field("facility", min_length=1, description="prefix of every topic")
    username: str | None = Field(None, description="broker user name")
    password_file: Path | None = Field(None, description="file holding the broker password")
    tls_ca: Path | None = Field(None, description="CA file; setting it turns TLS on")
    tls_cert: Path | None = Field(None, description="client certificate file")
    tls_key: Path | None = Field(None, description="client key file")
    esp_rfid_topic: str = Field(
        "esprfid", description="base topic of esp-rfid door controllers (empty: off)"
    )
    uhppoted_topic: str = Field(
        "uhppoted/gateway", description="base topic of uhppoted-mqtt (empty: off)"
    )
    controller_timezone: str | None = Field(
        None, description="zone of door controller clocks without an offset (unset: timezone)"
    )
    batch_size: int = Field(
        500, ge=1, le=10_000, description="messages stored per transaction at most"
    )
    batch_latency: Duration = Field(
        timedelta(milliseconds=200),
        description="longest a received message waits for its batch to be written",
    )

    @field_validator("controller_timezone")
    @classmethod
    def _known_controller_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zone(value)
            except InputError as err:
                raise ValueError(str(err)) from err
        return value


class Camera(_Section):
    root: Path | None = Field(None, description="recordings root directory (unset: no camera data)")
    layout: Literal["frigate", "motioneye", "pattern"] = Field(
        "frigate", description="directory layout"
    )
    pattern: str | None = Field(
        None, description="path pattern for layout=pattern, e.g. {camera}/%Y/%m/%d/%H-%M-%S.mp4"
    )
    segment_length: Duration = Field(
        timedelta(seconds=10), description="length of a segment when the next one does not tell"
    )
    scan_interval: Duration = Field(
        timedelta(seconds=60),
        description="how often the daemon reads the directories that changed",
    )
    reconcile_interval: Duration = Field(
        timedelta(days=1),
        description="how often the daemon walks the whole root (and at its start)",
    )
    watch: bool = Field(
        True, description="index new files as they close (inotify, Linux); off: only the scans"
    )


class Evidence(_Section):
    root: Path | None = Field(
        None,
        description="evidence directory: held segments are hard-linked (or copied) into its "
        "footage/ folder, web exports go to exports/ (unset: held footage is not preserved)",
    )


class DhcpSource(_Section):
    format: Literal["isc", "dnsmasq", "kea"] = Field(description="lease file format")
    path: Path = Field(description="lease file path")
    poll_interval: Duration = Field(timedelta(seconds=30), description="how often the file is read")


class Snapshot(_Section):
    dir: Path | None = Field(None, description="where onsite.html/.csv go (unset: FACILITY_HOME)")
    interval: Duration = Field(
        timedelta(seconds=60), description="how often the snapshot is written"
    )


class Web(_Section):
    site: str | None = Field(
        None,
        description="the site every terminal of this web server serves (unset: each login "
        "chooses among the sites its account has a role at, else the only site)",
    )
    login_failures_per_minute: int = Field(
        10,
        ge=1,
        le=10_000,
        description="wrong passwords one client address may send in a minute before it waits",
    )
    kiosk_actions_per_minute: int = Field(
        20,
        ge=1,
        le=10_000,
        description="sign-ins and sign-outs one kiosk (and one client address) may send a minute",
    )


class Notify(_Section):
    """How hosts are told that their visitor arrived (`facility.notify`)."""

    smtp_host: str | None = Field(
        None, description="mail server that sends hosts their e-mail (unset: no e-mail)"
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="its port (submission)")
    smtp_from: str | None = Field(None, description="the sender address of those e-mails")
    smtp_starttls: bool = Field(
        True, description="switch to TLS with STARTTLS before logging in or sending"
    )
    smtp_ca_file: Path | None = Field(
        None, description="CA file the mail server's certificate must chain to (unset: system CAs)"
    )
    smtp_user: str | None = Field(None, description="user name to log in with (unset: no login)")
    smtp_password_file: Path | None = Field(None, description="file holding that user's password")
    webhook_secret_file: Path | None = Field(
        None, description="file holding the secret webhooks are signed with (whsec_ + base64)"
    )
    timeout: Duration = Field(
        timedelta(seconds=10), description="longest one delivery attempt waits for the other side"
    )
    retry_interval: Duration = Field(
        timedelta(seconds=30), description="how often the daemon sends what is waiting"
    )

    @property
    def configured(self) -> bool:
        """Whether any way of telling a host is set up."""
        return self.smtp_host is not None or self.webhook_secret_file is not None

    @model_validator(mode="after")
    def _complete(self) -> Notify:
        if self.smtp_host is not None and not self.smtp_from:
            raise ValueError("smtp_from: required when smtp_host is set (the sender address)")
        if self.smtp_user is not None and self.smtp_password_file is None:
            raise ValueError("smtp_password_file: required when smtp_user is set")
        return self


class Metrics(_Section):
    listen: str | None = Field(
        None,
        description='host:port the daemon serves Prometheus metrics on, e.g. "127.0.0.1:9108" '
        "(unset: off)",
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            listen_address(value)
        return value


def listen_address(value: str) -> tuple[str, int]:
    """("host", port) of "host:port" or "[v6]:port"; ValueError saying what is wrong."""
    host, colon, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port (e.g. 127.0.0.1:9108)")
    return host, int(port)


class Daemon(_Section):
    stuck_after: Duration = Field(
        timedelta(hours=1),
        description="a job still running after this is stuck: the daemon stops its systemd "
        "watchdog pings, so systemd restarts it",
    )


# A `[roles]` entry: a user or @group, and the site it is limited to after a colon.
_MEMBER = re.compile(r"@?[^\s:@][^\s:]*(:[a-z0-9][a-z0-9-]{0,31})?")


def _site_code(value: str | None) -> str | None:
    if value is not None and not _SITE_CODE.fullmatch(value):
        raise ValueError(f"{value!r} is not a site code (lower case letters, digits and -)")
    return value


_SITE_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
SiteCode = Annotated[str | None, AfterValidator(_site_code)]


class PolicyChanges(_Section):
    shortening_delay: Duration = Field(
        timedelta(hours=24),
        description="a shortened retention policy takes effect this long after it is set",
    )


class Privacy(_Section):
    """Who answers for the processing, for the notice (article 13) and the register (article 30)."""

    controller: str = Field(
        "", description="the controller's name and address, as the notice names it"
    )
    contact: str = Field(
        "", description="where people send a data-protection request (an address, e-mail, desk)"
    )
    dpo: str = Field("", description="how to reach the data protection officer (unset: none)")
    authority: str = Field(
        "",
        description="the supervisory authority people may complain to (unset: that of their country)",
    )
    legal_basis: dict[str, str] = Field(
        default_factory=dict,
        description="the legal basis of each kind, a table by kind name (unset: the kind's default)",
    )

    @field_validator("legal_basis")
    @classmethod
    def _known_kinds(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(kinds.NAMES))
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} is not a kind (one of {', '.join(kinds.NAMES)})"
            )
        return {kind: " ".join(text.split()) for kind, text in value.items()}

    def basis(self, kind: str) -> str:
        """The legal basis of `kind`: the configured one, else the kind's default."""
        return self.legal_basis.get(kind) or kinds.get(kind).legal_basis


class Roles(_Section):
    @field_validator("*")
    @classmethod
    def _members(cls, value: list[str]) -> list[str]:
        for member in value:
            if not _MEMBER.fullmatch(member):
                raise ValueError(
                    f"{member!r} is not a user or @group, optionally with :site (alice, "
                    "@desk, alice:ams, @desk-bru:bru)"
                )
        return value

    reception: list[str] = Field(
        default_factory=list,
        description="users and @groups with role reception (`name:site` for one site)",
    )
    security: list[str] = Field(
        default_factory=list, description="users and @groups with role security"
    )
    privacy: list[str] = Field(
        default_factory=list, description="users and @groups with role privacy"
    )
    admin: list[str] = Field(default_factory=list, description="users and @groups with role admin")


class Settings(BaseSettings):
    """Every setting facility knows; see the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="FACILITY_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    home: Path = Field(
        default_factory=lambda: default_home(None),
        description="where the default database, snapshots and audit.key live",
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL (unset: sqlite:///HOME/facility.db)"
    )
    timezone: str = Field(
        "Europe/Amsterdam",
        description="time zone of this configuration's site (input without an offset, messages); "
        "seeds the default site",
    )
    country: str = Field(
        "NL", description="country (ISO 3166-1 alpha-2) of the default site at `facility init`"
    )
    site: SiteCode = Field(
        None,
        description="the site this configuration works at (FACILITY_SITE; unset: the only site)",
    )
    retention: Retention = Field(default_factory=Retention)
    limits: Limits = Field(default_factory=Limits)
    holds: Holds = Field(default_factory=Holds)
    purge: Purge = Field(default_factory=Purge)
    mqtt: Mqtt = Field(default_factory=Mqtt)
    camera: Camera = Field(default_factory=Camera)
    evidence: Evidence = Field(default_factory=Evidence)
    dhcp: list[DhcpSource] = Field(default_factory=list)
    snapshot: Snapshot = Field(default_factory=Snapshot)
    web: Web = Field(default_factory=Web)
    metrics: Metrics = Field(default_factory=Metrics)
    daemon: Daemon = Field(default_factory=Daemon)
    notify: Notify = Field(default_factory=Notify)
    policy: PolicyChanges = Field(default_factory=PolicyChanges)
    privacy: Privacy = Field(default_factory=Privacy)
    roles: Roles | None = Field(None, description="unset: every user has every role (doctor warns)")

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        # A relative FACILITY_HOME is read once, here; every message then names an absolute path.
        return Path(os.path.abspath(value))

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        cleaned = value.strip().upper()
        if cleaned not in iso3166.countries_by_alpha2:
            raise ValueError(f"{value!r} is not an ISO 3166-1 country code (e.g. NL, BE)")
        return cleaned

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zone(value)
        except InputError as err:
            raise ValueError(str(err)) from err
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init data; the environment overrides it.
        return (env_settings, init_settings)

    @property
    def url(self) -> str:
        """The database URL in force."""
        return self.database_url or f"sqlite:///{self.home / 'facility.db'}"

    @property
    def retention_configured(self) -> dict[str, timedelta]:
        """The retention of each kind the configuration sets itself (file or environment)."""
        return {kind: getattr(self.retention, kind) for kind in self.retention.model_fields_set}

    @property
    def site_zone(self) -> tzinfo:
        """The zone of `timezone` (`facility.sites.zone_of` gives a site's own)."""
        return zone(self.timezone)

    @property
    def timezone_configured(self) -> bool:
        """Whether the configuration (file or environment) sets `timezone` itself."""
        return "timezone" in self.model_fields_set

    @property
    def snapshot_dir(self) -> Path:
        """Where the on-site snapshot files are written."""
        return self.snapshot.dir or self.home


def config_path(explicit: Path | None) -> Path | None:
    """The configuration file in force, absolute: --config, $FACILITY_CONFIG, ./facility.toml, /etc/…."""
    if explicit is not None:
        found: Path | None = explicit
    elif os.environ.get("FACILITY_CONFIG"):
        found = Path(os.environ["FACILITY_CONFIG"])
    else:
        found = next((p for p in CONFIG_SEARCH if p.is_file()), None)
    return None if found is None else Path(os.path.abspath(found))


def default_home(config: Path | None) -> Path:
    """Where the data lives when `home` is not set: never the current directory."""
    if config is not None and config != SYSTEM_CONFIG:
        return config.parent / "var"
    if config == SYSTEM_CONFIG or os.geteuid() == 0:
        return SYSTEM_HOME
    return user_data_path("facility", appauthor=False)


def debug_requested() -> bool:
    """Whether FACILITY_DEBUG asks the CLI to show tracebacks of unexpected errors."""
    return os.environ.get("FACILITY_DEBUG", "") not in ("", "0")


def hook_environment() -> dict[str, str]:
    """The `DNSMASQ_*` variables dnsmasq sets for its `--dhcp-script` (read here, like all env)."""
    return {key: value for key, value in os.environ.items() if key.startswith("DNSMASQ_")}


def systemd_environment() -> dict[str, str]:
    """What systemd tells a `Type=notify` service: `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`."""
    names = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
    return {name: os.environ[name] for name in names if os.environ.get(name)}


def load_settings(config: Path | None = None, database_url: str | None = None) -> Settings:
    """Build the settings from the config file and environment; raise ConfigError naming the key."""
    path = config_path(config)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise ConfigError(f"cannot read configuration file {path}: {err.strerror}") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"configuration file {path} is not valid TOML: {err}") from err
        _anchor_paths(data, path.parent)
    data.setdefault("home", default_home(path))
    try:
        settings = Settings(**data)
    except ValidationError as err:
        raise ConfigError(_describe(err, path)) from err
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    if settings.database_url:
        check_database_url(settings.database_url, key="--db" if database_url else "database_url")
        anchored = _anchor_sqlite(settings.database_url, Path.cwd())
        settings = settings.model_copy(update={"database_url": anchored})
    return settings


SUPPORTED_DATABASES = ("sqlite", "postgresql")


def check_database_url(url: str, *, key: str) -> None:
    """ConfigError naming `key` unless `url` is a SQLAlchemy URL of SQLite or PostgreSQL."""
    try:
        backend = make_url(url).get_backend_name()
    except (ArgumentError, ValueError) as err:
        raise ConfigError(
            f"{key}: not a database URL; give sqlite:////absolute/path.db or "
            "postgresql+psycopg://user@host/database"
        ) from err
    if backend not in SUPPORTED_DATABASES:
        raise ConfigError(
            f"{key}: {backend} is not supported; facility runs on SQLite or PostgreSQL "
            "(sqlite:///path.db, postgresql+psycopg://user@host/database)"
        )
    parsed = make_url(url)
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigError(f"{key}: an in-memory SQLite database cannot be shared; give a file path")
    try:
        dialect = parsed.get_dialect()
        usable = not getattr(dialect, "is_async", False)
        if usable:
            dialect.import_dbapi()
    except (ArgumentError, ImportError, NoSuchModuleError):
        usable = False
    if not usable:
        raise ConfigError(
            f"{key}: driver {parsed.drivername!r} cannot be used here; give sqlite:///path.db or "
            "postgresql+psycopg://user@host/database"
        )


# The path settings of the file (besides `home` and the SQLite path), by section.
_FILE_PATHS = {
    "camera": ("root",),
    "evidence": ("root",),
    "snapshot": ("dir",),
    "mqtt": ("password_file", "tls_ca", "tls_cert", "tls_key"),
    "notify": ("smtp_ca_file", "smtp_password_file", "webhook_secret_file"),
}


def _anchor_paths(data: dict[str, Any], base: Path) -> None:
    """Read the file's relative paths (home, SQLite, camera root, ...) against its own directory."""
    _anchor(data, "home", base)
    for section, keys in _FILE_PATHS.items():
        for key in keys:
            _anchor(data.get(section), key, base)
    for source in data.get("dhcp") or []:
        _anchor(source, "path", base)
    url = data.get("database_url")
    if isinstance(url, str):
        data["database_url"] = _anchor_sqlite(url, base)


def _anchor(table: Any, key: str, base: Path) -> None:
    if isinstance(table, dict) and isinstance(table.get(key), str) and table[key]:
        table[key] = str(base / Path(table[key]).expanduser())


def _anchor_sqlite(url: str, base: Path) -> str:
    """A SQLite URL with a relative file path made absolute against `base`; others unchanged."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return url  # check_database_url names it
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if database.startswith("file:") or Path(database).is_absolute():
        return url
    return parsed.set(database=str(base / database)).render_as_string(hide_password=False)


def _describe(err: ValidationError, path: Path | None) -> str:
    first = err.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(root)"
    where = f" in {path}" if path else ""
    if first["type"] == "extra_forbidden":
        return f"unknown setting {key!r}{where}"
    return f"invalid setting {key!r}{where}: {first['msg'].removeprefix('Value error, ')}"
