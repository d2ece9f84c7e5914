"""Every action a person can take, the roles that may take it, and the one check that decides.

Each CLI command and each web page or API route names the action it performs (the CLI with
`cli.context.permitted`, the web with `web.auth.permitted`/`api_permitted`/`public`), and both
edges ask `check`, which audits a refusal and raises NotPermitted (exit 3; 403). A test walks the
command tree and the routes and fails on one that names no action; another keeps the README's
roles table equal to these declarations.

An action with no roles (ANYONE) checks none: logging in, static files, and the operator's
commands whose access the operating system decides (who may read the configuration and write
the database). `admin` holds every role.

Sites. A role is held everywhere (`reception`) or at one site (`reception:ams`, from a `[roles]`
entry `alice:ams` or a web account's role `reception:ams`); `admin:ams` holds every role at ams.
Each action says where it is performed (`at`): at one site (SITE: the site the command, terminal
or daemon works at), for the organisation (ORGANISATION: needs the role everywhere, unless the
command is narrowed to one site), or over the sites the caller may see (VISIBLE: a role at any
site lets it in, and it shows those sites only). The controller's own registers, which belong to
no site, are WHOLE: data-subject requests, restrictions, ignored and blocked devices (the privacy
officer acts for the controller; an objection or a restriction is a person's against the
organisation; a blocked device is kept off every office's network). They need the role without a
site, whatever --site says. `check` takes the site; a refusal at one site of someone who holds the
role at another names the site.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from facility.errors import NotPermitted

ROLES = ("reception", "security", "privacy", "admin")
ANYONE: tuple[str, ...] = ()
RECEPTION = ("reception",)
FLOOR = ("reception", "security")  # the people at the desk and on the floor in an evacuation
SECURITY = ("security",)
PRIVACY = ("privacy",)
ADMIN = ("admin",)
# Where an action is performed (see the module docstring).
SITE = "site"
ORGANISATION = "organisation"
VISIBLE = "visible"
WHOLE = "whole"


@dataclass(frozen=True)
class Action:
    """Something a person can do, the roles that may do it (in the order refusals name them)."""

    name: str
    roles: tuple[str, ...]
    description: str
    at: str = ORGANISATION  # SITE, ORGANISATION, VISIBLE or WHOLE

    @property
    def public(self) -> bool:
        """Whether no role is checked."""
        return not self.roles

    def allows(self, roles: Iterable[str], site: str | None = None) -> bool:
        """Whether someone holding `roles` may perform it at `site` (None: organisation-wide)."""
        if self.public:
            return True
        granted = held(roles)
        if not granted.isdisjoint(self.roles):
            return True
        return site is not None and any(f"{role}:{site}" in granted for role in self.roles)

    def visible(self, roles: Iterable[str]) -> frozenset[str] | None:
        """The sites where `roles` allow it: None for every site, else their codes (maybe none)."""
        if self.allows(roles):
            return None
        return frozenset(
            site
            for grant in held(roles)
            for role, _, site in [grant.partition(":")]
            if site and role in self.roles
        )


ACTIONS = (
    # reception desk
    Action("visitor.sign-in", RECEPTION, "sign a visitor in, lending a badge if given", SITE),
    Action("visitor.sign-out", RECEPTION, "sign a visitor out; their badges come back", SITE),
    Action(
        "visitor.edit",
        RECEPTION,
        "correct one of today's visits (name, company, host, times)",
        SITE,
    ),
    Action(
        "visits.today", RECEPTION, "the desk's list of today's visits and those still open", SITE
    ),
    Action("badge.issue", RECEPTION, "lend a badge to a visitor who is signed in", SITE),
    Action("badge.return", RECEPTION, "take a badge back", SITE),
    Action("door.event", RECEPTION, "record a door event typed in or sent by a script", SITE),
    Action("onsite.view", FLOOR, "who is on site now, with the door each badge last opened", SITE),
    Action(
        "visitor.list",
        ("reception", "privacy"),
        "search the visit log, within what policy keeps",
        SITE,
    ),
    Action("visitor.label", RECEPTION, "print a visitor's badge label", SITE),
    Action("visitor.expect", RECEPTION, "announce a visitor expected on a day", SITE),
    Action("expected.list", RECEPTION, "the visitors expected from a day on", SITE),
    Action("expected.cancel", RECEPTION, "cancel an expected visit; nothing of it is kept", SITE),
    Action("host.add", RECEPTION, "add a host to the directory, or change how they are told", SITE),
    Action("host.list", RECEPTION, "the hosts directory", SITE),
    Action("host.remove", RECEPTION, "remove a host and what still waits to be sent to them", SITE),
    # kiosks: tablets where visitors sign themselves in
    Action("kiosk.add", ADMIN, "make a kiosk and print its one-time pairing link", SITE),
    Action("kiosk.list", ADMIN, "the kiosks, paired or not, and revoked ones", VISIBLE),
    Action("kiosk.revoke", ADMIN, "end a kiosk: its device stops working at once", VISIBLE),
    Action("kiosk.pair", ANYONE, "pair a tablet as a kiosk with its one-time link"),
    Action("kiosk.use", ANYONE, "sign in or out at a paired kiosk (its device cookie decides)"),
    # evacuation roll call
    Action("muster.start", FLOOR, "start a roll call of everyone on site", SITE),
    Action("muster.mark", FLOOR, "mark a person safe, missing or unknown", SITE),
    Action("muster.view", FLOOR, "a roll call and its counts, open or past", SITE),
    Action("muster.close", FLOOR, "close the roll call; it is kept as the record", SITE),
    # incident holds
    Action("hold.place", SECURITY, "place an incident hold", SITE),
    Action("hold.extend", SECURITY, "move a hold's end later or add scopes", VISIBLE),
    Action("hold.release", SECURITY, "release a hold, with a reason", VISIBLE),
    Action("hold.reinstate", SECURITY, "undo a release within the grace", VISIBLE),
    Action("hold.list", SECURITY, "the holds that protect now, or all", VISIBLE),
    Action("hold.show", SECURITY, "one hold, what it keeps and its history", VISIBLE),
    Action(
        "hold.records", SECURITY, "every record a hold keeps, with a timeline per camera", VISIBLE
    ),
    Action("hold.export", SECURITY, "write what a hold keeps for hand-over, signed", VISIBLE),
    # the case file: footage and exports
    Action(
        "footage.view",
        SECURITY,
        "watch a segment a hold keeps, or one within retention given a case and reason (audited)",
    ),
    Action("export.list", SECURITY, "the registered case exports, on disk or handed over", VISIBLE),
    Action(
        "export.handed-over",
        SECURITY,
        "record to whom an export was handed; purge deletes ours",
        VISIBLE,
    ),
    Action("export.download", SECURITY, "download an export as one zip file (audited)"),
    Action("export.verify", ANYONE, "check an export's signature and every file's hash"),
    Action("export.key", ANYONE, "print the installation's public key that signs exports"),
    # wifi devices
    Action("wifi.block", SECURITY, "keep a device off the network", WHOLE),
    Action("wifi.unblock", SECURITY, "lift a device's block", WHOLE),
    Action("wifi.blocked", ("security", "admin"), "the blocked devices", WHOLE),
    Action(
        "wifi.export-blocklist", ("security", "admin"), "write the DHCP server's blocklist", WHOLE
    ),
    Action("wifi.dnsmasq-hook", ANYONE, "store a lease event from dnsmasq (run as its user)", SITE),
    Action("wifi.ignore", PRIVACY, "stop storing a device's leases: its owner objected", WHOLE),
    Action(
        "wifi.unignore", PRIVACY, "store a device's leases again: the objection is lifted", WHOLE
    ),
    Action("wifi.ignored", PRIVACY, "the devices whose leases are not stored", WHOLE),
    # retention, the trail and the privacy officer
    Action("policy.show", ROLES, "the retention policy of every kind", VISIBLE),
    Action("policy.set", ("admin", "privacy"), "change how long a kind is kept"),
    Action("policy.sync", ("admin", "privacy"), "apply the configuration's retention"),
    Action("policy.apply", ADMIN, "put a shortened policy in force before its delay has passed"),
    Action("purge.run", ADMIN, "delete every expired record no hold keeps, or a dry run"),
    Action("audit.show", ("privacy", "admin"), "read the audit trail"),
    Action("audit.verify", ROLES, "check the audit trail's chain (a count and a hash)", VISIBLE),
    Action("report.view", PRIVACY, "the report proving nothing is kept past its policy"),
    Action("subject.export", PRIVACY, "what is stored about a person or device", VISIBLE),
    Action("subject.erase", PRIVACY, "erase what is stored about a person or device", VISIBLE),
    Action(
        "rejections.list", ("privacy", "admin"), "rejected inputs, raw excerpts included", VISIBLE
    ),
    Action("subject.rectify", PRIVACY, "correct any visit (name, company, host, times)"),
    Action(
        "subject.restrict",
        PRIVACY,
        "restrict a person's records: kept, shown to privacy only",
        WHOLE,
    ),
    Action("subject.unrestrict", PRIVACY, "lift a restriction", WHOLE),
    Action("subject.restricted", PRIVACY, "the subjects whose records are restricted", WHOLE),
    Action("request.open", PRIVACY, "register a data-subject request; due in one month", WHOLE),
    Action("request.extend", PRIVACY, "extend a request's deadline by up to two months", WHOLE),
    Action("request.close", PRIVACY, "close a request with its outcome", WHOLE),
    Action("request.list", PRIVACY, "the data-subject requests, open, overdue or all", WHOLE),
    Action("register.view", PRIVACY, "the register of processing activities (article 30)"),
    Action("notice.view", ANYONE, "the privacy notice people are shown (article 13)"),
    # sources, operated by hand
    Action("camera.scan", ADMIN, "index the recordings root; drops rows of vanished files", SITE),
    Action("import.leases", ADMIN, "read a whole DHCP lease file once", SITE),
    # sites and legal ceilings
    Action("site.add", ADMIN, "add a site (office) with its time zone and country"),
    Action("site.set", ADMIN, "change a site's name, time zone or country"),
    Action("site.list", ROLES, "the sites, with their time zones and countries", VISIBLE),
    Action("site.show", ROLES, "one site, with its policies in force", VISIBLE),
    Action("policy.ceiling-show", ROLES, "the legal ceilings per country and kind", VISIBLE),
    Action(
        "policy.ceiling-set", ADMIN, "set a country's legal ceiling for a kind, with its source"
    ),
    # web accounts
    Action("user.add", ADMIN, "create a web account with its roles"),
    Action("user.passwd", ADMIN, "set an account's password; ends its sessions"),
    Action("user.roles", ADMIN, "replace an account's roles; ends its sessions"),
    Action("user.remove", ADMIN, "delete an account and its sessions"),
    Action("user.list", ADMIN, "the accounts, their roles and live sessions"),
    Action("user.sessions", ADMIN, "live web sessions: account, address, times"),
    Action("user.revoke", ADMIN, "end every session of an account"),
    # operating the installation: whoever may use the configuration and the database
    Action("store.init", ANYONE, "create or upgrade the database, seed the policies"),
    Action("doctor.run", ANYONE, "check settings, database, broker, files and jobs"),
    Action("daemon.run", ANYONE, "run the daemon's jobs and the MQTT connector", SITE),
    Action("web.serve", ANYONE, "serve the web interface (its accounts have roles)"),
    # the web interface's own doors
    Action("web.home", ANYONE, "go to the first page the account may open"),
    Action("web.login", ANYONE, "log in with a local account"),
    Action("web.logout", ANYONE, "end the session"),
    Action("web.whoami", ANYONE, "the signed-in account and its roles"),
    Action("web.static", ANYONE, "style sheets and images"),
    Action("web.api-description", ANYONE, "the API's OpenAPI document"),
)
BY_NAME = {action.name: action for action in ACTIONS}


def declared(name: str) -> Action:
    """The action called `name`; a KeyError names an action nobody declared (a bug)."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no action {name!r} is declared in facility.accounts.permissions") from None


def held(named: Iterable[str]) -> frozenset[str]:
    """The roles someone holds, given those named for them: `admin` holds every role.

    A role limited to a site is `role:site`; `admin:site` holds every role at that site.
    """
    roles = set(named)
    if "admin" in roles:
        roles.update(ROLES)
    for grant in list(roles):
        role, _, site = grant.partition(":")
        if role == "admin" and site:
            roles.update(f"{each}:{site}" for each in ROLES)
    return frozenset(roles)


@dataclass(frozen=True)
class Requester:
    """Who asks: as the trail names them, as a refusal names them, and the roles they hold."""

    actor: str
    label: str
    roles: frozenset[str]
    remedy: str = ""  # where roles are given, appended to a refusal


def check(
    name: str,
    requester: Requester,
    *,
    where: str,
    audit_refusal: Callable[..., Any],
    site: str | None = None,
    anywhere: bool = False,
) -> Action:
    """The action, if `requester` may perform it at `site`; else audit the refusal and raise NotPermitted.

    `site` is the code of the site it is performed at (None: the whole organisation);
    `anywhere` lets it in when the role is held at any site (a VISIBLE action not narrowed to
    one). `where` is the command or route template, never what was typed (invariant 13);
    `audit_refusal` writes the entry (the web's summarises repeats per account and route).
    """
    action = declared(name)
    if action.allows(requester.roles, site):
        return action
    elsewhere = action.visible(requester.roles)
    if anywhere and elsewhere:
        return action
    entry: dict[str, Any] = {"command": where, "needs": list(action.roles)}
    at = ""
    if elsewhere:  # held at other sites: a refusal across sites names the site
        at = f" at site {site}" if site else " for the whole organisation"
        entry["site"] = site
    audit_refusal(actor=requester.actor, action="refused", **entry)
    raise NotPermitted(
        f"{where}: {requester.label} needs role {' or '.join(action.roles)}{at}{requester.remedy}"
    )
