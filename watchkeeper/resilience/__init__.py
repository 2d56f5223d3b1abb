"""Resilience around every integration: timeouts, retries, circuit breakers, rate limits,
concurrency limits, fallbacks and credential refresh, per integration, shared across replicas
through Redis, and recorded like everything else Watchkeeper sees.

``watchkeeper.resilient(name)`` (:mod:`.calls`) guards a call; :mod:`.transport` guards every
call an httpx client sends; :mod:`.component` runs it with the runtime.
"""
