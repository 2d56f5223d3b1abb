"""The runtime: the one object that owns Watchkeeper's store, recorder, callers' authentication
and components, and starts and stops them together, whether inside a host app
(``watchkeeper.instrument``), as ``watchkeeper serve``, in the demo or in the CLI.
"""
