"""Runs each run's loop on a Ray actor, the driver's recorder staying the store's one writer.

The run manager (runs/manager.py) keeps one driver thread per live run, as for local runs; with
`executor="ray"` that thread does not compute, it pumps. `RayBackend.remote(loop, ...)` turns a
run's loop (a picklable closure: config in, `search` or `retrain` inside) into a loop of the same
signature that

- starts a `RunWorker` actor with the run's resource request (its CPU threads; one GPU when
  the config asks for cuda) and hands it the loop and, on resume, the run folder's checkpoint;
- polls the actor (`RunWorker.poll`, a long poll of up to POLL_S seconds) for the events its loop
  emitted, passing the run's control flags (pause / stop) along with each poll;
- writes the checkpoint bytes that come with each epoch into the driver's run folder *before*
  handing the epoch to the recorder, so a cluster without a shared filesystem can resume, and
  the store never records an epoch its folder cannot continue from;
- turns a dead actor (its process killed, its node lost) into `WorkerGone("interrupted", ...)`.

A finished run's actor waits for the next run with the same resource request, as the local
executor's runs share one process: a fresh actor's process first imports torch and darts_engine
(seconds, benchmarks/ray_overhead.py). An idle actor whose request does not fit the next run is
let go, and `close` lets every idle one go.

Actors rather than tasks: a task cannot be told to pause or stop once it runs and hands back
nothing until it returns; an actor keeps the event buffer and the control flags between calls.
Rather than Ray Tune: Tune would bring a second scheduler, trial store and checkpoint layout
beside the run manager's; a sweep here is a list of ordinary runs (runs/sweep.py).

Ray is imported here and only here, lazily (`import_ray`), so the engine runs without it.
Ray Core reference: ray-project/ray, doc/source/ray-core/actors.rst (actor handles, `ray.kill`,
`RayActorError`) and doc/source/ray-core/handling-dependencies.rst (`py_modules`).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..events import EpochRecord, Event
from ..search import CHECKPOINT_NAME, SearchControl, StopSearch
from ..train.retrain import CHECKPOINT_NAME as RETRAIN_CHECKPOINT_NAME

INSTALL = 'pip install "ray[client]>=2.40,<3"'
# The files of a run folder a loop resumes from (search.py, train/retrain.py): shipped both ways.
CHECKPOINTS = (CHECKPOINT_NAME, RETRAIN_CHECKPOINT_NAME)
POLL_S = 0.25  # longest wait of one poll: the delay a pause or stop can take to reach the actor

Listener = Callable[[Event], None]
Loop = Callable[[Listener, SearchControl, Path, bool], Any]


class WorkerGone(RuntimeError):
    """The run's loop ended without a result: `state` is what the run becomes ("interrupted"
    when its worker died, "stopped" when a stop came while it still waited for a worker)."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state = state


def import_ray() -> Any:
    """The ray module; ConfigError naming `executor` and the install command without it."""
    try:
        import ray
    except ImportError as e:
        raise ConfigError(f"executor 'ray' needs the ray package, which is not installed here: "
                          f"{INSTALL} (or use executor 'local')", field="executor") from e
    return ray


def runtime_env() -> dict[str, Any]:
    """The Ray job's runtime environment: this darts_engine package travels with the job, so
    workers need only its dependencies (requirements.txt, with the driver's Python, torch and
    ray versions), not a copy of the project. Ray takes local folders only at the job level
    (`ray.init`), not per actor."""
    package = Path(__file__).resolve().parents[1]
    return {"py_modules": [str(package)], "excludes": ["__pycache__", "*.pyc"]}


def connect(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the Ray instance at `address` ("auto": the one `ray start` runs on this machine;
    "ray://host:10001": a remote cluster's client server), or start a local one with `num_cpus`
    CPUs (default: all cores) when `address` is None. A process already connected stays as it
    is (then its `ray.init` must have passed `runtime_env()`). Workers' logs stay in Ray's log
    folder rather than on this process's stderr."""
    ray = import_ray()
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise ConfigError(f"ray_address must be 'auto', 'host:port' or 'ray://host:port', got "
                          f"{address!r}", field="ray_address")
    if ray.is_initialized():
        return
    options: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                                   logging_level=logging.ERROR, runtime_env=runtime_env())
    try:
        if address is None:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, **options)
        else:
            ray.init(address=address.strip(), **options)
    except (ConnectionError, ValueError, RuntimeError) as e:
        if address is None:
            raise ConfigError(f"cannot start a local Ray instance: {e}", field="executor") from e
        raise ConfigError(f"cannot reach a Ray cluster at ray_address {address!r}: {e}. Start one "
                          "with `ray start --head` (then use 'auto' on that machine) or give the "
                          "head's 'ray://host:10001'", field="ray_address") from e


def wants_gpu(device: str) -> bool:
    """A run asks Ray for a GPU only when its config names cuda ("auto" gets none: Ray hides
    the GPUs from actors that did not ask, so it runs on the CPU)."""
    return device.startswith("cuda")


class RunWorker:
    """The actor: runs one loop at a time in a thread of its process and buffers what it
    emits. Every method returns quickly (poll waits at most `wait_s`), so one call at a time
    suffices."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._folder: Path | None = None

    def start(self, loop: Loop, files: dict[str, bytes], resume: bool, threads: int) -> int:
        """Write the shipped checkpoint files into a fresh folder, start the loop; returns this
        process's pid."""
        import torch

        self.close()
        self._items: list[tuple[Event, dict[str, bytes]]] = []
        self._outcome: Any = None        # the loop's result, or the exception it raised
        self._done = False
        self._control = SearchControl()
        self._folder = Path(tempfile.mkdtemp(prefix="dartboard-ray-"))
        torch.set_num_threads(threads)
        for name, data in files.items():
            (self._folder / name).write_bytes(data)
        threading.Thread(target=self._run, args=(loop, resume), name="dartboard-ray-run",
                         daemon=True).start()
        return os.getpid()

    def _run(self, loop: Loop, resume: bool) -> None:
        try:
            outcome = loop(self._on_event, self._control, self._folder, resume)
        except Exception as e:  # raised again on the driver, which marks the run failed
            outcome = e
        with self._cond:
            self._outcome, self._done = outcome, True
            self._cond.notify_all()

    def _on_event(self, ev: Event) -> None:
        # The loops save the checkpoint before they emit the epoch: ship it with the epoch.
        files = {}
        if isinstance(ev, EpochRecord):
            files = {name: (self._folder / name).read_bytes() for name in CHECKPOINTS
                     if (self._folder / name).is_file()}
        with self._cond:
            self._items.append((ev, files))
            self._cond.notify_all()

    def poll(self, paused: bool, stop: bool, wait_s: float
             ) -> tuple[list[tuple[Event, dict[str, bytes]]], bool, bool, Any]:
        """Apply the driver's control flags, wait up to wait_s for events; returns (events
        with their checkpoint files, held in a pause?, done?, the loop's outcome when done)."""
        if stop:
            self._control.stop()
        elif paused:
            self._control.pause()
        else:
            self._control.resume()
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._done, timeout=wait_s)
            items, self._items = self._items, []
            return items, self._control.wait_held(0), self._done, self._outcome

    def close(self) -> None:
        """Remove the last run's folder (its checkpoints are on the driver by now)."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


class RayBackend:
    """Connects once (`connect`) and runs loops as `RunWorker` actors."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.ray = import_ray()
        connect(address, num_cpus)
        self._actor_class = self.ray.remote(RunWorker)
        self._lock = threading.Lock()
        self._pids: dict[str, int] = {}
        self._idle: list[tuple[tuple[int, int], Any]] = []  # ((cpus, gpus), actor) between runs

    def worker_pid(self, run_id: str) -> int | None:
        """The pid of the process running the run (on its node), once started."""
        with self._lock:
            return self._pids.get(run_id)

    def remote(self, loop: Loop, run_id: str, threads: int, device: str) -> Loop:
        """`loop` run on a Ray actor, seen from the driver as a loop of the same signature.
        Raises WorkerGone when the actor dies or a stop comes before it starts."""
        def pumped(on_event: Listener, control: SearchControl, folder: Path, resume: bool) -> Any:
            files = {name: (folder / name).read_bytes() for name in CHECKPOINTS
                     if resume and (folder / name).is_file()}
            key = (threads, 1 if wants_gpu(device) else 0)
            actor, finished = self._acquire(key), []
            try:
                return self._pump(actor, actor.start.remote(loop, files, resume, threads),
                                  run_id, on_event, control, folder, finished)
            finally:  # only an actor whose loop has ended can take the next run
                self._release(actor, run_id, key if finished else None)
        return pumped

    def close(self) -> None:
        """Let the idle actors go (the run manager's shutdown)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for _, actor in idle:
            self.ray.kill(actor)

    def _acquire(self, key: tuple[int, int]) -> Any:
        with self._lock:
            for i, (k, actor) in enumerate(self._idle):
                if k == key:
                    del self._idle[i]
                    return actor
        self.close()  # idle actors of other requests would hold resources this one may need
        return self._actor_class.options(num_cpus=key[0], num_gpus=key[1], max_restarts=0,
                                         max_task_retries=0).remote()

    def _pump(self, actor: Any, started: Any, run_id: str, on_event: Listener,
              control: SearchControl, folder: Path, finished: list[bool]) -> Any:
        """Forward the actor's events until its loop ends (then `finished` gets a True)."""
        ray = self.ray
        try:
            while not ray.wait([started], timeout=POLL_S)[0]:  # waiting for a free worker
                if control.stop_requested:
                    raise WorkerGone("stopped", "stopped before a Ray worker was free to run it")
            with self._lock:
                self._pids[run_id] = ray.get(started)
            while True:
                items, held, done, outcome = ray.get(actor.poll.remote(
                    control.paused, control.stop_requested, POLL_S))
                for ev, files in items:
                    for name, data in files.items():
                        _write_atomically(folder / name, data)
                    on_event(ev)
                if done:
                    finished.append(True)
                    if isinstance(outcome, BaseException):
                        raise outcome
                    return outcome
                if held and control.paused:
                    _hold(control)
        except ray.exceptions.RayActorError as e:
            raise WorkerGone("interrupted", "the Ray worker running it died: "
                             + _first_line(e)) from e

    def _release(self, actor: Any, run_id: str, key: tuple[int, int] | None) -> None:
        """Back to the idle actors under `key`, or (None: dead, or never started) let go."""
        with self._lock:
            self._pids.pop(run_id, None)
        if key is not None:
            try:
                self.ray.get(actor.close.remote(), timeout=10)
                with self._lock:
                    self._idle.append((key, actor))
                return
            except Exception:  # unreachable after all: let it go
                pass
        self.ray.kill(actor)


def _hold(control: SearchControl) -> None:
    """The worker holds in its pause: hold here too, so that `wait_paused` sees the pause, until
    a resume or a stop (the next poll passes either on)."""
    try:
        control.checkpoint()
    except StopSearch:
        pass


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    with open(tmp, "wb") as f:  # as train/checkpoint.py: a crash mid-write keeps the old file
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
