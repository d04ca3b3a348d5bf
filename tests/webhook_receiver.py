"""A local Slack-style incoming webhook for the tests: records every JSON body it is sent."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from wfops.pgcluster import free_port


@dataclass
class Webhook:
    """A local Slack-style incoming webhook: records every JSON body; answers `status`."""

    port: int
    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T000/B000/hook"

    def events(self) -> list[str]:
        return [body["wfops"]["event"] for body in self.received]


def start_webhook() -> tuple[Webhook, ThreadingHTTPServer]:
    hook = Webhook(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hook.raw.append(body)
            hook.received.append(json.loads(body))
            self.send_response(hook.status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", hook.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return hook, server
