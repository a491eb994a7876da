"""The schema registry of `keystream up`, run as a child process next to the broker.

A child rather than a task in the broker's event loop: the registry blocks in its Kafka client
while it reads `_schemas`, installs its own signal handlers, and can only start once the broker
listens. Ctrl-C reaches both (same process group); SIGTERM to `up` stops the broker, then `up`
stops the registry. On Linux the child also gets SIGTERM if `up` dies without cleaning up
(kill -9), so no orphan keeps the registry port.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import threading
from pathlib import Path

log = logging.getLogger("keystream.up")
STOP_TIMEOUT_S = 20.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec (Linux only): SIGTERM when the parent thread exits."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class RegistryChild:
    """`start()` once the broker listens, `stop()` after it returned; `stop()` gives the exit code."""

    def __init__(self, config: Path):
        self.config = config
        self.proc: subprocess.Popen | None = None
        self.stopping = False

    def start(self) -> None:
        cmd = [sys.executable, "-m", "keystream", "registry", "serve", "--config", str(self.config)]
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=preexec)
        log.info("schema registry started (pid %d) with %s", self.proc.pid, self.config)
        threading.Thread(target=self._watch, name="keystream-up-registry", daemon=True).start()

    def _watch(self) -> None:
        code = self.proc.wait()
        if code != 0 and not self.stopping:  # 0: it was asked to stop (Ctrl-C reaches it first)
            log.warning("the schema registry exited with code %d; the broker keeps running (see its log above)", code)

    def stop(self) -> int:
        """SIGTERM (a no-op if Ctrl-C already stopped it), wait, SIGKILL as a last resort."""
        if self.proc is None:
            return 0
        self.stopping = True
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("the schema registry did not stop within %.0f s; killing it", STOP_TIMEOUT_S)
            self.proc.kill()
            return self.proc.wait()
