"""``/healthz``, ``/readyz`` and ``/metrics`` over HTTP, for Docker, Kubernetes and Prometheus.

The two probes answer different questions. *Healthy* means the process is alive and its
event loop runs: a handler that blocks the loop (inference or ffmpeg run in the wrong
place) delays every user, so a small task measures how late the loop runs a timer and
``/healthz`` fails above ``health.max_loop_lag_seconds``; an orchestrator restarts an
unhealthy bot. *Ready* means the bot can serve: the model is loaded, the database
answers, the chat platform is connected. Those parts register named checks in
:class:`Readiness`; ``/readyz`` answers 503 with the names that fail, so traffic waits
but nothing restarts a bot that is merely starting or waiting for Telegram.

The server is off by default (``[health] enabled``); it listens on 127.0.0.1 unless told
otherwise, because ``/metrics`` is for the operator, not for the internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType

from aiohttp import web

from bot.ops.metrics import Metrics
from bot.settings import HealthSettings

logger = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]
"""Answers whether one part of the bot can serve; an exception counts as "no"."""


class HealthServerError(RuntimeError):
    """The health server could not listen on its address (usually: port in use)."""

    def __init__(self, *, host: str, port: int, reason: str) -> None:
        super().__init__(f"health server cannot listen on {host}:{port}: {reason}")
        self.host = host
        self.port = port
        self.reason = reason


class Readiness:
    """Named readiness checks (``model_loaded``, ``database``, ``telegram`` ...)."""

    def __init__(self, *, timeout_seconds: float = 2.0) -> None:
        self._checks: dict[str, ReadinessCheck] = {}
        self._timeout = timeout_seconds

    def register(self, name: str, check: ReadinessCheck) -> None:
        """Add a check; a second check with the same name replaces the first."""
        self._checks[name] = check

    def unregister(self, name: str) -> None:
        """Remove a check (e.g. a platform that was turned off); unknown names are fine."""
        self._checks.pop(name, None)

    async def evaluate(self) -> dict[str, bool]:
        """Run every check concurrently; a check that raises or hangs counts as failing."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(name) for name in names))
        return dict(zip(names, results, strict=True))

    async def _run(self, name: str) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                return bool(await self._checks[name]())
        except Exception as exc:  # a broken check must not break the probe itself
            logger.debug("readiness check %s failed: %r", name, exc)
            return False


class LoopLagMonitor:
    """Measures how late the event loop wakes a sleeping task.

    While the loop is blocked nothing can answer a probe at all (the orchestrator's
    timeout catches that). Blocks shorter than the probe's timeout but frequent (a
    3-second ffmpeg call on the loop every few seconds) would slip between probes, so
    :attr:`lag` is the worst lag of the last ``window_seconds``, not the latest.
    """

    def __init__(
        self,
        *,
        interval_seconds: float = 0.5,
        window_seconds: float = 10.0,
        on_sample: Callable[[float], None] | None = None,
    ) -> None:
        self._interval = interval_seconds
        self._window = window_seconds
        self._on_sample = on_sample
        self._samples: deque[tuple[float, float]] = deque()  # (when, lag)
        self._next_due: float | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def lag(self) -> float:
        """Seconds: the worst recent lag, or how overdue the next wake-up is, if more."""
        if self._next_due is None:
            return 0.0
        now = asyncio.get_running_loop().time()
        self._forget_before(now - self._window)
        recent = max((lag for _, lag in self._samples), default=0.0)
        return max(recent, now - self._next_due, 0.0)

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(
                self._measure(), name="loop-lag-monitor"
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _measure(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._next_due = loop.time() + self._interval
            await asyncio.sleep(self._interval)
            now = loop.time()
            self._samples.append((now, max(now - self._next_due, 0.0)))
            if self._on_sample is not None:
                self._on_sample(self.lag)

    def _forget_before(self, moment: float) -> None:
        while self._samples and self._samples[0][0] < moment:
            self._samples.popleft()


class HealthServer:
    """The aiohttp server behind ``/healthz``, ``/readyz`` and ``/metrics``.

    Use as ``async with HealthServer(settings.health, metrics) as server:``, register
    readiness checks on :attr:`readiness` at any time.
    """

    def __init__(
        self,
        settings: HealthSettings,
        metrics: Metrics,
        *,
        readiness: Readiness | None = None,
        lag_interval_seconds: float = 0.5,
        lag_window_seconds: float = 10.0,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.readiness = readiness if readiness is not None else Readiness()
        self.lag_monitor = LoopLagMonitor(
            interval_seconds=lag_interval_seconds,
            window_seconds=lag_window_seconds,
            on_sample=metrics.set_loop_lag,
        )
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port = 0`` in tests)."""
        if self._port is None:
            raise RuntimeError("health server is not running")
        return self._port

    async def start(self) -> None:
        """Start listening and measuring loop lag.

        Raises:
            HealthServerError: the address cannot be bound.
        """
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        # Probes and scrapes every few seconds would drown the bot's own log lines.
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise HealthServerError(
                host=self.settings.host, port=self.settings.port, reason=exc.strerror or str(exc)
            ) from exc
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self.lag_monitor.start()
        logger.info("health server on http://%s:%d", self.settings.host, self._port)

    async def stop(self) -> None:
        await self.lag_monitor.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._port = None

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _healthz(self, request: web.Request) -> web.Response:
        lag = self.lag_monitor.lag
        limit = self.settings.max_loop_lag_seconds
        body: dict[str, object] = {"loop_lag_seconds": round(lag, 4)}
        if not self.lag_monitor.running:
            body.update(status="unhealthy", reason="loop lag monitor stopped")
        elif lag > limit:
            body.update(status="unhealthy", reason=f"event loop lag above {limit} s")
        else:
            body.update(status="ok")
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)

    async def _readyz(self, request: web.Request) -> web.Response:
        results = await self.readiness.evaluate()
        failing = sorted(name for name, ok in results.items() if not ok)
        if failing:
            return web.json_response({"status": "not ready", "failing": failing}, status=503)
        return web.json_response({"status": "ready", "checks": sorted(results)})

    async def _metrics(self, request: web.Request) -> web.Response:
        self.metrics.set_loop_lag(self.lag_monitor.lag)
        # The type carries a charset, which aiohttp's content_type= argument refuses.
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": self.metrics.content_type}
        )
