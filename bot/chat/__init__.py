"""The chat: what the bot says and does with a song, and each platform that carries it.

``conversation/`` is the flow every platform shares (refusals, progress, delivery,
karaoke controls, every sentence a user reads) and the one adapter base;
``telegram/`` and ``discord/`` each turn their platform's updates into calls on it.
The conversation knows no platform, the platforms know nothing of each other, and
neither knows which backend (the local pool or the fleet) runs the songs.
"""
