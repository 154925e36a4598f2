"""VSI-Bench-style question/answer pairs from a SynthVSI scene's ground truth.

All eight VSI-Bench task types, with VSI-Bench's question phrasing and answer formats: numeric answers are a number
written as a string (counts, metres with one decimal, centimetres as an integer, square metres with one decimal);
multiple-choice answers are a letter and the options read ``'A. ...'``, ``'B. ...'``.

What the video shows decides what is asked: an object counts as *seen* when at least ``min_pixels`` pixels of it
are visible in some frame. Counting counts seen instances; appearance order uses the first frame each category is
seen; every other question only names seen objects, and objects referred to as "the <category>" are the only
instance of their category in the room. Objects are represented by their oriented bounding boxes; distances are
closest-point distances between boxes (:func:`~.boxes.box_distance`).
"""
from __future__ import annotations

import itertools

import numpy as np

from .boxes import box_distance

LETTERS = 'ABCD'
COUNT_Q = 'How many {category}(s) are in this room?'
ABS_DISTANCE_Q = ('Measuring from the closest point of each object, what is the direct distance between the {a} and '
                  'the {b} (in meters)?')
SIZE_Q = ('What is the length of the longest dimension (length, width, or height) of the {category}, measured in '
          'centimeters?')
ROOM_SIZE_Q = ('What is the size of this room (in square meters)? If multiple rooms are shown, estimate the size of '
               'the combined space.')
REL_DISTANCE_Q = ('Measuring from the closest point of each object, which of these objects ({choices}) is the closest '
                  'to the {anchor}?')
DIRECTION_Q = {
    'object_rel_direction_easy': ('If I am standing by the {pos} and facing the {face}, is the {query} to the left or '
                                  'the right of the {face}?'),
    'object_rel_direction_medium': ('If I am standing by the {pos} and facing the {face}, is the {query} to my left, '
                                    'right, or back? An object is to my back if I would have to turn at least 135 '
                                    'degrees in order to face it.'),
    'object_rel_direction_hard': ('If I am standing by the {pos} and facing the {face}, is the {query} to my '
                                  'front-left, front-right, back-left, or back-right? The directions refer to the '
                                  'quadrants of a Cartesian plane (if I am standing at the origin and facing along '
                                  'the positive y-axis).'),
}
ROUTE_Q = ('You are a robot beginning at the {start} facing the {face}. You want to navigate to the {goal}. You will '
           "perform the following actions (Note: for each [please fill in], choose either 'turn back,' 'turn left,' "
           "or 'turn right.'): {actions} You have reached the final destination.")
APPEARANCE_Q = 'What will be the first-time appearance order of the following categories in the video: {choices}?'

MIN_ANGLE_MARGIN_DEG = 12.0   # direction questions skip configurations this close to a class boundary
MIN_REL_DISTANCE_GAP = 0.15   # metres between the closest and the second-closest option
TURNS = ('Turn Left', 'Turn Right', 'Turn Back')


def seen_objects(pixel_counts: np.ndarray, min_pixels: int) -> dict[int, int]:
    """``{instance_id: first frame seen}`` from per-frame visible pixel counts ``(T, K + 1)`` (column = id)."""
    seen = {}
    for instance_id in range(1, pixel_counts.shape[1]):
        frames = np.nonzero(pixel_counts[:, instance_id] >= min_pixels)[0]
        if len(frames):
            seen[instance_id] = int(frames[0])
    return seen


def signed_angle_deg(forward: np.ndarray, target: np.ndarray) -> float:
    """Angle (degrees, (-180, 180]) from ``forward`` to ``target`` in the floor plane; positive = to the left."""
    cross = forward[0] * target[1] - forward[1] * target[0]
    return float(np.degrees(np.arctan2(cross, forward @ target)))


def direction_label(question_type: str, angle: float) -> str | None:
    """The answer class of a relative-direction angle, or None when it is too close to a class boundary."""
    a, m = abs(angle), MIN_ANGLE_MARGIN_DEG
    side = 'left' if angle > 0 else 'right'
    if question_type == 'object_rel_direction_easy':
        return side if m <= a <= 180 - m else None
    if question_type == 'object_rel_direction_medium':
        if a < 30 or abs(a - 135) < m:
            return None
        return 'back' if a >= 135 else side
    if min(a, abs(a - 90), 180 - a) < m:
        return None
    return ('front-' if a < 90 else 'back-') + side


def turn_label(angle: float) -> str | None:
    """Route-planning turn for a heading change (degrees), None when ambiguous (near straight or a boundary)."""
    a = abs(angle)
    if 55 <= a <= 125:
        return 'Turn Left' if angle > 0 else 'Turn Right'
    if a >= 150:
        return 'Turn Back'
    return None


def _mc(options: list[str], answer: str, rng: np.random.Generator) -> tuple[list[str], str]:
    order = rng.permutation(len(options))
    shuffled = [options[i] for i in order]
    return [f'{LETTERS[i]}. {text}' for i, text in enumerate(shuffled)], LETTERS[shuffled.index(answer)]


class _SceneFacts:
    """Seen objects of a scene and the lookups every task needs."""

    def __init__(self, scene: dict, pixel_counts: np.ndarray, min_pixels: int) -> None:
        self.scene = scene
        self.first_seen = seen_objects(pixel_counts, min_pixels)
        self.objects = {o['instance_id']: o for o in scene['objects']}
        self.seen_by_category: dict[str, list[dict]] = {}
        for instance_id in sorted(self.first_seen):
            obj = self.objects[instance_id]
            self.seen_by_category.setdefault(obj['category'], []).append(obj)
        totals: dict[str, int] = {}
        for obj in scene['objects']:
            totals[obj['category']] = totals.get(obj['category'], 0) + 1
        # "the <category>": the only instance of its category in the room, and seen in the video
        self.unique = sorted(c for c, objs in self.seen_by_category.items() if totals[c] == 1 and len(objs) == 1)

    def one(self, category: str) -> dict:
        return self.seen_by_category[category][0]

    def xy(self, category: str) -> np.ndarray:
        return np.array(self.one(category)['center'][:2])

    def distance(self, a: dict, b: dict) -> float:
        return box_distance(a['center'], a['size'], a['yaw'], b['center'], b['size'], b['yaw'])


def _counting(f: _SceneFacts, rng, k):
    categories = sorted(f.seen_by_category, key=lambda c: (-len(f.seen_by_category[c]), c))
    for category in categories[:k]:
        yield COUNT_Q.format(category=category), None, str(len(f.seen_by_category[category]))


def _abs_distance(f: _SceneFacts, rng, k):
    pairs = list(itertools.combinations(f.unique, 2))
    for i in rng.permutation(len(pairs))[:k]:
        a, b = pairs[i]
        distance = f.distance(f.one(a), f.one(b))
        yield ABS_DISTANCE_Q.format(a=a, b=b), None, f'{distance:.1f}'


def _size(f: _SceneFacts, rng, k):
    for i in rng.permutation(len(f.unique))[:k]:
        category = f.unique[i]
        yield SIZE_Q.format(category=category), None, str(int(round(max(f.one(category)['size']) * 100)))


def _room_size(f: _SceneFacts, rng, k):
    if k > 0:
        yield ROOM_SIZE_Q, None, f"{f.scene['room']['area']:.1f}"


def _rel_distance(f: _SceneFacts, rng, k):
    made = 0
    for anchor in [f.unique[i] for i in rng.permutation(len(f.unique))]:
        others = sorted(c for c in f.seen_by_category if c != anchor)
        if len(others) < 4 or made >= k:
            continue
        choices = [others[i] for i in rng.permutation(len(others))[:4]]
        dists = [min(f.distance(f.one(anchor), o) for o in f.seen_by_category[c]) for c in choices]
        ranked = np.sort(dists)
        if ranked[1] - ranked[0] < MIN_REL_DISTANCE_GAP:
            continue
        options, answer = _mc(choices, choices[int(np.argmin(dists))], rng)
        yield REL_DISTANCE_Q.format(choices=', '.join(choices), anchor=anchor), options, answer
        made += 1


def _rel_direction(question_type: str):
    classes = {'object_rel_direction_easy': ['left', 'right'],
               'object_rel_direction_medium': ['left', 'right', 'back'],
               'object_rel_direction_hard': ['front-left', 'front-right', 'back-left', 'back-right']}[question_type]

    def task(f: _SceneFacts, rng, k):
        triples = list(itertools.permutations(f.unique, 3))
        made = 0
        for i in rng.permutation(len(triples)):
            if made >= k:
                break
            pos, face, query = triples[i]
            forward, target = f.xy(face) - f.xy(pos), f.xy(query) - f.xy(pos)
            if min(np.linalg.norm(forward), np.linalg.norm(target)) < 0.5:
                continue
            label = direction_label(question_type, signed_angle_deg(forward, target))
            if label is None:
                continue
            options, answer = _mc(list(classes), label, rng)
            yield DIRECTION_Q[question_type].format(pos=pos, face=face, query=query), options, answer
            made += 1
    return task


def _route(f: _SceneFacts, rng, k):
    made = 0
    for _ in range(50 * max(k, 1)):
        if made >= k or len(f.unique) < 3:
            break
        length = min(len(f.unique), int(rng.integers(4, 6)))   # 2-3 turns (1 turn, 3 options, if few objects)
        stops = [f.unique[i] for i in rng.permutation(len(f.unique))[:length]]
        points = [f.xy(c) for c in stops]
        if min(np.linalg.norm(b - a) for a, b in zip(points[:-1], points[1:])) < 0.5:
            continue
        turns = [turn_label(signed_angle_deg(points[j] - points[j - 1], points[j + 1] - points[j]))
                 for j in range(1, len(points) - 1)]
        if any(t is None for t in turns):
            continue
        steps, number = [f'1. Go forward until the {stops[1]}'], 2
        for stop in stops[2:]:
            steps += [f'{number}. [please fill in]', f'{number + 1}. Go forward until the {stop}']
            number += 2
        answer = ', '.join(turns)
        wrong = sorted({', '.join(c) for c in itertools.product(TURNS, repeat=len(turns))} - {answer})
        choices = [answer] + [wrong[i] for i in rng.permutation(len(wrong))[:3]]
        options, letter = _mc(choices, answer, rng)
        yield (ROUTE_Q.format(start=stops[0], face=stops[1], goal=stops[-1], actions=' '.join(steps) + '.'),
               options, letter)
        made += 1


def _appearance_order(f: _SceneFacts, rng, k):
    first = {c: min(f.first_seen[o['instance_id']] for o in objs) for c, objs in f.seen_by_category.items()}
    by_frame: dict[int, list[str]] = {}
    for category, frame in sorted(first.items()):
        by_frame.setdefault(frame, []).append(category)
    if len(by_frame) < 4:
        return
    made, tries = 0, 0
    while made < k and tries < 20:
        tries += 1
        frames = sorted(rng.choice(sorted(by_frame), size=4, replace=False).tolist())
        chosen = [by_frame[t][int(rng.integers(len(by_frame[t])))] for t in frames]   # in order of appearance
        shown = [chosen[i] for i in rng.permutation(4)]
        answer = ', '.join(chosen)
        perms = sorted({', '.join(p) for p in itertools.permutations(chosen)} - {answer})
        options, letter = _mc([answer] + [perms[i] for i in rng.permutation(len(perms))[:3]], answer, rng)
        yield APPEARANCE_Q.format(choices=', '.join(shown)), options, letter
        made += 1


TASKS = {
    'object_counting': _counting,
    'object_abs_distance': _abs_distance,
    'object_size_estimation': _size,
    'room_size_estimation': _room_size,
    'object_rel_distance': _rel_distance,
    'object_rel_direction_easy': _rel_direction('object_rel_direction_easy'),
    'object_rel_direction_medium': _rel_direction('object_rel_direction_medium'),
    'object_rel_direction_hard': _rel_direction('object_rel_direction_hard'),
    'route_planning': _route,
    'obj_appearance_order': _appearance_order,
}


def generate_qa(scene: dict, pixel_counts: np.ndarray, min_pixels: int, rng: np.random.Generator,
                per_type: int = 2) -> list[dict]:
    """Question/answer pairs of every task type the scene supports (up to ``per_type`` each).

    Args:
        scene: the scene dict (:func:`~.scene.sample_scene`).
        pixel_counts: ``(T, K + 1)`` visible pixels of each instance id per frame (column 0 = room).
        min_pixels: pixels an object needs in one frame to count as seen.
        rng: numpy generator (deterministic per scene).
        per_type: maximum questions per question type.

    Returns:
        list of ``{'question_type', 'question', 'options' (list[str] | None), 'ground_truth' (str)}``.
    """
    facts = _SceneFacts(scene, pixel_counts, min_pixels)
    items = []
    for question_type, task in TASKS.items():
        for question, options, answer in task(facts, rng, per_type):
            items.append(dict(question_type=question_type, question=question, options=options, ground_truth=answer))
    return items
