"""Developer tools run as modules: python -m tools.<name> (not part of the pipeline)."""
