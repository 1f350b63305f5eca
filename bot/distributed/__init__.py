"""The distributed backend: front-ends and GPU workers on many hosts.

``queue.py`` opens the procrastinate queue on the store's PostgreSQL, ``wire.py`` is what
crosses between hosts (as JSON), ``frontend.py`` is the ``SeparationBackend`` a front-end
uses (letting songs in: ``admission.py``; following them: ``following.py``; fetching
their results: ``downloads.py``; what operators see: ``fleet_status.py``),
``worker.py`` is ``karaoke-bot worker``. Audio travels through ``bot.distributed.blobs``;
attempts and outcomes are fenced in ``bot.distributed.runs``.
"""
