"""Procedural room layouts: a rectangular room and 3-20 non-interpenetrating objects.

A scene is a JSON-able dict (written verbatim into ``scene.json``)::

    {'room': {'size': [Lx, Ly, height], 'area': Lx * Ly},          # metres, square metres
     'objects': [{'instance_id': 1, 'category': 'chair', 'center': [x, y, z], 'size': [l, w, h], 'yaw': rad,
                  'placement': 'floor' | 'wall' | 'on_table'}, ...]}

World frame (see :mod:`geokit.datasets.synthvsi.boxes`): z up, floor at z = 0, room ``[0, Lx] x [0, Ly]``.
``center`` is the centre of the object's oriented bounding box; ``instance_id`` is the value the object has in the
rendered instance maps (0 = room walls, floor and ceiling).
"""
from __future__ import annotations

import numpy as np

from .boxes import boxes_overlap
from .categories import CATEGORIES, CATEGORY_BY_NAME, Category

ROOM_SIDE_RANGE = (2.5, 12.0)
ROOM_HEIGHT_RANGE = (2.4, 3.2)
OBJECT_COUNT_RANGE = (3, 20)
WALL_GAP = 0.01          # wall-mounted objects sit this far in front of the wall
PLACEMENT_MARGIN = 0.10  # minimum free gap between object footprints (metres)
FLOOR_AREA_PER_OBJECT = 2.0


def _sample_size(category: Category, rng: np.random.Generator, room_height: float) -> np.ndarray:
    size = np.array([rng.uniform(lo, hi) for lo, hi in category.size_range])
    if category.placement == 'wall':
        size[2] = min(size[2], room_height - category.elevation[1] - 0.1)
    return size


def _collision_box(obj: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """The box used for placement checks: doors keep the floor in front of them clear."""
    center, size, yaw = np.array(obj['center']), np.array(obj['size']), obj['yaw']
    keepout = CATEGORY_BY_NAME[obj['category']].keepout
    if keepout > 0:
        back = np.array([-np.sin(yaw), np.cos(yaw), 0.0])  # world direction of local +y (towards the wall)
        center = center - back * (keepout / 2.0)
        size = size + np.array([0.0, keepout, 0.0])
    return center, size, yaw


def _fits(candidate: dict, placed: list[dict], room: np.ndarray, ignore: int | None = None) -> bool:
    center, size, yaw = _collision_box(candidate)
    c, s = abs(np.cos(yaw)), abs(np.sin(yaw))
    half_x = (size[0] * c + size[1] * s) / 2.0
    half_y = (size[0] * s + size[1] * c) / 2.0
    if center[0] - half_x < -1e-6 or center[0] + half_x > room[0] + 1e-6:
        return False
    if center[1] - half_y < -1e-6 or center[1] + half_y > room[1] + 1e-6:
        return False
    if center[2] + size[2] / 2.0 > room[2]:
        return False
    for obj in placed:
        if ignore is not None and obj['instance_id'] == ignore:
            continue
        if boxes_overlap(center, size, yaw, *_collision_box(obj), margin=PLACEMENT_MARGIN):
            return False
    return True


def _against_wall_pose(size: np.ndarray, room: np.ndarray, rng: np.random.Generator, gap: float) -> tuple:
    """Centre xy and yaw of a box whose back (+y local) faces a random wall, at ``gap`` from it."""
    wall = int(rng.integers(4))
    along = room[0] if wall in (0, 2) else room[1]
    if along < size[0] + 0.2:
        return None
    t = rng.uniform(0.1 + size[0] / 2.0, along - 0.1 - size[0] / 2.0)
    depth = gap + size[1] / 2.0
    # wall 0: y = 0 (back towards -y), 1: x = Lx, 2: y = Ly, 3: x = 0. yaw turns local +y onto the wall normal.
    if wall == 0:
        return np.array([t, depth]), np.pi
    if wall == 1:
        return np.array([room[0] - depth, t]), -np.pi / 2.0
    if wall == 2:
        return np.array([t, room[1] - depth]), 0.0
    return np.array([depth, t]), np.pi / 2.0


def _propose(category: Category, size: np.ndarray, room: np.ndarray, placed: list[dict],
             rng: np.random.Generator) -> tuple | None:
    """Propose (center, yaw) for one object, or None when its placement rule cannot apply."""
    if category.placement == 'wall' or (category.placement == 'floor' and rng.random() < category.against_wall):
        pose = _against_wall_pose(size, room, rng, WALL_GAP if category.placement == 'wall' else 0.02)
        if pose is None:
            return None
        xy, yaw = pose
        bottom = rng.uniform(*category.elevation) if category.placement == 'wall' else 0.0
        return np.array([xy[0], xy[1], bottom + size[2] / 2.0]), yaw
    if category.placement == 'on_table':
        tables = [o for o in placed if o['category'] == 'table']
        if not tables:
            return None
        table = tables[int(rng.integers(len(tables)))]
        tl, tw, th = table['size']
        if tl < size[0] + 0.05 or tw < size[1] + 0.05:
            return None
        local = np.array([rng.uniform(-(tl - size[0]) / 2, (tl - size[0]) / 2),
                          rng.uniform(-(tw - size[1]) / 2, (tw - size[1]) / 2)])
        ty = table['yaw']
        c, s = np.cos(ty), np.sin(ty)
        xy = np.array(table['center'][:2]) + np.array([c * local[0] - s * local[1], s * local[0] + c * local[1]])
        yaw = ty + (np.pi if rng.random() < 0.5 else 0.0)
        return np.array([xy[0], xy[1], table['center'][2] + th / 2.0 + size[2] / 2.0]), yaw
    radius = np.hypot(size[0], size[1]) / 2.0
    if room[0] < 2 * radius + 0.1 or room[1] < 2 * radius + 0.1:
        return None
    xy = np.array([rng.uniform(radius, room[0] - radius), rng.uniform(radius, room[1] - radius)])
    return np.array([xy[0], xy[1], size[2] / 2.0]), float(rng.uniform(-np.pi, np.pi))


def sample_scene(rng: np.random.Generator, max_tries_per_object: int = 40) -> dict:
    """Sample one room with 3-20 objects (fewer in small rooms) from at least 12 categories' worth of variety.

    Objects never interpenetrate (footprints keep a 10 cm gap, monitors stand on tables). Returns the scene dict
    described in the module docstring.
    """
    room = np.array([rng.uniform(*ROOM_SIDE_RANGE), rng.uniform(*ROOM_SIDE_RANGE), rng.uniform(*ROOM_HEIGHT_RANGE)])
    area = room[0] * room[1]
    max_objects = int(np.clip(area / FLOOR_AREA_PER_OBJECT, OBJECT_COUNT_RANGE[0], OBJECT_COUNT_RANGE[1]))
    target = int(rng.integers(OBJECT_COUNT_RANGE[0], max_objects + 1))
    # Category draws: a random subset, with a few categories repeated so that counting questions are non-trivial.
    order = rng.permutation(len(CATEGORIES))
    names = [CATEGORIES[i].name for i in order[:min(target, len(CATEGORIES))]]
    while len(names) < target:
        names.append(names[int(rng.integers(len(names)))])
    for _ in range(int(rng.integers(0, 3))):
        names.append(names[int(rng.integers(len(names)))])
    # floor furniture first, then wall objects, then things that stand on tables
    rank = {'floor': 0, 'wall': 1, 'on_table': 2}
    names = sorted(names[:OBJECT_COUNT_RANGE[1]], key=lambda n: rank[CATEGORY_BY_NAME[n].placement])

    placed: list[dict] = []
    for name in names:
        category = CATEGORY_BY_NAME[name]
        for _ in range(max_tries_per_object):
            size = _sample_size(category, rng, room[2])
            proposal = _propose(category, size, room, placed, rng)
            if proposal is None:
                continue
            center, yaw = proposal
            candidate = dict(instance_id=len(placed) + 1, category=name, center=center.tolist(),
                             size=size.tolist(), yaw=float(np.arctan2(np.sin(yaw), np.cos(yaw))),
                             placement=category.placement)
            if _fits(candidate, placed, room):
                placed.append(candidate)
                break
    return dict(room=dict(size=room.tolist(), area=float(area)), objects=placed)
