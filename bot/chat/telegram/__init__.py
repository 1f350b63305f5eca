"""The Telegram adapter: python-telegram-bot updates in, ``ChatFlow`` calls out."""
