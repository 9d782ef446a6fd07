"""The study as a whole: its configuration file, its plan (conditions, condition 0) and its check."""
