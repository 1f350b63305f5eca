"""The ``karaoke-bot`` command line: one module per command, the admin commands included.

``main`` builds the parser and imports each command's heavy dependencies (torch, the
chat libraries) only when that command runs, so ``--help`` and ``check`` stay fast.
"""
