"""systemd's notify protocol: `READY=1`, `WATCHDOG=1`, `STOPPING=1` as datagrams to $NOTIFY_SOCKET.

The protocol is one datagram of `KEY=value` lines to a Unix socket whose path (or, starting with
`@`, abstract name) systemd passes in the environment, with the watchdog's period in
`WATCHDOG_USEC`; a dozen lines, so no dependency (the `sdnotify` package does the same and has not
changed since 2017; `systemd-python` needs libsystemd's headers to build). Outside systemd there
is no socket and every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("facility.daemon")


class Notifier:
    """Talks to the service manager, if there is one."""

    def __init__(self, environment: dict[str, str]) -> None:
        address = environment.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog: float | None = None  # seconds between pings systemd expects at most
        usec = environment.get("WATCHDOG_USEC", "")
        pid = environment.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog = int(usec) / 1_000_000
        self._said_failure = False

    @property
    def active(self) -> bool:
        """Whether a service manager listens."""
        return bool(self._address)

    def send(self, *lines: str) -> None:
        """One message of `KEY=value` lines; a failure is logged once, never raised."""
        if not self._address:
            return
        message = "\n".join(lines).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._address)
                sock.sendall(message)
        except OSError as err:
            if not self._said_failure:
                log.warning("cannot notify systemd at %s: %s", self._address, err)
                self._said_failure = True
