"""Trust without labels: flag the frames and points of a new patient's video where tracking fails.

A **signal** is a number per point and frame, computed from the video's predictions alone (no
label), that is larger where the point is more likely to be wrong. Every signal is a function of
``src.trust.signals`` that takes arrays of one video, ``xy`` (n_frames, n_points, 2) in pixels and,
where it needs them, the likelihoods (n_frames, n_points), and returns an array (n_frames,
n_points) of floats in a documented unit (px, or a dimensionless ratio), NaN where it cannot be
computed. The signals so far:

- ``low_likelihood``: 1 - DeepLabCut's likelihood (0 ... 1);
- ``jump_px``: how far a point jumps against its neighbours in time beyond the body's own motion;
- ``segment_length_deviation``: relative deviation of the point's skeleton segments from their
  median length over the video;
- ``PosePCA.reconstruction_error_px``: distance of the point from the pose rebuilt in a PCA
  subspace of the labelled training poses;
- ``model_disagreement_px``: spread of several models' predictions of the same point.
- ``flip_disagreement_px``: distance between a model's prediction and its prediction on the
  horizontally flipped frame mapped back (test-time augmentation, one more forward pass).

``src.trust.score`` combines the signals into one **trust score**, the calibrated probability that
a point's error exceeds a threshold (logistic regression on log-scaled signals), fitted only on
out-of-sample errors and cross-fitted by participant; ``TrustModel.save`` writes it as one small
JSON file that travels with the model. ``src.trust.validation`` holds the figures that prove it
(AUROC, precision at a flag rate, rank correlation per video) with participant-bootstrap
intervals. ``python -m benchmarks.trust`` runs it all on the embedded cohort (docs/trust.md).

Recipe to add a signal:

1. Write a function in ``src/trust/signals.py`` that returns (n_frames, n_points), larger = less
   trustworthy, with its unit in the docstring, and a test in ``tests/trust/test_signals.py`` that
   can fail (a planted fault must rank first).
2. Compute it in ``signals.single_model_signals`` (from one model's output) or beside
   ``model_disagreement_px`` (several models), under a name that says what it is (``jump_px``);
   it then becomes a column of the signal table the combined score is fitted on.
3. Run ``python -m benchmarks.trust``: the signal gets its own row in ``benchmarks/results/trust.md``
   and enters the combined score; keep it only if it helps there.
"""
