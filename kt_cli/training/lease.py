"""Who is training a run: a lease in the store, so two processes never train one run at once.

``kt train`` records its host, process id and a heartbeat (renewed with every checkpoint) on the run
while it trains, and clears them when it stops. Another ``kt train`` (or ``kt runs --delete``) of the same
run refuses while the holder is alive: on this host, while its process exists; from another host sharing
the store, while its heartbeat is younger than ``STALE_SECONDS``. A holder that died (killed, machine
rebooted) leaves a stale lease, which the next command takes over: its run resumes from its checkpoint.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime, timezone
from typing import Any

STALE_SECONDS = 600.0


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None where /proc has no answer; with the
    pid it names one process, so a pid reused after a restart is not mistaken for the holder."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def mine() -> dict[str, Any]:
    """A lease for this process, stamped now."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": _started(pid), "beat": time.time()}


def alive(owner: dict[str, Any] | None) -> bool:
    """Whether the lease's holder is (still) another live process."""
    if not owner:
        return False
    if owner.get("host") == socket.gethostname():
        pid = int(owner.get("pid", 0))
        if pid <= 0 or pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by another user
            return True
        recorded, now = owner.get("started"), _started(pid)
        return recorded is None or now is None or recorded == now
    return time.time() - float(owner.get("beat", 0.0)) < STALE_SECONDS


def describe(owner: dict[str, Any]) -> str:
    """``process 1234 on host h (last heartbeat 12:00:05 UTC)``."""
    beat = datetime.fromtimestamp(float(owner.get("beat", 0.0)), timezone.utc).strftime("%H:%M:%S UTC")
    return f"process {owner.get('pid')} on host {owner.get('host')} (last heartbeat {beat})"
