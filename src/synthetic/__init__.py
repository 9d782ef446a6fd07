"""Generator of the embedded synthetic cohorts (docs/embedded_data.md).

`clinical`: children and young adults with dyskinetic cerebral palsy lying supine on a foam mat,
filmed from above (dystonia + choreoathetosis, distractors, blurred faces).  `healthy_adults`:
upright adults seen from the front making voluntary movements; the pre-training domain, different
on purpose.

Bodies are 3-D stick figures (orthographic camera) dressed in shaded, tapered capsules and polygons:
nothing in the image marks a joint.  Every frame is the mean of a few sub-frame renders (motion
blur); ground truth is taken at the frame's centre time, and `occluded` comes from a part-id buffer
drawn in the same depth order as the image.  Usage: `python -m src.cohort [synthetic=tiny]`.

Modules: `settings` (config as a plain dict, seeded random streams), `colours` (palettes),
`body` (keypoints, joints, participants, forward kinematics), `motion` (joint trajectories, poses
in the image), `canvas` (drawing primitives), `scene` (drawable parts in depth order), `render`
(one video and its ground truth), `cohort` (a cohort folder on disk).
"""
