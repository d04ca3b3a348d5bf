"""A threaded HTTP server on a loopback port whose handler class carries the stand-in's state."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer:
    """Serves `handler` (with `state` bound as a class attribute) on 127.0.0.1:port, in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], state: Any, port: int) -> None:
        bound = type(handler.__name__, (handler,), {"state": state})
        self.state = state
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), bound)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
