"""RunManager: runs searches and retrains in the background, a bounded number at a time,
queueing the rest. Both kinds share the store, the queue, the controls (pause / stop / resume)
and the run folder's checkpoint; a retrain's kind lives in its config (runs/kinds.py).

The dashboard holds one manager per process (through `st.cache_resource`); worker threads only
talk to the run store and to this manager's plain-data status, never to the UI. Execution is
behind the small `Executor` interface, so a process- or cluster-based executor can replace the
thread one without touching pages. With `executor="ray"` each run's loop runs on a Ray actor
(runs/ray_executor.py) while its driver thread here still feeds the one recorder.

Threads: torch's intra-op pool is per process. On a 2-core machine two searches with one thread
each finish sooner than the same two one after the other with two threads each
(benchmarks/pair_threads.py), so each worker asks for `cores // max_concurrent` threads.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from ..config import ConfigError, SearchConfig
from ..events import EpochRecord, Event, RunFinished, RunStarted, StepRecord
from ..search import SearchControl, SearchResult, check_resumable, search
from ..train import retrain as retraining
from ..train.data import check_config
from ..train.retrain import RetrainConfig, RetrainResult, check_genotype
from .kinds import RETRAIN, retrain_run_config, run_kind, split_retrain_config
from .ray_executor import RayBackend, WorkerGone
from .states import RunState, names
from .store import RunStore


def warm_up() -> None:
    """Pay the process's one-time import costs before the first launch (several seconds on a
    small CPU): the first optimiser imports torch._dynamo, the digits dataset scikit-learn.
    The dashboard calls this in a background thread at start-up, so that Start -> first
    plotted point stays within seconds."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    import sklearn.datasets  # noqa: F401


Listener = Callable[[Event], None]
Result = SearchResult | RetrainResult
# (on_event, control, checkpoint folder, resume?) -> the loop's result (status, error)
Loop = Callable[[Listener, SearchControl, Path, bool], Result]


@dataclass(frozen=True)
class _Job:
    run_id: str
    epochs: int
    loop: Loop
    resume: bool
    listener: Listener | None = None
    device: str = "cpu"             # the config's device: a Ray worker asks for a GPU on cuda


def _search_loop(cfg: SearchConfig, setup: Any = None) -> Loop:
    return lambda on_event, control, folder, resume: search(
        cfg, on_event, control, checkpoint_dir=folder, resume=resume, setup=setup)


def _retrain_loop(cfg: RetrainConfig, genotype: str, run_config: dict[str, Any]) -> Loop:
    """The retrain loop, its RunStarted carrying the run's whole config (kind, genotype,
    source): the recorder stores RunStarted.config as the run's config."""
    def loop(on_event: Listener, control: SearchControl, folder: Path, resume: bool) -> Result:
        def with_kind(ev: Event) -> None:
            on_event(dataclasses.replace(ev, config=run_config)
                     if isinstance(ev, RunStarted) else ev)
        return retraining.retrain(cfg, genotype, with_kind, control, checkpoint_dir=folder,
                                  resume=resume)
    return loop


class Executor(Protocol):
    """Runs a job somewhere; `join` waits for everything submitted so far."""

    def submit(self, name: str, job: Callable[[], None]) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...


class ThreadExecutor:
    """One daemon thread per job. The manager's atexit hook stops and joins them, so a server
    shutdown lets the current step end and the store close cleanly."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, name: str, job: Callable[[], None]) -> None:
        t = threading.Thread(target=job, name=f"dartboard-run-{name}", daemon=True)
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def alive(self) -> int:
        with self._lock:
            return sum(t.is_alive() for t in self._threads)


@dataclass
class RunStatus:
    """What pages may read about a live run: plain values only."""

    run_id: str
    state: str = "queued"
    epoch: int = 0                  # epochs completed
    epochs: int = 0
    step: int = 0                   # global steps completed
    steps_per_epoch: int = 0
    steps_per_s: float = 0.0
    eta_s: float = float("nan")
    error: str = ""
    started: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RunManager:
    """executor: "local" (the default: each run's loop in a thread of this process), "ray"
    (each run's loop on a Ray actor; ray_address None starts a local Ray instance, "auto" or
    "ray://host:port" joins one), or an Executor for the driver threads."""

    def __init__(self, store: RunStore, max_concurrent: int = 2,
                 executor: Executor | str | None = None, threads_per_run: int | None = None,
                 ray_address: str | None = None,
                 mark_orphans: bool = True) -> None:
        self.store = store
        self.max_concurrent = max(1, max_concurrent)
        self.ray: Any = None  # the RayBackend when executor="ray"
        if executor == "ray":
            self.ray = RayBackend(ray_address)
        elif isinstance(executor, str) and executor != "local":
            raise ConfigError(f"executor must be 'local' or 'ray', got {executor!r}",
                              field="executor")
        local = executor is None or isinstance(executor, str)
        self.executor = ThreadExecutor() if local else executor  # the driver threads
        cores = os.cpu_count() or 1
        self.threads_per_run = threads_per_run or max(1, cores // self.max_concurrent)
        self._lock = threading.RLock()
        self._queue: deque[_Job] = deque()
        self._results: dict[str, Result] = {}
        self._controls: dict[str, SearchControl] = {}
        self._status: dict[str, RunStatus] = {}
        self._running: set[str] = set()
        self._closed = False
        if mark_orphans:   # a second manager in the same process (a Ray one) must not
            store.mark_interrupted(live_ids=set())   # mark the first one's runs
        atexit.register(self.shutdown, 10.0)

    # --- launching -------------------------------------------------------------------------
    def launch(self, cfg: SearchConfig, name: str = "", *, listener: Listener | None = None,
               setup: Any = None, sweep_id: str | None = None,
               sweep_point: dict[str, Any] | None = None) -> str:
        """Validate, record the run as queued, start it when a slot is free. Returns its id.
        listener: also gets every event, after the recorder (the CLI's progress lines);
        setup: a SearchSetup already built for cfg (the CLI loads the data before any row);
        sweep_id, sweep_point: the sweep the run belongs to and its grid point (runs/sweep.py)."""
        check_config(cfg)  # ConfigError before anything is written
        run_id = self.store.create_run(cfg.to_dict(), name=name or cfg.name,
                                       status=RunState.QUEUED.value, sweep_id=sweep_id,
                                       sweep_point=sweep_point)
        # a Ray worker builds its own setup: the CLI's preloaded data stays here
        loop = _search_loop(cfg, None if self.ray else setup)
        self._enqueue(_Job(run_id, cfg.epochs, loop, False, listener, cfg.device))
        return run_id

    def launch_retrain(self, cfg: RetrainConfig, genotype_text: str, *,
                       source_run: str | None = None, source_epoch: int | None = None,
                       name: str = "", listener: Listener | None = None) -> str:
        """Train the genotype's discrete network from scratch as a run of kind "retrain"
        (train/retrain.py). ConfigError(field="genotype") before anything is written when the
        text does not parse or is not of the recipe's kind. source_run/source_epoch: the
        search run and 0-based epoch the genotype was derived at (None: pasted)."""
        genotype = str(check_genotype(cfg, genotype_text))
        run_config = retrain_run_config(cfg, genotype, source_run, source_epoch)
        where = "" if source_run is None else f" of {source_run}" + (
            "" if source_epoch is None else f" @ epoch {source_epoch + 1}")
        run_id = self.store.create_run(run_config, name=name or f"retrain · {cfg.recipe}{where}",
                                       status=RunState.QUEUED.value)
        self._enqueue(_Job(run_id, cfg.epochs, _retrain_loop(cfg, genotype, run_config), False,
                           listener, cfg.device))
        return run_id

    def launch_pair(self, cfg: SearchConfig, name: str = "") -> tuple[str, str]:
        """The same config and seed once bi-level (first order) and once single-level."""
        base = name or cfg.name or "pair"
        bi = cfg.replace(algorithm="bilevel-1st" if cfg.algorithm == "single" else cfg.algorithm)
        single = cfg.replace(algorithm="single")
        check_config(bi)
        check_config(single)
        return (self.launch(bi, f"{base} · bi-level"), self.launch(single, f"{base} · single-level"))

    def resume(self, run_id: str, *, listener: Listener | None = None) -> None:
        """Continue a paused run, or restart an interrupted/stopped/failed one from its checkpoint."""
        with self._lock:
            if run_id in self._controls and run_id in self._running:
                self._controls[run_id].resume()
                self._status[run_id].state = "running"
                self.store.set_status(run_id, "running")
                return
        run = self.store.get_run(run_id)
        if not RunState.parse(run["status"]).resumable:
            raise ValueError(f"run {run_id} is {run['status']}; only "
                             f"{', '.join(names('resumable'))} runs can be resumed")
        if run_kind(run["config"]) == RETRAIN:
            cfg, genotype = split_retrain_config(run["config"])
            _check_retrain_resumable(self.store.home / run_id, run["epochs_done"])
            job = _Job(run_id, cfg.epochs, _retrain_loop(cfg, genotype, run["config"]), True,
                       listener, cfg.device)
        else:
            check_resumable(self.store.home / run_id, run["epochs_done"])
            cfg = SearchConfig.from_dict(run["config"])
            job = _Job(run_id, cfg.epochs, _search_loop(cfg), True, listener, cfg.device)
        self.store.requeue(run_id)
        self._enqueue(job)

    def _enqueue(self, job: _Job) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the run manager is shut down")
            self._queue.append(job)
            self._controls[job.run_id] = SearchControl()
            self._status[job.run_id] = RunStatus(job.run_id, epochs=job.epochs)
        self._dispatch()

    def _dispatch(self) -> None:
        with self._lock:
            while self._queue and len(self._running) < self.max_concurrent and not self._closed:
                job = self._queue.popleft()
                self._running.add(job.run_id)
                self._status[job.run_id].state = "running"
                self.executor.submit(job.run_id, lambda j=job: self._work(j))

    # --- the worker ------------------------------------------------------------------------
    def _work(self, job: _Job) -> None:
        run_id, listener = job.run_id, job.listener
        torch.set_num_threads(self.threads_per_run)
        recorder = self.store.recorder(run_id)
        status = self._status[run_id]
        t0 = time.perf_counter()

        def on_event(ev: Event) -> None:
            recorder(ev)
            self._track(status, ev, t0)
            if listener is not None:
                listener(ev)

        loop = job.loop if self.ray is None else self.ray.remote(
            job.loop, run_id, self.threads_per_run, job.device)
        try:
            result = loop(on_event, self._controls[run_id], self.store.run_dir(run_id),
                          job.resume)
            status.state, status.error = result.status, result.error
            with self._lock:
                self._results[run_id] = result
        except WorkerGone as e:  # its Ray worker died: only this run ends, resumable
            status.state, status.error = e.state, str(e)
            self.store.set_status(run_id, e.state, error=status.error)
        except Exception as e:  # bad data found by the loop before it started: a failed run
            status.state, status.error = "failed", f"{type(e).__name__}: {e}"
            self.store.set_status(run_id, "failed", error=status.error)
        finally:
            recorder.close()
            with self._lock:
                self._running.discard(run_id)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # give a finished or failed run's memory back
            self._dispatch()

    @staticmethod
    def _track(status: RunStatus, ev: Event, t0: float) -> None:
        if isinstance(ev, RunStarted):
            status.steps_per_epoch = ev.steps_per_epoch
            status.epoch = ev.start_epoch
            status.step = ev.start_epoch * ev.steps_per_epoch
        elif isinstance(ev, StepRecord):
            status.step = ev.step
            elapsed = max(1e-9, time.perf_counter() - t0)
            status.steps_per_s = ev.step / elapsed if status.epoch == 0 else status.steps_per_s
        elif isinstance(ev, EpochRecord):
            status.epoch, status.step = ev.epoch + 1, ev.step  # a retrain reports no steps
            status.steps_per_s = status.steps_per_epoch / max(1e-9, ev.epoch_time)
            status.eta_s = (status.epochs - status.epoch) * ev.epoch_time
        elif isinstance(ev, RunFinished):
            status.state, status.error = ev.status, ev.error
            status.eta_s = 0.0

    # --- control ---------------------------------------------------------------------------
    def stop(self, run_id: str) -> None:
        with self._lock:
            queued = [q for q in self._queue if q.run_id == run_id]
            for q in queued:
                self._queue.remove(q)
            if queued:
                self._status[run_id].state = "stopped"
                self.store.set_status(run_id, "stopped")
                return
            control = self._controls.get(run_id)
            if control is not None and run_id in self._running:
                control.stop()
                self._status[run_id].state = "stopping"

    def pause(self, run_id: str) -> None:
        with self._lock:
            if run_id in self._running:
                self._controls[run_id].pause()
                self._status[run_id].state = "paused"
                self.store.set_status(run_id, "paused")

    def wait_paused(self, run_id: str, timeout: float = 30.0) -> bool:
        """True once a paused run's loop is holding (its step in flight has finished)."""
        with self._lock:
            control = self._controls.get(run_id)
        return control is not None and control.wait_held(timeout)

    def delete(self, run_id: str, timeout: float = 30.0) -> None:
        """Stop the run if it is live, wait for its thread to let go, then delete it."""
        self.stop(run_id)
        deadline = time.monotonic() + timeout
        while self.is_live(run_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.store.delete_run(run_id)
        with self._lock:
            self._status.pop(run_id, None)
            self._controls.pop(run_id, None)

    # --- reading ---------------------------------------------------------------------------
    def is_live(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._running or any(q.run_id == run_id for q in self._queue)

    def status(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            st = self._status.get(run_id)
            return None if st is None else st.as_dict()

    def result(self, run_id: str) -> Result | None:
        """The SearchResult (RetrainResult) of a run this manager ran to its end; None
        before."""
        with self._lock:
            return self._results.get(run_id)

    def live_ids(self) -> set[str]:
        with self._lock:
            return set(self._running) | {q.run_id for q in self._queue}

    def wait(self, run_id: str, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while self.is_live(run_id) and time.monotonic() < deadline:
            time.sleep(0.05)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every run (queued ones are marked interrupted) and join the workers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            queued = [q.run_id for q in self._queue]
            running = list(self._running)
            self._queue.clear()
            for run_id in running:
                self._controls[run_id].stop()
        self.executor.join(timeout)
        if self.ray is not None:
            self.ray.close()  # the Ray actors left idle between runs
        # Runs cut short by a shutdown (not by a person) can be resumed from their checkpoint.
        for run_id in queued + running:
            self.store.set_status(run_id, "interrupted")


def _check_retrain_resumable(folder: Path, epochs_done: int) -> None:
    """As search.check_resumable, for a retrain's checkpoint."""
    if epochs_done > 0 and not (folder / retraining.CHECKPOINT_NAME).is_file():
        raise ConfigError(f"this retrain has {epochs_done} recorded epoch(s) but no checkpoint "
                          "to continue from (imported runs carry none), so it cannot be "
                          "resumed. Launch a new retrain of its genotype instead.", field="run")
