"""A HuggingFace hub on 127.0.0.1 that serves one folder of files, for tests of the
first-run download without the internet.

It answers ``HEAD``/``GET /<namespace>/<repo>/resolve/<revision>/<file>`` as the hub does
for a small file stored in git (no Xet, no redirect): ``ETag``, ``X-Repo-Commit`` and
``Content-Length``, and 404 with ``X-Error-Code: EntryNotFound`` for a file it lacks.
Point ``HF_ENDPOINT`` at ``endpoint`` before huggingface_hub is imported (a subprocess)
or patch ``huggingface_hub.constants.ENDPOINT`` in process.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "1" * 40


class FakeHub:
    """Serves ``files`` (a folder) as the hub repository ``repo_id``; records requests."""

    def __init__(self, repo_id: str, files: Path) -> None:
        self.repo_id = repo_id
        self.files = files
        self.requests: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def downloads(self) -> list[str]:
        """The repository's file names fetched with GET, in order (huggingface_hub also
        asks the hub for other things, such as a user-agent registry: 404 here)."""
        prefix = f"/{self.repo_id}/resolve/"
        return [
            path.rsplit("/", 1)[-1]
            for method, path in self.requests
            if method == "GET" and path.startswith(prefix)
        ]

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _file_for(self, path: str) -> Path | None:
        prefix = f"/{self.repo_id}/resolve/"
        if not path.startswith(prefix):
            return None
        _revision, _, name = path[len(prefix) :].partition("/")
        candidate = self.files / name
        return candidate if name and "/" not in name and candidate.is_file() else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, with_body: bool) -> None:
                path = self.path.split("?", 1)[0]
                hub.requests.append((self.command, path))
                found = hub._file_for(path)
                if found is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = found.read_bytes()
                self.send_response(200)
                self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def do_HEAD(self) -> None:  # http.server's naming
                self._answer(with_body=False)

            def do_GET(self) -> None:
                self._answer(with_body=True)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: pytest shows what the test asserts, not every request."""

        return Handler
