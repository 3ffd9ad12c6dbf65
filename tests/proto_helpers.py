"""Helpers for protocol tests: `memorch serve` as a subprocess that says where it listens."""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
from pathlib import Path

from .mcp_helpers import free_port, memorch_command, server_env


class Served:
    """A `memorch serve` process whose stderr is read line by line (and kept)."""

    def __init__(self, args: list[str], data_dir: Path, **env: str) -> None:
        self.proc = subprocess.Popen(
            [*memorch_command(), "serve", *args],
            env=server_env(data_dir, **env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def wait_for_line(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError(f"server exited ({self.proc.wait()}): {''.join(self.stderr_lines)}")
            if match := re.search(pattern, line):
                return match
        raise RuntimeError(f"no line matching {pattern!r} within {timeout}s: {''.join(self.stderr_lines)}")

    def stop(self) -> str:
        """Stop the server; what it wrote on stdout. Its stderr stays the drain thread's to read
        to the end (``communicate`` would read and close it under that thread)."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._drainer.join(timeout=10)
        assert self.proc.stdout is not None
        return self.proc.stdout.read() or ""


def serve_http(transport: str, data_dir: Path, **env: str) -> tuple[Served, int, str]:
    """Start an HTTP transport on a free port; the endpoint URL is the one it announced."""
    port = free_port()
    served = Served(["--transport", transport, "--port", str(port)], data_dir, **env)
    url = served.wait_for_line(r"listening on (http://\S+)").group(1)
    return served, port, url
