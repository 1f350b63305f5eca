"""The Discord adapter: discord.py events and ``/karaoke`` in, ``ChatFlow`` calls out."""
