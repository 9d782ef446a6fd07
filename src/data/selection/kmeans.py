"""The ``kmeans`` frame-selection strategy: seeded k-means, ranked so that conditions are nested.

k-means over a video's candidate frames (downsampled grey images, src.data.frames) picks one
representative frame per cluster (the frame nearest the centroid). The picks are then *ranked* by
farthest-point order, so the first N picks of a video are as varied as N picks can be: the
condition with N labelled frames uses ranks 1..N, and every larger condition contains every
smaller one.
"""

from __future__ import annotations

import numpy as np

NAME = "kmeans"


def rank(features: np.ndarray, n_picks: int, seed: int) -> np.ndarray:
    """Row indices of ``n_picks`` representative rows of ``features``, most informative first.

    One pick per k-means cluster (the row nearest its centroid), ordered by farthest-point
    traversal starting from the representative of the largest cluster.
    """
    from sklearn.cluster import (
        KMeans,  # here: importing scikit-learn costs seconds, and bad input fails before
    )

    n_picks = min(n_picks, len(features))
    centred = features - features.mean(axis=0)
    kmeans = KMeans(n_clusters=n_picks, n_init=3, random_state=seed).fit(centred)
    distances = kmeans.transform(centred)  # (rows, clusters)
    picks = []
    for cluster in range(n_picks):
        members = np.flatnonzero(kmeans.labels_ == cluster)
        if len(members):  # identical frames can leave a cluster empty
            picks.append(members[np.argmin(distances[members, cluster])])
    picks = np.array(picks)
    cluster_sizes = np.bincount(kmeans.labels_, minlength=n_picks)[kmeans.labels_[picks]]
    order = [int(np.argmax(cluster_sizes))]
    nearest = np.linalg.norm(centred[picks] - centred[picks[order[0]]], axis=1)
    while len(order) < len(picks):
        nearest[order] = -1
        following = int(np.argmax(nearest))
        order.append(following)
        nearest = np.minimum(
            nearest, np.linalg.norm(centred[picks] - centred[picks[following]], axis=1)
        )
    return picks[order]
