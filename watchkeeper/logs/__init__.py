"""The app's logs: capture of its logging and structlog records, the AUDIT and SECURITY levels,
JSON output, and ``tail``, which follows log files into the store."""
