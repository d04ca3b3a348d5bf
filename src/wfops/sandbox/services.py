"""The sandbox's stand-ins as one background process: the WeddingFlo app and Dokploy's API, on loopback.

`python -m wfops.sandbox.services SANDBOX_DIR` (started by `wfops sandbox up`, stopped by `down`) reads the
sandbox's 0600 files, listens on two free ports, and writes services.json (ports, urls, ids, pid).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

from wfops.pgcluster import free_port
from wfops.sandbox.app_server import AppServer, AppState, Version
from wfops.sandbox.dokploy_standin import DokployServer, DokployState

APPLICATION_ID = "weddingflo-app-sandbox"
COMPOSE_ID = "weddingflo-compose-sandbox"


def main(argv: list[str]) -> int:
    base = Path(argv[1])
    app_port, api_port = free_port(), free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    app_state = AppState(
        database_url=(base / "app_database_url").read_text().strip(),
        base_url=app_url,
        cookie_secret=(base / "app_secret").read_text().strip(),
        version=Version(os.environ.get("WFOPS_SANDBOX_APP_COMMIT", "previous")),
        log_path=str(base / "app.log"),
    )
    api_state = DokployState(
        api_key=(base / "dokploy_api_key").read_text().strip(),
        application_id=APPLICATION_ID,
        compose_id=COMPOSE_ID,
        app=app_state,
        source=app_state.version,
        # An application without a rollback registry: no deployment ever gets a rollbackId (the redeploy fallback).
        rollback_active=os.environ.get("WFOPS_SANDBOX_DOKPLOY_ROLLBACKS", "1") != "0",
    )
    api_state.seed_running_release()
    app, api = AppServer(app_state, app_port), DokployServer(api_state, api_port)
    app.start()
    api.start()
    described = {
        "pid": os.getpid(),
        "app_url": app_url,
        "dokploy_url": f"http://127.0.0.1:{api_port}",
        "application_id": APPLICATION_ID,
        "compose_id": COMPOSE_ID,
    }
    temporary = base / ".services.json.tmp"
    temporary.write_text(json.dumps(described))
    temporary.replace(base / "services.json")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    api.stop()
    app.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
