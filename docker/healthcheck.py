"""The image's HEALTHCHECK: exit 0 when ``/healthz`` on this container's port answers 200.

Standard library only (it runs with the system Python, outside the server's environment).
"""

import os
import sys
import urllib.request

port = os.environ.get("CURBE_PORT", "8000")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # any failure is "unhealthy"; the reason goes to `docker inspect`
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
