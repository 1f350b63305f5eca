"""``karaoke-bot run``: the store, the pool, the chat flow and the adapters in one process.

Start order: store (migrations applied; uploads a crashed process left without a job are
removed) -> pool (models loaded once) -> the link service (its egress proxy, when links
are on) -> adapters (token checked) -> jobs a previous
process left behind are resumed or reported, and so are the songs it had accepted but
not made a job of yet (``bot.chat.conversation.intake``). Stop order on
Ctrl-C / SIGTERM: adapters stop receiving -> the pool finishes running jobs within the
grace period (their results are still delivered) -> adapters disconnect -> the link
service stops -> store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol, runtime_checkable

from bot.chat.conversation import messages
from bot.chat.conversation.adapter import ChatAdapter
from bot.chat.conversation.flow import ChatFlow, FlowConfig
from bot.chat.conversation.link_source import link_of_ref
from bot.chat.conversation.ratelimit import RateLimiter
from bot.chat.conversation.render_allowance import RenderAllowance
from bot.chat.conversation.tasks import TaskTracker
from bot.chat.conversation.types import ChatUser, Replier
from bot.chat.conversation.videos import KaraokeVideos
from bot.links.service import LinkService
from bot.ops.health import HealthServer, Readiness
from bot.ops.metrics import Metrics
from bot.process.wiring import flow_config, links_settings, lyrics_service, open_store
from bot.settings import Settings
from separation.jobs import SeparationBackend
from storage.intake import IntakeRecord
from storage.records import RecoveredJob, RecoveryAction, UserRecord
from storage.store import Store

logger = logging.getLogger(__name__)

QUEUE_SAMPLE_SECONDS = 2.0


@runtime_checkable
class FleetBackend(Protocol):
    """What a distributed backend adds for the operator (``bot.distributed.frontend``);
    named here so that a local bot never imports the distributed packages."""

    on_retry: Callable[[], None] | None

    def readiness_checks(self) -> dict[str, Callable[[], Awaitable[bool]]]: ...

    async def queue_depth(self) -> dict[str, int]: ...

    async def workers_alive(self) -> int: ...


AdapterFactory = Callable[[Settings, ChatFlow], ChatAdapter]
"""Builds one platform's adapter around the flow (``bot.cli.run.adapter_factories`` has
one per enabled platform)."""


@dataclass
class BotApp:
    """Everything ``run`` starts, so tests can start and stop the same thing in process."""

    settings: Settings
    store: Store
    backend: SeparationBackend
    flow: ChatFlow
    adapters: list[ChatAdapter] = field(default_factory=list)
    metrics: Metrics | None = None
    health: HealthServer | None = None
    links: LinkService | None = None
    """The one link service of the process (its egress proxy), when links are on; the
    flow holds the same one."""
    _background: TaskTracker = field(default_factory=TaskTracker)
    """The store's cleanup, the metrics sampler and jobs resumed after a restart."""
    _backend_started: bool = False
    _resuming: set[int] = field(default_factory=set)
    """Jobs this process resumed and still follows (a distributed front-end's takeovers)."""

    async def start(self) -> None:
        frontend = self.flow.config.frontend_id
        if frontend is None:  # before any song arrives: nothing is being written yet
            await self.store.upkeep.remove_leftover_uploads()
        if self.health is not None:
            self._register_readiness(self.health.readiness)
            await self.health.start()
        await self.backend.start()
        self._backend_started = True
        if self.links is not None:
            await self.links.__aenter__()
        for adapter in self.adapters:
            await adapter.start()
        if frontend is None:
            for recovered in await self.store.upkeep.recover_interrupted():
                self._resume(recovered)
        else:
            # Other front-ends may be delivering their own songs right now: take back
            # only this front-end's songs and those whose deliverer's lease ran out.
            await self._take_over_deliveries(frontend, own_too=True)
            self._background.spawn(self._keep_deliveries(frontend))
        for intake in await self.store.intake.pending(holder=frontend):
            self._resume_intake(intake)
        interval = timedelta(minutes=self.settings.storage.cleanup_interval_minutes)
        self._background.spawn(self.store.upkeep.run_cleanup_every(interval))
        if self.metrics is not None:
            self._background.spawn(self._sample_queue_length(self.metrics))

    async def _sample_queue_length(self, metrics: Metrics) -> None:
        """Keep the queue gauges current (the backends know nothing of metrics)."""
        fleet = self.backend if isinstance(self.backend, FleetBackend) else None
        if fleet is not None:
            fleet.on_retry = metrics.retried
        while True:
            metrics.set_queue_length(self.backend.queue_length)
            if fleet is not None:
                try:
                    metrics.set_queue_jobs(await fleet.queue_depth())
                    metrics.set_workers_alive(await fleet.workers_alive())
                except Exception as error:  # the database may be restarting
                    logger.debug("sampling the queue failed: %s", error)
            await asyncio.sleep(QUEUE_SAMPLE_SECONDS)

    def _register_readiness(self, readiness: Readiness) -> None:
        async def backend_started() -> bool:
            return self._backend_started

        if isinstance(self.backend, FleetBackend):
            readiness.register("backend_started", backend_started)
            for name, check in self.backend.readiness_checks().items():
                readiness.register(name, check)
        else:
            readiness.register("model_loaded", backend_started)
        readiness.register("database", self.store.ping)
        for adapter in self.adapters:
            readiness.register(adapter.platform, adapter.is_connected)

    async def _take_over_deliveries(self, frontend: str, *, own_too: bool = False) -> None:
        for adapter in self.adapters:
            for recovered in await self.store.deliveries.to_take_over(
                adapter.platform, holder=frontend, own_too=own_too
            ):
                if recovered.job.id not in self._resuming:
                    self._resume(recovered)

    async def _keep_deliveries(self, frontend: str) -> None:
        """Renew this front-end's delivery leases and adopt songs of front-ends gone
        silent, every third of a lease."""
        lease = self.flow.config.delivery_lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            try:
                await self.store.deliveries.renew(frontend, lease)
                await self._take_over_deliveries(frontend)
            except Exception as error:  # the database may be restarting: try again later
                logger.warning("renewing deliveries failed: %s", error)

    def _adapter_for(self, platform: str) -> ChatAdapter | None:
        return next((a for a in self.adapters if a.platform == platform), None)

    def _resume(self, recovered: RecoveredJob) -> None:
        """Requeue a job a previous process left, or tell its user it was lost."""
        adapter = self._adapter_for(recovered.user.platform)
        replier = (
            adapter.replier_for(recovered.job.chat, recovered.user.platform_user_id)
            if adapter is not None
            else None
        )
        logger.info(
            "recovered job %s of %s: %s",
            recovered.job.id,
            recovered.user.ref,
            recovered.action.value,
        )
        if adapter is None or replier is None:
            return
        user = _chat_user(adapter, recovered.user)
        if recovered.action is RecoveryAction.REQUEUED:
            self._background.spawn(self._run_resumed(user, recovered, replier))
        else:
            self._background.spawn(replier.send_text(messages.LOST_IN_RESTART))

    def _resume_intake(self, intake: IntakeRecord) -> None:
        """Fetch again a song a previous process accepted and had no job for, or tell its
        user it was lost (``ChatFlow.resume_song``)."""
        adapter = self._adapter_for(intake.user.platform)
        replier = (
            adapter.replier_for(intake.chat, intake.user.platform_user_id)
            if adapter is not None
            else None
        )
        if adapter is None or replier is None:  # kept until its platform is back
            logger.warning("accepted song %s of %s: no way to answer", intake.id, intake.user.ref)
            return
        link = link_of_ref(intake.file_ref)  # fetched again from the link by the flow
        stream = adapter.download_again(intake.file_ref) if link is None else None
        self._background.spawn(
            self.flow.resume_song(_chat_user(adapter, intake.user), intake, replier, stream)
        )

    async def _run_resumed(self, user: ChatUser, recovered: RecoveredJob, replier: Replier) -> None:
        self._resuming.add(recovered.job.id)
        try:
            await self.flow.run_job(user, recovered.job, replier)
        finally:
            self._resuming.discard(recovered.job.id)

    async def stop(self, grace_seconds: float) -> None:
        for adapter in self.adapters:
            await adapter.stop_receiving()
        not_done = await self.backend.shutdown(grace_seconds)
        if not_done:
            logger.warning("%d job(s) were not finished before shutdown", len(not_done))
        for adapter in self.adapters:
            with contextlib.suppress(Exception):
                await adapter.wait_for_jobs()
        await self._background.cancel_all()
        for adapter in self.adapters:
            await adapter.stop()
        if self.links is not None:
            await self.links.__aexit__(None, None, None)
        await self.store.close()
        if self.health is not None:
            await self.health.stop()


def _chat_user(adapter: ChatAdapter, user: UserRecord) -> ChatUser:
    """A stored user as the flow takes it, platform typed as the adapter types it."""
    return ChatUser(adapter.platform, user.platform_user_id, user.display_name)


async def build_app(
    settings: Settings,
    *,
    backend: SeparationBackend,
    adapter_factories: list[AdapterFactory],
    config: FlowConfig | None = None,
    metrics: Metrics | None = None,
) -> BotApp:
    """Open the store and wire the flow, the adapters and the health server (not started)."""
    store = await open_store(settings)
    metrics = metrics if metrics is not None else Metrics()
    links = LinkService(links_settings(settings)) if settings.links.enabled else None
    flow = ChatFlow(
        store=store,
        backend=backend,
        config=config or flow_config(settings),
        metrics=metrics,
        rate_limiter=RateLimiter.from_settings(settings.rate_limit),
        render_limiter=RateLimiter(
            requests_per_minute=settings.rate_limit.renders_per_minute,
            burst=settings.rate_limit.render_burst,
        ),
        render_allowance=RenderAllowance.from_settings(settings.rate_limit),
        video_limiter=KaraokeVideos.per_hour_limiter(settings.video.videos_per_hour),
        lyrics_service=lyrics_service(settings),
        links=links,
    )
    adapters = [factory(settings, flow) for factory in adapter_factories]
    health = HealthServer(settings.health, metrics) if settings.health.enabled else None
    return BotApp(
        settings=settings,
        store=store,
        backend=backend,
        flow=flow,
        adapters=adapters,
        metrics=metrics,
        health=health,
        links=links,
    )


async def run_until_stopped(app: BotApp, stop: asyncio.Event, *, grace_seconds: float) -> None:
    """Start ``app``, wait for ``stop``, then stop gracefully (also when starting failed).

    ``stop`` also ends a start that is still retrying an unreachable platform, so a
    SIGTERM is obeyed at once rather than after the retry budget.
    """
    starting = asyncio.create_task(app.start())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            logger.info("stopped before the bot was up")
        starting.cancel()  # no-op when it has finished
        await starting  # a start error, or CancelledError when stopped while starting
    except BaseException as exc:
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await app.stop(0)
        if isinstance(exc, asyncio.CancelledError) and starting.cancelled() and stop.is_set():
            return
        raise
    finally:
        stopping.cancel()
    logger.info("karaoke-bot running; Ctrl-C or SIGTERM stops it gracefully")
    await stop.wait()
    logger.info("stopping: finishing running jobs (up to %.0f s)", grace_seconds)
    await app.stop(grace_seconds)


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
