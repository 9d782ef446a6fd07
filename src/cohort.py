"""Generate the embedded synthetic cohorts the study reads: the clinical cohort when it is the data set
(data=synthetic), the healthy-adult cohort when the initial model is pre-trained on it
(weights=healthy_adults). Reads conf/synthetic/; writes videos, labels and ground truth under
<paths.synthetic_dir>/ (data/synthetic/). A DVC pipeline stage.

Examples:
    python -m src.cohort                          # the cohorts of the current study
    python -m src.cohort synthetic=tiny           # a tiny cohort, in seconds
    python -m src.cohort synthetic.workers=4      # four processes render the videos

A cohort the study does not read gets a placeholder folder (``NOT_NEEDED.txt``, one line saying why),
which the DVC stage needs as its output; one line says what is skipped and why.
"""

from __future__ import annotations

import logging
import time

from omegaconf import DictConfig

from src.checks import check_config
from src.cli import stage
from src.errors import exit_on_data_error
from src.study.needs import cohorts_not_needed
from src.synthetic.cohort import generate_all

log = logging.getLogger(__name__)


@stage
def main(cfg: DictConfig) -> None:
    start = time.perf_counter()
    with exit_on_data_error():
        check_config(cfg, "synthetic")
        not_needed = cohorts_not_needed(cfg)
        for cohort, reason in not_needed.items():
            print(f"cohort {cohort} skipped (placeholder written): {reason}", flush=True)
        generate_all(cfg.synthetic, not_needed)
    made = [c for c in ("clinical", "healthy_adults") if c not in not_needed]
    print(
        f"synthetic cohorts ready in {time.perf_counter() - start:.1f} s: "
        f"{', '.join(made) or 'none needed'}"
    )


if __name__ == "__main__":
    main()
