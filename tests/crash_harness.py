"""Kill -9 at chosen points of the write path, in child processes, then look at what survived.

``python -m tests.crash_harness`` is a zygote: it imports the heavy modules once (LiteLLM alone
takes seconds), then reads case specs (one JSON object per line) from stdin and runs each in a
forked *runner*, at most ``--parallel`` at a time. A runner forks the *victim*, which arms one
kill point (a wrapper around a real function that sends itself SIGKILL before, after or during
its Nth call) and runs a workload through ``AsyncMemory``, logging every operation it begins
and every result it is given to an ack file (flushed and fsync'd). When the victim is dead, the
runner opens the data directory afresh (the restart) and writes what the stores hold to a state
file; the test (``tests/test_crash_points.py``) judges it against the acks (``crash_check.py``).

The zygote never opens a store, so nothing it forks inherits an open database or its threads;
LanceDB re-creates its event-loop thread in a forked child (its own fork hook).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

WATCH_POLL_S = 0.0002  # how often a "during" watcher looks for the write it waits for
DURING_ATTEMPTS = 4  # runs of a "during" case whose watcher lost the race to the write (then judged)
CHILD_TIMEOUT_S = 240.0  # a victim or restart still running by then has hung (reported as such)


@dataclass(frozen=True)
class KillPoint:
    """SIGKILL at call ``nth`` of ``target`` (``module:Class.attr`` or ``module:function``):
    ``before`` it runs, ``after`` it returns, or ``during``: as soon as a file whose name starts
    with ``watch_prefix`` appears or changes size under ``watch_dir`` (relative to the data
    directory) while it runs; after it returns if that never happened. ``child``: like ``during``,
    but what is killed is the graph's engine process (``GraphProcess._child``, the call's
    ``self``), and the victim lives on. With ``method``, only calls whose first argument after
    ``self`` is ``method`` count (``GraphProcess._call("apply", ...)``)."""

    target: str
    when: str
    nth: int = 1
    watch_dir: str = ""
    watch_prefix: str = ""
    method: str = ""


@dataclass(frozen=True)
class Case:
    id: str
    workload: str
    kill: KillPoint
    data_dir: str
    llm_url: str
    infer: bool

    @property
    def ack_path(self) -> Path:
        return Path(self.data_dir).parent / "acks.jsonl"

    @property
    def state_path(self) -> Path:
        return Path(self.data_dir).parent / "state.json"

    @property
    def marker_path(self) -> Path:
        return Path(self.data_dir).parent / "killed_at.txt"

    @property
    def error_path(self) -> Path:
        return Path(self.data_dir).parent / "error.txt"

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "kill": asdict(self.kill)})

    @staticmethod
    def from_json(line: str) -> Case:
        raw = json.loads(line)
        return Case(**{**raw, "kill": KillPoint(**raw["kill"])})


class AckLog:
    """Append-only JSON lines, each flushed and fsync'd before the workload goes on."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._numbers = itertools.count(1)

    def _write(self, entry: dict[str, Any]) -> None:
        os.write(self._fd, (json.dumps(entry) + "\n").encode())
        os.fsync(self._fd)

    def begin(self, op: str, **info: Any) -> int:
        number = next(self._numbers)
        self._write({"begin": op, "n": number, **info})
        return number

    def done(self, number: int, op: str, result: Any, **info: Any) -> None:
        self._write({"done": op, "n": number, "result": result, **info})


# -- the kill point ---------------------------------------------------------------------------


class Killer:
    def __init__(self, case: Case) -> None:
        self.case = case
        self._marker = os.open(case.marker_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def die(self, where: str, pid: int | None = None) -> None:
        # The page cache outlives the process: no fsync needed for the test to read this.
        os.write(self._marker, where.encode())
        os.kill(os.getpid() if pid is None else pid, signal.SIGKILL)

    def watch(self, done: threading.Event, victim: Any = None) -> None:
        """Kill as soon as the watched files change (a data file written mid-call): this
        process, or the graph engine's child process of ``victim`` (a ``GraphProcess``)."""
        folder = Path(self.case.data_dir) / self.case.kill.watch_dir
        prefix = self.case.kill.watch_prefix

        def listing() -> set[tuple[str, int]]:
            try:
                return {(e.name, e.stat().st_size) for e in os.scandir(folder) if e.name.startswith(prefix)}
            except FileNotFoundError:  # the folder itself may be created by the call
                return set()

        before = listing()

        def poll() -> None:
            while not done.is_set():
                if listing() != before:
                    if victim is None:
                        self.die("during")
                    self.die("child", victim._child.pid)
                    return
                time.sleep(WATCH_POLL_S)

        threading.Thread(target=poll, daemon=True, name="crash-watcher").start()

    def arm(self) -> None:
        point = self.case.kill
        module_name, _, path = point.target.partition(":")
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for part in parents:
            owner = getattr(owner, part)
        raw = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        static = isinstance(raw, staticmethod)
        original = raw.__func__ if static else raw
        calls = itertools.count(1)
        killer = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if point.method and (len(args) < 2 or args[1] != point.method):
                return original(*args, **kwargs)
            if next(calls) != point.nth:
                return original(*args, **kwargs)
            if point.when == "before":
                killer.die("before")
            done = threading.Event()
            if point.when in ("during", "child"):
                killer.watch(done, args[0] if point.when == "child" else None)
            try:
                result = original(*args, **kwargs)
            finally:
                done.set()
            if point.when == "child":  # the engine was killed, or the call ended first
                return result
            killer.die("after")
            return result

        setattr(owner, name, staticmethod(wrapper) if static else wrapper)


# -- runner, victim and the restart -----------------------------------------------------------


def run_victim(case: Case) -> None:
    from .crash_workloads import WORKLOADS

    try:
        Killer(case).arm()
        asyncio.run(WORKLOADS[case.workload](case, AckLog(case.ack_path)))
    except BaseException:  # noqa: BLE001 - a harness failure is reported through the error file
        case.error_path.write_text(traceback.format_exc())
        os._exit(3)
    os._exit(0)  # the workload ended without reaching the kill point: the test says so


def run_restart(case: Case) -> None:
    """Open the data directory as a new process would, let it settle, and dump what it holds."""
    from .crash_state import collect

    try:
        state = asyncio.run(collect(case))
        case.state_path.write_text(json.dumps(state))
    except BaseException:  # noqa: BLE001 - reported through the error file, judged by the test
        case.error_path.write_text(traceback.format_exc())
        os._exit(4)
    os._exit(0)


def _wait(pid: int, timeout_s: float) -> int | str:
    """The child's exit code (negative: the signal that ended it), or "hung" (then killed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hung"
        time.sleep(0.01)


def _fork(target: Any, case: Case) -> int:
    pid = os.fork()
    if pid == 0:
        target(case)  # never returns: each ends with os._exit
    return pid


def _missed_the_write(case: Case) -> bool:
    """A "during" point whose watcher did not run before the write ended (busy cores: the
    call can write its file and return within one of the watcher's turns), so the victim
    was killed after the call instead: a lost race of the harness, not a finding."""
    return case.kill.when == "during" and case.marker_path.exists() and case.marker_path.read_text() == "after"


def _clear(case: Case) -> None:
    shutil.rmtree(case.data_dir, ignore_errors=True)
    for path in (case.ack_path, case.state_path, case.marker_path, case.error_path):
        path.unlink(missing_ok=True)


def run_case(case: Case, template: Path) -> dict[str, Any]:
    attempt = 0
    while True:
        attempt += 1
        _clear(case)
        started = time.monotonic()
        shutil.copytree(template, case.data_dir)
        victim = _wait(_fork(run_victim, case), CHILD_TIMEOUT_S)
        if victim == -signal.SIGKILL and _missed_the_write(case) and attempt < DURING_ATTEMPTS:
            continue  # again from the template; the last attempt is judged whatever it hit
        killed = time.monotonic()
        restart = _wait(_fork(run_restart, case), CHILD_TIMEOUT_S)
        return {
            "id": case.id,
            "victim": victim,
            "restart": restart,
            "attempts": attempt,
            "victim_s": round(killed - started, 3),
            "restart_s": round(time.monotonic() - killed, 3),
        }


# Imported by LiteLLM on its first completion (an HTTP client stack, its proxy types): seconds
# that every inferring victim would otherwise spend again. Optional: only a speed-up.
FIRST_CALL_MODULES = (
    "httpcore",
    "h11",
    "h2.connection",
    "litellm.llms.openai.openai",
    "litellm.proxy._types",
    "litellm.proxy.openai_files_endpoints.common_utils",
    "litellm.litellm_core_utils.prompt_templates.file_id_utils",
    "litellm.integrations.prometheus_services",
    "litellm._service_logger",
)


def preload() -> None:
    """Import what every victim and restart needs, once, before any fork."""
    warnings.filterwarnings("ignore", message=".*fork.*")
    from memorch.models._llm import import_litellm

    import_litellm()
    for name in (
        "memorch.api._async_memory",
        "memorch.engine._store",
        "memorch.inference._plan",
        "memorch.maintenance._bulk",
        "memorch.maintenance._reindex",
        "memorch.importers",
        "memorch.retrieval._search",
        "memorch.retrieval._graph",
        "memorch.domain._redaction",
        "memorch.storage.history",
        "memorch.storage.vectors",
        "memorch.storage.vector_maintenance",
        "memorch.storage.graph",
        "memorch.storage.graph_process",
        "memorch.storage.rebuild",
        "memorch.inference._pending",
        "memorch.inference._add",
        "lancedb",
        "lancedb.index",
        "lancedb.query",
        "kuzu",
        "numpy.ma",
        "tests.crash_workloads",
        "tests.crash_state",
    ):
        importlib.import_module(name)
    for name in FIRST_CALL_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    # The search's reference vectors and ceilings (``retrieval._calibration``) are computed once
    # per process: here, for every fork. Tokenizers must not start its thread pool before a fork.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from memorch.models._embeddings import LocalEmbedder
    from memorch.retrieval._calibration import reference

    reference(LocalEmbedder())


def make_template(folder: Path) -> Path:
    """A data directory whose stores exist but hold nothing (the LanceDB table with its indexes,
    the ledger with the embedder recorded, Kuzu's schema), made in a child so this process never
    opens a store. Each case starts from a copy instead of paying for the creation."""
    from .crash_workloads import template

    data = folder / "data"
    pid = os.fork()
    if pid == 0:
        try:
            asyncio.run(template(str(data)))
        except BaseException:  # noqa: BLE001 - the parent reports it
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f"making the template data directory failed (status {status})")
    return data


def serve(parallel: int) -> None:
    """Run the cases read from stdin, ``parallel`` at a time; print one result line per case."""
    preload()
    cases = [Case.from_json(line) for line in sys.stdin if line.strip()]
    folder = Path(tempfile.mkdtemp(prefix="memorch-crash-"))
    template = make_template(folder)
    running: dict[int, Case] = {}
    read_fd, write_fd = os.pipe()
    while cases or running:
        while cases and len(running) < parallel:
            case = cases.pop(0)
            pid = os.fork()
            if pid == 0:  # the runner: it must never return into this loop
                os.close(read_fd)
                try:
                    result = run_case(case, template)
                    os.write(write_fd, (json.dumps(result) + "\n").encode())
                except BaseException:  # noqa: BLE001 - the test reports the missing result
                    traceback.print_exc()
                    os._exit(1)
                os._exit(0)
            running[pid] = case
        pid, _ = os.wait()
        running.pop(pid, None)
    os.close(write_fd)
    with os.fdopen(read_fd) as results:  # a pipe holds 64 kB: hundreds of result lines
        sys.stdout.write(results.read())
    sys.stdout.flush()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
