"""JSON logs for collectors: one object per line, ``extra`` fields included."""

from __future__ import annotations

import json
import logging

from bot.ops.logging_setup import configure_logging


def test_json_logging_writes_one_object_per_line_with_extra_fields(capsys):
    configure_logging("INFO", json_lines=True)
    log = logging.getLogger("karaoke.test")
    log.info("job %s queued", "j-1", extra={"job_id": "j-1", "user": "telegram:42"})
    log.debug("not shown at INFO", extra={"job_id": "j-1"})
    try:
        raise ValueError("bad\nmulti-line\nerror")
    except ValueError:
        log.exception("job failed", extra={"job_id": "j-2", "user": "discord:7"})

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2  # the traceback stays inside its line
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "job j-1 queued"
    assert first["level"] == "INFO" and first["logger"] == "karaoke.test"
    assert (first["job_id"], first["user"]) == ("j-1", "telegram:42")
    assert first["time"].endswith("+00:00")
    assert (second["level"], second["job_id"], second["user"]) == ("ERROR", "j-2", "discord:7")
    assert "ValueError: bad" in second["exception"]
