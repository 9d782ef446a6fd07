"""Training: one labelled-frames condition in its MLflow run, and the pre-training of the initial model."""
