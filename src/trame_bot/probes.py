"""Probing a connector's health-check URL over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp

from trame_bot.domain.health import Finding, Report

Probe = Callable[[str], Awaitable[Finding]]


def probe_session(max_open: int) -> aiohttp.ClientSession:
    """The HTTP session the probes share, with up to `max_open` connections carrying a probe at
    once: the sweep's own cap, so a probe never queues inside aiohttp for a connection (that
    wait would count against its timeout, and the default limit of 100 would make hung probes
    throttle the others again). A connection is kept alive for the next probe of the same host
    (health URLs of one toolkit often share a status host); closing each one after its answer
    would bound idle sockets too, at twice the CPU per probe."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=max_open))


class HttpProbe:
    """GET the URL: any 2xx is healthy; 401/403 mean the credentials no longer work; anything
    else, a timeout or a refused connection needs attention."""

    def __init__(self, session: aiohttp.ClientSession, timeout: float = 10.0) -> None:
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def __call__(self, url: str) -> Finding:
        try:
            async with self.session.get(
                url, timeout=self.timeout, allow_redirects=True
            ) as response:
                if 200 <= response.status < 300:
                    return Finding(Report.OK)
                if response.status in (401, 403):
                    return Finding(
                        Report.DISCONNECTED,
                        f"health check refused the credentials ({response.status})",
                    )
                return Finding(Report.ERROR, f"health check answered {response.status}")
        except TimeoutError:
            return Finding(
                Report.ERROR, f"health check did not answer within {self.timeout.total:g} s"
            )
        except (aiohttp.ClientError, OSError) as exc:
            return Finding(Report.ERROR, f"health check unreachable ({type(exc).__name__})")
