"""Geometry of yaw-rotated boxes (vertical prisms) in the SynthVSI world frame.

World frame: z up, floor at z = 0, the room spans ``[0, Lx] x [0, Ly] x [0, height]`` (metres). A box is given by
its centre ``(x, y, z)``, full size ``(l, w, h)`` along its local axes and ``yaw`` (radians, counter-clockwise about
+z, local x -> world ``(cos yaw, sin yaw, 0)``).
"""
from __future__ import annotations

import numpy as np


def footprint_corners(center: np.ndarray, size: np.ndarray, yaw: float) -> np.ndarray:
    """Corners of a box's floor footprint, counter-clockwise. Returns ``(4, 2)`` world xy in metres."""
    c, s = np.cos(yaw), np.sin(yaw)
    hl, hw = size[0] / 2.0, size[1] / 2.0
    local = np.array([[-hl, -hw], [hl, -hw], [hl, hw], [-hl, hw]])
    rot = np.array([[c, -s], [s, c]])
    return local @ rot.T + np.asarray(center[:2])


def _rectangles_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test for two convex quadrilaterals ``(4, 2)``; touching counts as not overlapping."""
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        for edge in edges:
            axis = np.array([-edge[1], edge[0]])
            pa, pb = a @ axis, b @ axis
            if pa.max() <= pb.min() + 1e-9 or pb.max() <= pa.min() + 1e-9:
                return False
    return True


def boxes_overlap(center_a, size_a, yaw_a, center_b, size_b, yaw_b, margin: float = 0.0) -> bool:
    """Whether two yaw boxes interpenetrate, with each footprint grown by ``margin / 2`` on every side.

    Boxes whose height intervals only touch (an object standing on another) do not overlap.
    """
    za = (center_a[2] - size_a[2] / 2.0, center_a[2] + size_a[2] / 2.0)
    zb = (center_b[2] - size_b[2] / 2.0, center_b[2] + size_b[2] / 2.0)
    if za[1] <= zb[0] + 1e-6 or zb[1] <= za[0] + 1e-6:
        return False
    grow = np.array([margin, margin, 0.0])
    return _rectangles_overlap(footprint_corners(center_a, np.asarray(size_a) + grow, yaw_a),
                               footprint_corners(center_b, np.asarray(size_b) + grow, yaw_b))


def _point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances from points ``(N, 2)`` to segments ``(M, 2)-(M, 2)``. Returns ``(N, M)``."""
    ab = b - a
    t = ((p[:, None, :] - a[None]) * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12)[None]
    closest = a[None] + np.clip(t, 0.0, 1.0)[..., None] * ab[None]
    return np.linalg.norm(p[:, None, :] - closest, axis=-1)


def box_distance(center_a, size_a, yaw_a, center_b, size_b, yaw_b) -> float:
    """Exact closest-point distance (metres) between two yaw boxes; 0 when they touch or overlap.

    A yaw box is a footprint rectangle times a height interval, so the squared distance is the squared footprint
    distance plus the squared gap between the height intervals.
    """
    za = (center_a[2] - size_a[2] / 2.0, center_a[2] + size_a[2] / 2.0)
    zb = (center_b[2] - size_b[2] / 2.0, center_b[2] + size_b[2] / 2.0)
    dz = max(0.0, zb[0] - za[1], za[0] - zb[1])
    ra = footprint_corners(center_a, np.asarray(size_a, dtype=float), yaw_a)
    rb = footprint_corners(center_b, np.asarray(size_b, dtype=float), yaw_b)
    if _rectangles_overlap(ra, rb):
        dxy = 0.0
    else:
        dxy = min(_point_segment_distance(ra, rb, np.roll(rb, -1, axis=0)).min(),
                  _point_segment_distance(rb, ra, np.roll(ra, -1, axis=0)).min())
    return float(np.hypot(dxy, dz))


def points_in_footprint(points: np.ndarray, center, size, yaw: float, grow: float = 0.0) -> np.ndarray:
    """Whether world xy points ``(N, 2)`` fall inside a box footprint grown by ``grow`` metres. Returns ``(N,)``."""
    c, s = np.cos(yaw), np.sin(yaw)
    d = points - np.asarray(center[:2])
    lx = d[:, 0] * c + d[:, 1] * s
    ly = -d[:, 0] * s + d[:, 1] * c
    return (np.abs(lx) <= size[0] / 2.0 + grow) & (np.abs(ly) <= size[1] / 2.0 + grow)
