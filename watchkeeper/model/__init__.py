"""The types every layer shares: events, ids, the latency sketch, rollup and session deltas,
batches, queries and stored results, and the store's contract. It imports nothing of
Watchkeeper but ``config``, so recording and storage meet here without importing each other.
"""
