"""Constant-velocity Kalman filter on boxes, vectorised over all tracks at once.

State per track: centre x, centre y, width, height and their velocities (per nominal frame). Noise is
proportional to the box size, as in ByteTrack and BoT-SORT. Time steps may be fractional or larger
than one frame (dropped or sampled frames), so prediction takes the elapsed time in frames.
"""

from __future__ import annotations

import numpy as np


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """Corner boxes to centre-size boxes."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    wh = boxes[:, 2:] - boxes[:, :2]
    return np.hstack([boxes[:, :2] + wh / 2, wh])


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    half = boxes[:, 2:] / 2
    return np.hstack([boxes[:, :2] - half, boxes[:, :2] + half])


class BoxKalmanFilter:
    """Batched predict and update for n tracks: means (n, 8), covariances (n, 8, 8)."""

    def __init__(self, std_weight_position: float = 1 / 20, std_weight_velocity: float = 1 / 160) -> None:
        self.std_position = std_weight_position
        self.std_velocity = std_weight_velocity

    def initiate(self, boxes_xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
        mean = np.hstack([z, np.zeros_like(z)])
        size = np.tile(z[:, 2:], 2)  # (w, h, w, h)
        std = np.hstack([2 * self.std_position * size, 10 * self.std_velocity * size])
        return mean, _diag(std**2)

    def predict(self, mean: np.ndarray, cov: np.ndarray, steps: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Advance every track by `steps` nominal frames."""
        if not len(mean):
            return mean, cov
        motion = np.eye(8)
        motion[:4, 4:] = steps * np.eye(4)
        size = np.tile(mean[:, 2:4], 2)
        std = np.hstack([self.std_position * size, self.std_velocity * size])
        noise = _diag(std**2) * max(steps, 1e-6)
        mean = mean @ motion.T
        cov = motion @ cov @ motion.T + noise
        return mean, cov

    def update(self, mean: np.ndarray, cov: np.ndarray, boxes_xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct each track with its measured box."""
        if not len(mean):
            return mean, cov
        z = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
        size = np.tile(mean[:, 2:4], 2)
        projected_cov = cov[:, :4, :4] + _diag((self.std_position * size) ** 2)
        # Kalman gain K = P H^T S^-1; solve S K^T = H P instead of inverting S.
        gain = np.linalg.solve(projected_cov, cov[:, :4, :]).transpose(0, 2, 1)
        innovation = z - mean[:, :4]
        mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        cov = cov - gain @ projected_cov @ gain.transpose(0, 2, 1)
        return mean, cov


def _diag(values: np.ndarray) -> np.ndarray:
    """(n, k) -> (n, k, k) diagonal matrices."""
    n, k = values.shape
    out = np.zeros((n, k, k))
    out[:, np.arange(k), np.arange(k)] = values
    return out
