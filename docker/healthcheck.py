#!/usr/bin/env python3
"""Docker HEALTHCHECK for karaoke-bot: GET /healthz on the bot's own health server.

Standard library only, on purpose: Docker runs this every 30 seconds, and importing the
bot (torch included) would cost two seconds of CPU each time. The port comes from
KARAOKE_HEALTH_PORT, the same variable that sets the server's port (an environment
override wins over config.toml), so the two cannot disagree.

Exit 0 when healthy, 1 otherwise, with one line saying why.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("KARAOKE_HEALTH_PORT") or "9108"
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            print(f"{url}: {response.status} {response.read(200).decode(errors='replace')}")
            return 0
    except urllib.error.HTTPError as exc:
        print(f"{url}: {exc.code} {exc.read(200).decode(errors='replace')}")
    except (OSError, ValueError) as exc:
        print(f"{url}: {exc}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
