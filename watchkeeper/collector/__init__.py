"""The collector: aggregation, health, metrics, the live feed and writing, out of the app's process.

Apps ship compact event frames to it (:mod:`~watchkeeper.recording.shipping`); it runs the same
pipeline an embedded recorder runs (:class:`~watchkeeper.runtime.runtime.Runtime`) and serves
Watchkeeper's application to the apps, which forward their Watchkeeper paths to it.
"""
