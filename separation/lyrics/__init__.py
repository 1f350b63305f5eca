"""The words of a song: parsed from LRC or plain text, read from tags, fetched from a
synced-lyrics service, aligned to the vocals stem. Torch-free, so the chat flow and the
command line can check lyrics before anything heavy is loaded."""
