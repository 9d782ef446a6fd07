"""MLflow: the store and the runs (``store``), live training curves, the sweep callback, queries."""
