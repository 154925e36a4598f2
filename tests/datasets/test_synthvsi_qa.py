"""Every SynthVSI answer re-derived from scene.json + the instance maps, independently of the generator's code."""
from __future__ import annotations

import itertools
import json
import re

import numpy as np
from safetensors.torch import load_file

from geokit.datasets.prompts import MCA_QUESTION_TYPES, NA_QUESTION_TYPES

ALL_TYPES = set(MCA_QUESTION_TYPES) | set(NA_QUESTION_TYPES)


def _project_to_box(p, obj):
    c, s = np.cos(obj['yaw']), np.sin(obj['yaw'])
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])        # world from local
    local = rot.T @ (p - np.array(obj['center']))
    return np.array(obj['center']) + rot @ np.clip(local, -np.array(obj['size']) / 2, np.array(obj['size']) / 2)


def _distance(a, b, iterations=400):
    """Closest-point distance of two convex boxes by alternating projections (converges to the distance)."""
    p = np.array(a['center'], dtype=float)
    for _ in range(iterations):
        q = _project_to_box(p, b)
        p = _project_to_box(q, a)
    return float(np.linalg.norm(p - _project_to_box(p, b)))


def _angle(forward, target):
    return np.degrees(np.arctan2(forward[0] * target[1] - forward[1] * target[0], forward @ target))


def _letter(options, text):
    matches = [o[0] for o in options if o[3:] == text]
    assert len(matches) == 1, (options, text)
    return matches[0]


class _Truth:
    def __init__(self, scene_dir):
        self.scene = json.loads((scene_dir / 'scene.json').read_text())
        instance = load_file(str(scene_dir / 'geometry.safetensors'))['instance'].numpy()
        min_pixels = self.scene['visibility']['min_pixels']
        self.first = {}
        for t, frame in enumerate(instance):
            ids, counts = np.unique(frame, return_counts=True)
            for k, n in zip(ids.tolist(), counts.tolist()):
                if k > 0 and n >= min_pixels and k not in self.first:
                    self.first[k] = t
        self.seen = [o for o in self.scene['objects'] if o['instance_id'] in self.first]

    def seen_of(self, category):
        return [o for o in self.seen if o['category'] == category]

    def the(self, category):
        everywhere = [o for o in self.scene['objects'] if o['category'] == category]
        assert len(everywhere) == 1 and everywhere[0] in self.seen, f'"the {category}" must be unique and seen'
        return everywhere[0]

    def xy(self, category):
        return np.array(self.the(category)['center'][:2])


def _check(item, truth):
    q, qt, gt, options = item['question'], item['question_type'], item['ground_truth'], item['options']
    if qt == 'object_counting':
        category = re.fullmatch(r'How many (.+)\(s\) are in this room\?', q).group(1)
        assert int(gt) == len(truth.seen_of(category)) >= 1
    elif qt == 'object_abs_distance':
        a, b = re.search(r'between the (.+) and the (.+) \(in meters\)\?$', q).groups()
        assert abs(float(gt) - _distance(truth.the(a), truth.the(b))) <= 0.05 + 1e-3
    elif qt == 'object_size_estimation':
        category = re.search(r'height\) of the (.+), measured in centimeters\?$', q).group(1)
        assert abs(int(gt) - max(truth.the(category)['size']) * 100) <= 0.5 + 1e-6
    elif qt == 'room_size_estimation':
        lx, ly, _ = truth.scene['room']['size']
        assert abs(float(gt) - lx * ly) <= 0.05 + 1e-6
    elif qt == 'object_rel_distance':
        choices, anchor = re.search(r'objects \((.+)\) is the closest to the (.+)\?$', q).groups()
        choices = choices.split(', ')
        dists = [min(_distance(truth.the(anchor), o) for o in truth.seen_of(c)) for c in choices]
        assert gt == _letter(options, choices[int(np.argmin(dists))])
    elif qt.startswith('object_rel_direction'):
        pos, face, query = re.match(r'If I am standing by the (.+) and facing the (.+), is the (.+?) to ', q).groups()
        angle = _angle(truth.xy(face) - truth.xy(pos), truth.xy(query) - truth.xy(pos))
        side = 'left' if angle > 0 else 'right'
        if qt.endswith('easy'):
            label = side
        elif qt.endswith('medium'):
            label = 'back' if abs(angle) >= 135 else side
        else:
            label = ('front-' if abs(angle) < 90 else 'back-') + side
        assert gt == _letter(options, label)
    elif qt == 'route_planning':
        start, face, goal = re.match(r'You are a robot beginning at the (.+) facing the (.+)\. You want to navigate '
                                     r'to the (.+?)\. ', q).groups()
        stops = [start] + re.findall(r'Go forward until the (.+?)(?= \d+\.|\.? You have reached)', q)
        assert stops[1] == face and stops[-1] == goal
        turns = []
        for a, b, c in zip(stops, stops[1:], stops[2:]):
            angle = _angle(truth.xy(b) - truth.xy(a), truth.xy(c) - truth.xy(b))
            turns.append('Turn Back' if abs(angle) >= 135 else ('Turn Left' if angle > 0 else 'Turn Right'))
        assert gt == _letter(options, ', '.join(turns))
    elif qt == 'obj_appearance_order':
        categories = re.search(r'in the video: (.+)\?$', q).group(1).split(', ')
        first = {c: min(truth.first[o['instance_id']] for o in truth.seen_of(c)) for c in categories}
        assert len(set(first.values())) == 4
        assert gt == _letter(options, ', '.join(sorted(categories, key=first.get)))
    else:
        raise AssertionError(f'unexpected question type {qt}')


def test_every_answer_matches_an_independent_derivation(tiny_synthvsi):
    seen_types = set()
    for split in ('train', 'val', 'test'):
        for row in map(json.loads, (tiny_synthvsi / f'{split}.jsonl').read_text().splitlines()):
            if split == 'train':   # VSI-590K rows carry the question inside the human turn
                human = row['conversations'][0]['value']
                question = human.split('\n')[2]
                item = dict(question=question, question_type=row['question_type'], options=row['options'],
                            ground_truth=row['conversations'][1]['value'])
            else:
                item = row
            _check(item, _Truth(tiny_synthvsi / split / row['scene_name']))
            seen_types.add(item['question_type'])
    assert seen_types == ALL_TYPES, f'missing task types: {ALL_TYPES - seen_types}'


def test_formats_follow_vsibench_and_vsi590k(tiny_synthvsi):
    for split in ('val', 'test'):
        for row in map(json.loads, (tiny_synthvsi / f'{split}.jsonl').read_text().splitlines()):
            assert {'id', 'dataset', 'scene_name', 'question_type', 'question', 'options', 'ground_truth'} <= set(row)
            if row['question_type'] in MCA_QUESTION_TYPES:
                letters = [o[:3] for o in row['options']]
                assert letters == [f'{x}. ' for x in 'ABCD'[:len(letters)]] and len(letters) >= 2
                assert row['ground_truth'] in 'ABCD'[:len(letters)]
            else:
                assert row['options'] is None
                float(row['ground_truth'])
    for row in map(json.loads, (tiny_synthvsi / 'train.jsonl').read_text().splitlines()):
        human, gpt = row['conversations']
        assert human['from'] == 'human' and human['value'].startswith('<video>\nThese are frames of a video.\n')
        assert gpt['from'] == 'gpt' and row['video'].endswith('video.mp4')
    ids = [json.loads(r)['id'] for r in (tiny_synthvsi / 'test.jsonl').read_text().splitlines()]
    assert ids == list(range(len(ids)))


def test_appearance_options_are_distinct_permutations(tiny_synthvsi):
    for split in ('val', 'test'):
        for row in map(json.loads, (tiny_synthvsi / f'{split}.jsonl').read_text().splitlines()):
            if row['question_type'] in ('obj_appearance_order', 'route_planning', 'object_rel_distance'):
                texts = [o[3:] for o in row['options']]
                single_turn = row['question_type'] == 'route_planning' and len(texts[0].split(', ')) == 1
                assert len(set(texts)) == len(texts) == (3 if single_turn else 4)
            if row['question_type'] == 'obj_appearance_order':
                base = sorted(row['options'][0][3:].split(', '))
                assert all(sorted(t[3:].split(', ')) == base for t in row['options'])
                assert set(itertools.chain.from_iterable(t[3:].split(', ') for t in row['options'])) == set(base)
