"""Scale-invariant movement features from tracked points: joint angles, normalised distances, frequencies.

Every function takes ``xy``, an array (n_frames, n_bodyparts, 2) of image positions in pixels with NaN
where a point is missing (not tracked, or under the p-cutoff), and bodypart names in the same order.
Angles and normalised distances do not change when the whole image is scaled, shifted or rotated, so they
compare across participants of different size and across cameras; frequencies do not depend on scale at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import signal


def masked_positions(poses: np.ndarray, pcutoff: float) -> np.ndarray:
    """(n_frames, n_bodyparts, 2) positions from DeepLabCut's (x, y, likelihood), NaN under ``pcutoff``."""
    xy = np.array(poses[..., :2], dtype=float)
    xy[poses[..., 2] < pcutoff] = np.nan
    return xy


def _points(xy: np.ndarray, bodyparts: list[str], names: list[str]) -> list[np.ndarray]:
    return [xy[:, bodyparts.index(name)] for name in names]


def joint_angle(
    xy: np.ndarray, bodyparts: list[str], proximal: str, joint: str, distal: str
) -> np.ndarray:
    """Angle at ``joint`` between the segments to ``proximal`` and ``distal``, in degrees (0 ... 180).

    Unsigned, so it is the same seen from above or below (a mirrored video gives the same angle):
    180 is a straight limb, 90 a right angle. NaN where one of the three points is missing.
    """
    a, b, c = _points(xy, bodyparts, [proximal, joint, distal])
    u, v = a - b, c - b
    cross = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    dot = (u * v).sum(axis=1)
    # atan2 of |cross| and dot is accurate near 0 and 180 degrees, where arccos of the cosine is not.
    return np.degrees(np.arctan2(np.abs(cross), dot))


def joint_angles(
    xy: np.ndarray, bodyparts: list[str], definitions: dict[str, list[str]]
) -> pd.DataFrame:
    """One column ``<name>`` (degrees) per angle of ``definitions`` (name -> [proximal, joint, distal])."""
    return pd.DataFrame(
        {name: joint_angle(xy, bodyparts, *points) for name, points in definitions.items()}
    )


def angular_velocity(angles_deg: np.ndarray, fps: float) -> np.ndarray:
    """Rate of change of an angle in degrees per second (central differences; NaN next to gaps)."""
    angles_deg = np.asarray(angles_deg, dtype=float)
    if len(angles_deg) < 2:
        return np.full_like(angles_deg, np.nan)
    return np.gradient(angles_deg) * fps


def body_centre(xy: np.ndarray, bodyparts: list[str], centre_points: list[str]) -> np.ndarray:
    """(n_frames, 2) mean of the ``centre_points``; NaN in frames where any of them is missing
    (a mean of whichever points are present would jump when one drops out)."""
    return np.stack(_points(xy, bodyparts, centre_points)).mean(axis=0)


def body_size(xy: np.ndarray, bodyparts: list[str], segments: list[list[str]]) -> float:
    """Body size in pixels: the median over frames of the mean length of ``segments`` (e.g. the trunk sides).

    One number per video, so a distance divided by it keeps the frame-to-frame movement and only loses the
    scale (participant size, camera distance); the median ignores frames with a mistracked point.
    """
    lengths = np.stack(
        [
            np.linalg.norm(a - b, axis=1)
            for a, b in (_points(xy, bodyparts, pair) for pair in segments)
        ]
    )
    per_frame = lengths.mean(axis=0)
    per_frame = per_frame[np.isfinite(per_frame)]
    return float(np.median(per_frame)) if len(per_frame) else float("nan")


def normalised_distances(
    xy: np.ndarray, bodyparts: list[str], centre_points: list[str], size_segments: list[list[str]]
) -> pd.DataFrame:
    """Distance of every point to the body centre divided by the body size (dimensionless), one column per point."""
    centre = body_centre(xy, bodyparts, centre_points)
    size = body_size(xy, bodyparts, size_segments)
    distances = np.linalg.norm(xy - centre[:, None, :], axis=2) / size
    return pd.DataFrame(distances, columns=list(bodyparts))


def _filled(series: np.ndarray) -> np.ndarray | None:
    """Linear interpolation over NaN gaps (Welch needs an unbroken signal); None if too little is left."""
    series = np.asarray(series, dtype=float)
    valid = np.isfinite(series)
    if valid.sum() < max(4, len(series) // 2):
        return None
    index = np.arange(len(series))
    return np.interp(index, index[valid], series[valid])


def power_spectrum(
    xy_point: np.ndarray, fps: float, segment_s: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Welch power spectral density of one point's movement: x and y detrended, their spectra summed.

    Returns (frequencies in Hz, power in px^2/Hz), or None when less than half of the frames hold the point.
    """
    columns = [_filled(xy_point[:, axis]) for axis in (0, 1)]
    if any(column is None for column in columns):
        return None
    n_per_segment = int(min(len(columns[0]), max(8, round(segment_s * fps))))
    power = None
    for column in columns:
        # Linear detrend: a slow drift across the whole video would otherwise dominate the lowest bins.
        frequencies, density = signal.welch(
            signal.detrend(column), fs=fps, nperseg=n_per_segment, detrend="constant"
        )
        power = density if power is None else power + density
    return frequencies, power


def dominant_frequencies(
    xy: np.ndarray, bodyparts: list[str], fps: float, segment_s: float = 4.0
) -> pd.DataFrame:
    """Per point: the frequency (Hz) of the highest peak of its power spectrum above 0 Hz, and that power."""
    rows = []
    for j, name in enumerate(bodyparts):
        spectrum = power_spectrum(xy[:, j], fps, segment_s)
        if spectrum is None:
            rows.append({"bodypart": name, "dominant_frequency_hz": np.nan, "peak_power": np.nan})
            continue
        frequencies, power = spectrum
        peak = 1 + int(np.argmax(power[1:]))  # bin 0 (the mean) carries no movement
        rows.append(
            {
                "bodypart": name,
                "dominant_frequency_hz": float(frequencies[peak]),
                "peak_power": float(power[peak]),
            }
        )
    return pd.DataFrame(rows)


def feature_table(
    xy: np.ndarray,
    bodyparts: list[str],
    fps: float,
    angle_definitions: dict[str, list[str]],
    centre_points: list[str],
    size_segments: list[list[str]],
) -> pd.DataFrame:
    """Per frame: ``time_s``, ``angle_<joint>_deg``, ``angular_velocity_<joint>_deg_s``, ``distance_<point>_norm``."""
    table = pd.DataFrame({"frame": np.arange(len(xy)), "time_s": np.arange(len(xy)) / fps})
    angles = joint_angles(xy, bodyparts, angle_definitions)
    for name in angles:
        table[f"angle_{name}_deg"] = angles[name].to_numpy()
        table[f"angular_velocity_{name}_deg_s"] = angular_velocity(angles[name].to_numpy(), fps)
    distances = normalised_distances(xy, bodyparts, centre_points, size_segments)
    for name in distances:
        table[f"distance_{name}_norm"] = distances[name].to_numpy()
    return table


def usable_angles(
    definitions: dict[str, list[str]], bodyparts: list[str]
) -> tuple[dict[str, list[str]], list[str]]:
    """The angle definitions whose three points the model tracks, and the names of those it cannot compute."""
    usable = {
        name: list(points) for name, points in definitions.items() if set(points) <= set(bodyparts)
    }
    return usable, [name for name in definitions if name not in usable]


def plot_time_series(
    positions: np.ndarray, bodyparts: list[str], features: pd.DataFrame, path: Path
) -> Path:
    """Three panels over time: x and y of every point, joint angles, normalised distances."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    time_s = features["time_s"].to_numpy()
    fig, axes = plt.subplots(3, 1, figsize=(9, 9), dpi=100, sharex=True)
    for j, name in enumerate(bodyparts):
        (line,) = axes[0].plot(time_s, positions[:, j, 0], lw=0.8, label=name)
        axes[0].plot(time_s, positions[:, j, 1], lw=0.8, ls="--", color=line.get_color())
    axes[0].set(ylabel="position (px)", title="Positions (solid: x, dashed: y)")
    axes[0].legend(fontsize=6, ncol=4, loc="upper right")
    for column in [c for c in features if c.startswith("angle_")]:
        axes[1].plot(
            time_s,
            features[column],
            lw=0.9,
            label=column.removeprefix("angle_").removesuffix("_deg"),
        )
    axes[1].set(ylabel="angle (deg)", title="Joint angles")
    axes[1].legend(fontsize=6, ncol=4, loc="upper right")
    for column in [c for c in features if c.startswith("distance_")]:
        axes[2].plot(
            time_s,
            features[column],
            lw=0.8,
            label=column.removeprefix("distance_").removesuffix("_norm"),
        )
    axes[2].set(
        xlabel="time (s)",
        ylabel="distance / body size",
        title="Distance to the body centre, normalised",
    )
    axes[2].legend(fontsize=6, ncol=4, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_spectra(
    positions: np.ndarray, bodyparts: list[str], fps: float, segment_s: float, path: Path
) -> Path:
    """Welch power spectra of every point's movement (log scale), the dominant frequency marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for j, name in enumerate(bodyparts):
        spectrum = power_spectrum(positions[:, j], fps, segment_s)
        if spectrum is None:
            continue
        frequencies, power = spectrum
        (line,) = ax.semilogy(frequencies[1:], power[1:], lw=0.9, label=name)
        peak = 1 + int(np.argmax(power[1:]))
        ax.plot(frequencies[peak], power[peak], "o", ms=3, color=line.get_color())
    ax.set(
        xlabel="frequency (Hz)",
        ylabel="power (px$^2$/Hz)",
        title="Movement spectra (dot: dominant frequency)",
    )
    if ax.get_lines():
        ax.legend(fontsize=6, ncol=3)
    else:  # no point was tracked above the p-cutoff in half of the frames
        ax.text(0.5, 0.5, "no point tracked in enough frames", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
