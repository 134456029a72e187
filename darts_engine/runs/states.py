"""The run lifecycle in one place: every state a run can be in, and which are active, final or
resumable. The store, the run manager, bundles, the CLI and the pages all ask `RunState`
(in the spirit of Optuna's `TrialState`), so no other file spells out a list of states.

    queued -> running <-> paused
                 |-> stopping -> stopped
                 |-> completed | failed
    (any active state whose writer is gone) -> interrupted
    stopped | failed | interrupted -> queued again on resume
"""

from __future__ import annotations

from enum import Enum


class RunState(str, Enum):
    """A run's status as stored (the value is the stored string)."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"       # a stop was asked; the loop ends after its current step
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # its writer went away (shutdown, kill -9): resumable

    def __str__(self) -> str:
        return self.value

    @property
    def active(self) -> bool:
        """Someone is (or should be) writing the run."""
        return self in _ACTIVE

    @property
    def final(self) -> bool:
        """Nobody writes the run any more."""
        return not self.active

    @property
    def resumable(self) -> bool:
        """It can continue from its last checkpoint."""
        return self in _RESUMABLE

    @classmethod
    def parse(cls, value: str | RunState, field: str = "status") -> RunState:
        """The state stored as `value`; ValueError naming `field` and the allowed states."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{field} must be one of {', '.join(names())}, got {value!r}"
                             ) from None


_ACTIVE = frozenset({RunState.QUEUED, RunState.RUNNING, RunState.PAUSED, RunState.STOPPING})
_RESUMABLE = frozenset({RunState.STOPPED, RunState.FAILED, RunState.INTERRUPTED})


def names(which: str = "all") -> tuple[str, ...]:
    """The stored strings of every state ("all"), or of the "active", "final" or "resumable"
    ones, in lifecycle order."""
    if which == "all":
        return tuple(s.value for s in RunState)
    if which not in ("active", "final", "resumable"):
        raise ValueError(f"which must be all, active, final or resumable, got {which!r}")
    return tuple(s.value for s in RunState if getattr(s, which))


def is_active(state: str | RunState) -> bool:
    """True for an active state; unknown strings count as not active."""
    return str(state) in _ACTIVE_NAMES


_ACTIVE_NAMES = frozenset(names("active"))
