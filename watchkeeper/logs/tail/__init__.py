"""``watchkeeper tail``: log files followed into the store, rotation and truncation safe,
resuming after a restart from offsets kept on disk."""
