"""The chat flow every platform shares: what the bot says and does with a song.

Platform adapters (``bot.chat.telegram``, ``bot.chat.discord``) turn their updates into calls on
``ChatFlow`` and implement ``Replier``; nothing here knows a chat platform's API.
"""
