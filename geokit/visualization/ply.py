"""PLY export (and a reader for the files written here) of coloured points and line edges — no open3d needed.

Format: ``vertex`` elements with ``float x, y, z`` and ``uchar red, green, blue``; optional ``edge`` elements with
``int vertex1, vertex2`` and ``uchar red, green, blue`` (MeshLab and Open3D's ``read_line_set`` read them).
"""
from __future__ import annotations

import os

import numpy as np
import torch

_VERTEX_DTYPE = np.dtype([('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('red', 'u1'), ('green', 'u1'), ('blue', 'u1')])
_EDGE_DTYPE = np.dtype([('vertex1', '<i4'), ('vertex2', '<i4'), ('red', 'u1'), ('green', 'u1'), ('blue', 'u1')])


def _to_uint8_colors(colors: torch.Tensor | np.ndarray | None, count: int) -> np.ndarray:
    if colors is None:
        return np.full((count, 3), 200, dtype=np.uint8)
    colors = np.asarray(colors)
    if colors.shape != (count, 3):
        raise ValueError(f'colors must be ({count}, 3), got {colors.shape}.')
    if colors.dtype == np.uint8:
        return colors
    return np.clip(np.round(colors.astype(np.float64) * 255), 0, 255).astype(np.uint8)


def write_ply(path: str, points: torch.Tensor | np.ndarray, colors: torch.Tensor | np.ndarray | None = None,
              edges: torch.Tensor | np.ndarray | None = None, edge_colors: torch.Tensor | np.ndarray | None = None,
              binary: bool = True) -> str:
    """Write points (and optional edges) to a PLY file, atomically.

    Args:
        points: ``(N, 3)``. colors: ``(N, 3)`` float in ``[0, 1]`` or uint8; ``None`` = light grey.
        edges: ``(E, 2)`` vertex indices. edge_colors: ``(E, 3)`` like ``colors``.
        binary: binary little endian (default) or ASCII.
    Returns:
        ``path``.
    """
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f'points must be (N, 3), got {points.shape}.')
    vertex = np.empty(points.shape[0], dtype=_VERTEX_DTYPE)
    vertex['x'], vertex['y'], vertex['z'] = points.T
    rgb = _to_uint8_colors(colors, points.shape[0])
    vertex['red'], vertex['green'], vertex['blue'] = rgb.T
    edge = np.empty(0, dtype=_EDGE_DTYPE)
    if edges is not None:
        edges = np.asarray(edges, dtype=np.int64)
        if edges.ndim != 2 or edges.shape[1] != 2 or (edges.size and (edges.min() < 0 or edges.max() >= len(points))):
            raise ValueError(f'edges must be (E, 2) indices into the {len(points)} points, got shape {edges.shape}.')
        edge = np.empty(edges.shape[0], dtype=_EDGE_DTYPE)
        edge['vertex1'], edge['vertex2'] = edges.T
        erg = _to_uint8_colors(edge_colors, edges.shape[0])
        edge['red'], edge['green'], edge['blue'] = erg.T
    header = ['ply', f'format {"binary_little_endian" if binary else "ascii"} 1.0', 'comment written by geokit',
              f'element vertex {len(vertex)}', 'property float x', 'property float y', 'property float z',
              'property uchar red', 'property uchar green', 'property uchar blue']
    if len(edge):
        header += [f'element edge {len(edge)}', 'property int vertex1', 'property int vertex2',
                   'property uchar red', 'property uchar green', 'property uchar blue']
    header.append('end_header')
    tmp_path = f'{path}.tmp{os.getpid()}'
    with open(tmp_path, 'wb') as handle:
        handle.write(('\n'.join(header) + '\n').encode('ascii'))
        if binary:
            handle.write(vertex.tobytes())
            handle.write(edge.tobytes())
        else:
            for row in vertex:
                handle.write(f'{row[0]:.6g} {row[1]:.6g} {row[2]:.6g} {row[3]} {row[4]} {row[5]}\n'.encode())
            for row in edge:
                handle.write(f'{row[0]} {row[1]} {row[2]} {row[3]} {row[4]}\n'.encode())
    os.replace(tmp_path, path)
    return path


def read_ply(path: str) -> dict[str, np.ndarray]:
    """Read a PLY written by :func:`write_ply`: ``{'points', 'colors' (uint8), 'edges', 'edge_colors'}``."""
    with open(path, 'rb') as handle:
        header = []
        while True:
            line = handle.readline()
            if not line:
                raise ValueError(f'{path}: no end_header; not a PLY file.')
            header.append(line.decode('ascii').strip())
            if header[-1] == 'end_header':
                break
        body = handle.read()
    if header[0] != 'ply':
        raise ValueError(f'{path} is not a PLY file (first line {header[0]!r}).')
    binary = 'binary_little_endian' in header[1]
    counts = {line.split()[1]: int(line.split()[2]) for line in header if line.startswith('element')}
    num_vertex, num_edge = counts.get('vertex', 0), counts.get('edge', 0)
    if binary:
        vertex = np.frombuffer(body, dtype=_VERTEX_DTYPE, count=num_vertex)
        edge = np.frombuffer(body, dtype=_EDGE_DTYPE, count=num_edge, offset=num_vertex * _VERTEX_DTYPE.itemsize)
        points = np.stack([vertex['x'], vertex['y'], vertex['z']], 1)
        colors = np.stack([vertex['red'], vertex['green'], vertex['blue']], 1)
        edges = np.stack([edge['vertex1'], edge['vertex2']], 1).astype(np.int64)
        edge_colors = np.stack([edge['red'], edge['green'], edge['blue']], 1)
    else:
        rows = body.decode('ascii').split('\n')
        vertex_rows = np.array([r.split() for r in rows[:num_vertex]], dtype=np.float64).reshape(num_vertex, 6)
        edge_rows = np.array([r.split() for r in rows[num_vertex:num_vertex + num_edge]],
                             dtype=np.int64).reshape(num_edge, 5)
        points, colors = vertex_rows[:, :3].astype(np.float32), vertex_rows[:, 3:].astype(np.uint8)
        edges, edge_colors = edge_rows[:, :2], edge_rows[:, 2:].astype(np.uint8)
    return dict(points=points, colors=colors, edges=edges, edge_colors=edge_colors)
