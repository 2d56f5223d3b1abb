"""The process's resilience: every integration's effective policy, its guard, and the state
backend they share.

Policies come from four places, later ones winning field by field: the built-in defaults, the
file's ``[defaults]`` table, code (:meth:`Resilience.register`, ``resilient(..., policy=...)``),
then the file's table for the integration and ``WATCHKEEPER_RESILIENCE_POLICIES``. Code gives
what only code can (hooks); the file and environment let an operator tune numbers without a
release.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from watchkeeper.recording.recorder import Recorder
from watchkeeper.resilience.engine import Guard
from watchkeeper.resilience.events import Events
from watchkeeper.resilience.policy import Hooks, Policy, overridden
from watchkeeper.resilience.state import MemoryState, StateBackend

_NO_HOOKS = Hooks()


class Resilience:
    def __init__(self, state: StateBackend | None = None, events: Events | None = None) -> None:
        self.state: StateBackend = state or MemoryState()
        self.events = events or Events()
        self._code: dict[str, tuple[Policy | None, Hooks]] = {}
        self._defaults: dict[str, Any] = {}
        self._overrides: dict[str, dict[str, Any]] = {}
        self._guards: dict[str, Guard] = {}
        self._lock = threading.Lock()

    def register(self, name: str, policy: Policy | None = None, hooks: Hooks = _NO_HOOKS) -> None:
        """Give ``name`` a policy and hooks from code (keeping earlier hooks not given again)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"an integration name must be a non-empty string, got {name!r}")
        if policy is not None and not isinstance(policy, Policy):
            raise TypeError(f"the {name} policy must be a watchkeeper Policy, got {policy!r}")
        with self._lock:
            known_policy, known_hooks = self._code.get(name, (None, _NO_HOOKS))
            self._code[name] = (policy or known_policy, known_hooks.merged(hooks))
            self._guards.pop(name, None)

    def configure(
        self,
        state: StateBackend | None = None,
        defaults: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        """Take the runtime's state backend and the file's policies; guards are built anew."""
        with self._lock:
            if state is not None and state is not self.state:
                previous, self.state = self.state, state
                previous.close()
            if defaults is not None:
                self._defaults = dict(defaults)
            if overrides is not None:
                self._overrides = {name: dict(part) for name, part in overrides.items()}
            if recorder is not None:
                self.events.recorder = recorder
            self._guards.clear()

    def policy(self, name: str) -> Policy:
        """The policy ``name``'s calls get."""
        code_policy, _ = self._code.get(name, (None, _NO_HOOKS))
        base = code_policy or overridden(Policy(), self._defaults)
        return overridden(base, self._overrides.get(name, {}))

    def hooks(self, name: str) -> Hooks:
        return self._code.get(name, (None, _NO_HOOKS))[1]

    def guard(self, name: str) -> Guard:
        guard = self._guards.get(name)
        if guard is not None:
            return guard
        with self._lock:
            guard = self._guards.get(name)
            if guard is None:
                guard = Guard(name, self.policy(name), self.hooks(name), self.state, self.events)
                self._guards[name] = guard
            return guard

    def guards(self) -> list[Guard]:
        """Every integration with a policy or a call so far, by name."""
        names = {*self._code, *self._overrides, *self._guards}
        return [self.guard(name) for name in sorted(names)]

    def for_host(self, host: str) -> str | None:
        """The integration whose policy names ``host`` among its hosts, if any."""
        host = host.lower()
        for guard in self.guards():
            if host in guard.policy.hosts:
                return guard.name
        return None


_default: Resilience | None = None
_default_lock = threading.Lock()


def get_resilience() -> Resilience:
    """The process's resilience, made (in memory, default policies) on first use."""
    global _default  # noqa: PLW0603 - one per process, like the recorder
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Resilience()
    return _default
