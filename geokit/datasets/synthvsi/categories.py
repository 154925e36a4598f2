"""Indoor object categories of SynthVSI: metric size ranges, placement rules, colours and part layouts.

Object-local frame: x = length (along a wall for wall-mounted objects), y = depth (+y is the object's back),
z = up. Sizes are full extents in metres. A part is an axis-aligned sub-box of the object's bounding box, given as
``((x0, x1), (y0, y1), (z0, z1))`` fractions in [0, 1]; the parts of a category span the whole box on every axis, so
the object's oriented bounding box (what the QA uses) is exactly the union of its parts' extents.
"""
from __future__ import annotations

from dataclasses import dataclass, field

FULL = ((0.0, 1.0), (0.0, 1.0), (0.0, 1.0))

#: Texture patterns the renderer knows (index = pattern id).
PATTERNS = ('plain', 'stripes', 'checker', 'grain')


@dataclass(frozen=True)
class Category:
    """One object category.

    Attributes:
        name: the category name used in questions (VSI-Bench style, lower case).
        size_range: ``((l_min, l_max), (w_min, w_max), (h_min, h_max))`` in metres.
        placement: ``'floor'`` (stands on the floor), ``'wall'`` (thin, backed against a wall at ``elevation``),
            or ``'on_table'`` (stands on a table top).
        color: base RGB albedo in [0, 1].
        pattern: one of :data:`PATTERNS`.
        parts: part boxes as fractions of the object box, with a per-part albedo multiplier.
        elevation: ``(min, max)`` height of the box bottom above the floor for wall objects (metres).
        against_wall: probability that a floor object is placed with its back against a wall.
        keepout: extra free depth (metres) in front of the object kept clear of other objects (doors).
    """

    name: str
    size_range: tuple
    placement: str
    color: tuple
    pattern: str = 'plain'
    parts: tuple = field(default=((FULL, 1.0),))
    elevation: tuple = (0.0, 0.0)
    against_wall: float = 0.0
    keepout: float = 0.0


CATEGORIES: tuple[Category, ...] = (
    Category('chair', ((0.42, 0.55), (0.42, 0.55), (0.80, 1.00)), 'floor', (0.80, 0.35, 0.10), 'grain',
             parts=((((0, 1), (0, 1), (0, 0.5)), 1.0), (((0, 1), (0.82, 1), (0.5, 1)), 0.8))),
    Category('table', ((0.80, 1.80), (0.60, 1.00), (0.70, 0.78)), 'floor', (0.55, 0.38, 0.22), 'grain',
             parts=((((0, 1), (0, 1), (0.9, 1)), 1.0), (((0, 0.06), (0.05, 0.95), (0, 0.9)), 0.7),
                    (((0.94, 1), (0.05, 0.95), (0, 0.9)), 0.7))),
    Category('sofa', ((1.60, 2.40), (0.80, 1.00), (0.75, 0.95)), 'floor', (0.20, 0.30, 0.75), 'checker',
             parts=((((0, 1), (0, 1), (0, 0.5)), 1.0), (((0, 1), (0.75, 1), (0.5, 1)), 0.85),
                    (((0, 0.12), (0, 0.75), (0.5, 0.75)), 0.9), (((0.88, 1), (0, 0.75), (0.5, 0.75)), 0.9)),
             against_wall=0.6),
    Category('bed', ((1.90, 2.20), (0.90, 1.80), (0.90, 1.15)), 'floor', (0.92, 0.92, 0.95), 'stripes',
             parts=((((0, 1), (0, 1), (0, 0.5)), 1.0), (((0.94, 1), (0, 1), (0.5, 1)), 0.55)), against_wall=0.8),
    Category('tv', ((0.90, 1.60), (0.05, 0.10), (0.55, 0.95)), 'wall', (0.06, 0.06, 0.08), 'plain',
             elevation=(0.75, 1.10)),
    Category('door', ((0.80, 1.00), (0.04, 0.06), (2.00, 2.10)), 'wall', (0.62, 0.45, 0.30), 'grain',
             keepout=0.8),
    Category('refrigerator', ((0.60, 0.90), (0.60, 0.75), (1.60, 1.95)), 'floor', (0.85, 0.88, 0.90), 'plain',
             against_wall=0.8),
    Category('trash bin', ((0.25, 0.40), (0.25, 0.40), (0.35, 0.70)), 'floor', (0.15, 0.55, 0.25), 'stripes'),
    Category('plant', ((0.30, 0.60), (0.30, 0.60), (0.50, 1.60)), 'floor', (0.10, 0.65, 0.12), 'checker',
             parts=((((0.2, 0.8), (0.2, 0.8), (0, 0.3)), 0.55), (((0, 1), (0, 1), (0.3, 1)), 1.0))),
    Category('lamp', ((0.30, 0.45), (0.30, 0.45), (1.40, 1.80)), 'floor', (0.98, 0.90, 0.45), 'plain',
             parts=((((0.44, 0.56), (0.44, 0.56), (0, 0.75)), 0.35), (((0, 1), (0, 1), (0.75, 1)), 1.0))),
    Category('cabinet', ((0.60, 1.50), (0.35, 0.60), (0.80, 2.00)), 'floor', (0.60, 0.20, 0.45), 'stripes',
             against_wall=0.7),
    Category('monitor', ((0.50, 0.75), (0.15, 0.25), (0.35, 0.55)), 'on_table', (0.25, 0.25, 0.30), 'plain',
             parts=((((0, 1), (0.4, 0.6), (0.3, 1)), 1.0), (((0.42, 0.58), (0, 1), (0, 0.3)), 0.6))),
    Category('bookshelf', ((0.60, 1.20), (0.25, 0.40), (1.20, 2.00)), 'floor', (0.45, 0.25, 0.10), 'checker',
             against_wall=0.8),
    Category('stool', ((0.30, 0.45), (0.30, 0.45), (0.45, 0.75)), 'floor', (0.90, 0.55, 0.65), 'grain'),
    Category('washer', ((0.55, 0.65), (0.55, 0.65), (0.80, 0.90)), 'floor', (0.75, 0.80, 0.95), 'checker',
             against_wall=0.7),
    Category('toilet', ((0.65, 0.75), (0.36, 0.45), (0.70, 0.80)), 'floor', (0.95, 0.97, 1.00), 'grain',
             parts=((((0, 0.75), (0.1, 0.9), (0, 0.55)), 1.0), (((0.75, 1), (0, 1), (0, 1)), 0.9)),
             against_wall=0.5),
    Category('window', ((0.60, 1.80), (0.04, 0.06), (0.80, 1.40)), 'wall', (0.55, 0.80, 0.98), 'stripes',
             elevation=(0.80, 1.00)),
)

CATEGORY_BY_NAME: dict[str, Category] = {c.name: c for c in CATEGORIES}
