"""The in-process worker pool: many users' songs in, separated files out, fairly.

A submitted song goes through these steps, each off the event loop where it blocks:

1. *hash*: the SHA-256 of the input, which with the model and options is the cache key;
   a cached result is returned at once, and a song already being separated for someone
   else is joined rather than run twice (single-flight, :mod:`separation.pool.flights`);
2. *queue*: jobs wait for one of ``max_running_jobs`` slots, handed out round-robin
   between users (:mod:`separation.pool.slots`, ``separation.pool.scheduler``);
3. *decode* into a raw file in a private job folder, with the header the caller already
   read (never probing twice); the true length is published (``Decoded``) and the MP3
   bitrate is fitted to the caller's size budget here, before any model time is spent;
4. *separate*: the song's segments join those of the other running songs in shared
   forward passes (``separation.model.batching``, ``separation.model.workers``); an out-of-memory
   error shrinks the batch, then the segment;
5. *render* the outputs straight into a cache staging folder and commit the entry; each
   caller gets the entry pinned (``JobResult.release`` unpins it once delivered).

Steps 3 to 5 are the one-song chain of ``separation.pipeline``, run with the pool's
model step and output folder (:mod:`separation.pool.processing`). Job folders are owned
by a lock, so those a killed process left behind are swept at start and with every
cache sweep (:mod:`separation.pool.sweeping`). :mod:`separation.pool.lifecycle` holds
the pool itself (start, submit, shutdown) and wires the parts together.

Every intermediate array stays on disk (the engine's accumulators, the decoded input,
streamed encoders), so memory does not grow with song length. The pool knows nothing
of chats: callers talk to it through :class:`~separation.jobs.SeparationBackend`.
"""

from separation.pool.config import ModelLoader, PoolConfig
from separation.pool.lifecycle import SeparationPool

__all__ = ["ModelLoader", "PoolConfig", "SeparationPool"]
