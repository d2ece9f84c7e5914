"""The web interface: the sign-in terminal, the evacuation list and roll call, holds, and a JSON API.

`create_app(settings, clock=...)` builds the ASGI app; `facility web` serves it with uvicorn. The
settings object and the clock come from that edge: nothing here reads the environment or the wall
clock.

Who may do what. People log in with local accounts (`facility user add NAME --role ROLE`), whose
roles decide the pages and actions they get: every route names its action, declared once with its
roles in `facility.accounts.permissions` (the CLI's commands name the same actions), and the
navigation shows the pages whose action the account may perform. A route refused for want of a
role answers 403 and writes an audit entry (`refused`). The actor in the audit trail is
`web:NAME`. Errors of the core answer by kind (`app.STATUS`): bad input 400, not permitted 403,
kept by a hold 409, the database away 503.

Sessions. A login starts a session on the server (`facility.accounts.user_sessions`) and sets one cookie,
`facility_session`, holding its random token: signed (itsdangerous, key in `HOME/web.key`),
HttpOnly, SameSite=Strict, and Secure when the request came over HTTPS. Behind a TLS-terminating
proxy uvicorn takes the scheme and the client address from `X-Forwarded-Proto`/`-For`, but only
from the addresses given to `facility web --forwarded-allow-ips` (default 127.0.0.1);
`--secure-cookies` marks the cookie Secure whatever the scheme. A session lasts at most
`user_sessions.LIFETIME`; logging out, a new password, new roles, `facility user revoke` and
removing the account end it on the server, so an old cookie is worth nothing.

CSRF. Every form carries a token bound to the session and every POST without the right one is
refused (403) before anything else happens. The JSON API takes either HTTP Basic credentials
(for terminals and badge printers; the same limits as the login form) or the session cookie plus
the token in an `X-CSRF-Token` header, and only JSON bodies.

Wrong passwords (`throttle`): a client address gets `web.login_failures_per_minute` of them, then
429; five in a row for one name from one address lock that name there for 15 minutes, and only
there. Passwords are checked outside any database transaction, at most two at a time.

Limits (`limits`, `inputs`): bodies over 1 MB are refused (413) before they are read, addresses
over 2 kB (414); ids, times and text that the database could not take are refused (400) naming the
field; anything unexpected answers our error page (500) with the security headers, never a trace.
Refusals are audited by route template, once per actor and route a minute with a count (`digest`).
"""

from facility.web.app import create_app

__all__ = ["create_app"]
