"""``watchkeeper demo``: a small guidance service, instrumented as a user would, under load."""
