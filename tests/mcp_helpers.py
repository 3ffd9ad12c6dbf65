"""Helpers for MCP tests: free ports, launching `memorch serve` as a subprocess."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def memorch_command() -> list[str]:
    script = Path(sys.executable).parent / "memorch"
    return [str(script)] if script.exists() else [shutil.which("memorch") or "memorch"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORCH_")}
    env.update({"MEMORCH_DATA_DIR": str(data_dir), "MEMORCH_GRAPH": "off", **extra})
    # The default tokens file lives in the user's config directory: one beside the data, never
    # this machine's own (conftest gives in-process tests theirs).
    env.setdefault("XDG_CONFIG_HOME", str(data_dir.parent / (data_dir.name + ".config-home")))
    return env


def server_log(data_dir: Path) -> Path:
    """Where ``start_http_server`` writes the server's stderr."""
    return data_dir.with_name(data_dir.name + ".stderr.log")


def start_http_server(transport: str, data_dir: Path, *args: str, **env: str) -> tuple[subprocess.Popen, int]:
    """``memorch serve`` on 127.0.0.1 and a free port (``args``: more ``serve`` options), once it listens."""
    port = free_port()
    # The server's log goes to a file beside its data directory: a pipe nobody reads would block
    # a server that logs more than the pipe holds (64 kB), and the file is there to read after.
    log = server_log(data_dir)
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            [*memorch_command(), "serve", "--transport", transport, "--port", str(port), *args],
            env=server_env(data_dir, **env),
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start listening")


def stdio_server(data_dir: Path, stderr: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    """``memorch serve`` on stdio over ``data_dir``, its pipes text, for tests that speak raw JSON-RPC."""
    return subprocess.Popen(
        [*memorch_command(), "serve"],
        env=server_env(data_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        encoding="utf-8",
    )
