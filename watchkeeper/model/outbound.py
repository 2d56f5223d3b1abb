"""How Watchkeeper marks the HTTP requests it sends itself.

Alert notifications go out with httpx, which Watchkeeper also records when the app calls it.
A request of its own carries this extension, so that recording neither times it as one of the
app's integrations nor gives it the app's ``traceparent``.
"""

from __future__ import annotations

OWN_REQUEST = "watchkeeper.own_request"
"""An httpx request extension; any true value marks a request Watchkeeper sends itself."""
