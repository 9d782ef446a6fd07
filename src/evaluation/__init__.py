"""The paper's error measures: metrics, evaluating one condition, plots, the report of a study."""
