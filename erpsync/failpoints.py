"""Failpoints: named places in the pipeline where a test can make the process die, to prove crash safety.

A testing facility, off unless ``ERPSYNC_FAILPOINTS`` names points, read once when this module is imported:

    ERPSYNC_FAILPOINTS="push.after=kill:0.02,confirm.after=kill-once"

- ``NAME=kill``        SIGKILL this process every time the point is reached
- ``NAME=kill:P``      SIGKILL with probability P (0 < P <= 1)
- ``NAME=kill-once``   SIGKILL the first time any process reaches it, then never again: the point leaves a
                       marker file ``$ERPSYNC_HOME/failpoints/NAME.fired``, so the re-run after the crash passes.
                       Deleting the marker arms it again; creating it disarms it.

Points in the pipeline (erpsync/pipeline.py), in the order an event meets them:

    dedupe.after    the entity is claimed, nothing written
    push.before     about to call the ERP
    push.after      the ERP answered, the ledger knows nothing of it yet
    confirm.after   the ledger says synced (and the claim is released), the run not yet told

With the variable unset, ``hit`` is one truth test of an empty dict.
"""

from __future__ import annotations

import os
import random
import signal
from dataclasses import dataclass
from pathlib import Path

from erpsync.errors import ConfigError

ENV = "ERPSYNC_FAILPOINTS"
POINTS = frozenset({"dedupe.after", "push.before", "push.after", "confirm.after"})


@dataclass(frozen=True)
class Action:
    probability: float = 1.0
    once: bool = False


def parse(spec: str) -> dict[str, Action]:
    """``"a=kill,b=kill:0.5,c=kill-once"`` → actions by point; a ConfigError names what is wrong."""
    actions: dict[str, Action] = {}
    for part in filter(None, (piece.strip() for piece in spec.split(","))):
        name, _, action = part.partition("=")
        name, action = name.strip(), action.strip()
        if name not in POINTS:
            raise ConfigError(f"{ENV}: unknown failpoint {name!r} (known: {', '.join(sorted(POINTS))})")
        if action == "kill":
            actions[name] = Action()
        elif action == "kill-once":
            actions[name] = Action(once=True)
        elif action.startswith("kill:"):
            try:
                probability = float(action[5:])
            except ValueError:
                probability = -1.0
            if not 0 < probability <= 1:
                raise ConfigError(f"{ENV}: {name}: kill:P needs a probability above 0 and at most 1, got {action!r}")
            actions[name] = Action(probability=probability)
        else:
            raise ConfigError(f"{ENV}: {name}: unknown action {action!r} (kill, kill:P or kill-once)")
    return actions


_ACTIVE: dict[str, Action] = parse(os.environ.get(ENV, ""))


def reload() -> None:
    """Read the variable again (a process forked from one that imported this module, with another environment)."""
    global _ACTIVE
    _ACTIVE = parse(os.environ.get(ENV, ""))


def hit(name: str) -> None:
    """Die here if the failpoint ``name`` is switched on (and its dice or marker say so)."""
    if _ACTIVE:
        _maybe_kill(name)


def _maybe_kill(name: str) -> None:
    action = _ACTIVE.get(name)
    if action is None:
        return
    if action.once and not _claim_marker(name):
        return
    if action.probability < 1 and random.random() >= action.probability:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def marker(name: str, *, home: Path | None = None) -> Path:
    """The kill-once marker of ``name`` under ``home`` (default: ``$ERPSYNC_HOME``, as the pipeline sees it)."""
    home = home or Path(os.environ.get("ERPSYNC_HOME") or Path.cwd() / ".erpsync")
    return home / "failpoints" / f"{name}.fired"


def _claim_marker(name: str) -> bool:
    """True for the one process that creates the marker (several may reach the point at once)."""
    path = marker(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True
