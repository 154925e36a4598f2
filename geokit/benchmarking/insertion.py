"""Geometry-token insertion: the vectorised collator code against a per-token Python-loop reference.

:func:`insert_geometry_tokens_loop` is the obvious implementation (walk every token of every row, append a camera
token after each temporal group and a scale token after each video, pad the rows); it has the signature and
output of :func:`geokit.models.mllms.insert_geometry_tokens` and is checked equal to it by the benchmark.
"""
from __future__ import annotations

import torch

from geokit.models.mllms.geometry_tokens import insert_geometry_tokens

from .measure import summarize_ms, time_call, torch_threads

#: Token ids of the synthetic batch (any distinct ids work).
VIDEO, CAMERA, SCALE, PAD, VISION_START, VISION_END, TEXT = 10, 11, 12, 0, 13, 14, 100


def insert_geometry_tokens_loop(input_ids: torch.Tensor, video_token_id: int, video_grid_thw: torch.Tensor,
                                spatial_merge_size: int, camera_token_id: int, scale_token_id: int,
                                pad_token_id: int, per_token: dict[str, tuple[torch.Tensor, int, int]] | None = None,
                                padding_side: str = 'right') -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-token Python-loop reference of :func:`~geokit.models.mllms.insert_geometry_tokens` (same arguments)."""
    grid = video_grid_thw.long().tolist()
    per_frame = [h * w // spatial_merge_size ** 2 for _, h, w in grid]
    per_video = [t * f for (t, _, _), f in zip(grid, per_frame)]
    per_token = per_token or {}
    ids = input_ids.tolist()
    values = {name: tensor.tolist() for name, (tensor, _, _) in per_token.items()}
    rows: list[list[int]] = []
    carried_rows: dict[str, list[list[int]]] = {name: [] for name in per_token}
    video, seen = 0, 0
    for b, row in enumerate(ids):
        out: list[int] = []
        extra: dict[str, list[int]] = {name: [] for name in per_token}
        for j, token in enumerate(row):
            out.append(token)
            for name in per_token:
                extra[name].append(values[name][b][j])
            if token != video_token_id:
                continue
            if video >= len(grid):
                raise ValueError('more video tokens than video_grid_thw implies')
            seen += 1
            inserted = []
            if seen % per_frame[video] == 0:
                inserted.append(camera_token_id)
            if seen == per_video[video]:
                inserted.append(scale_token_id)
                video, seen = video + 1, 0
            for new in inserted:
                out.append(new)
                for name, (_, fill, _) in per_token.items():
                    extra[name].append(fill)
        rows.append(out)
        for name in per_token:
            carried_rows[name].append(extra[name])
    if video != len(grid) or seen:
        raise ValueError('fewer video tokens than video_grid_thw implies')
    length = max(len(r) for r in rows)

    def pad(row: list[int], value: int) -> list[int]:
        fill = [value] * (length - len(row))
        return fill + row if padding_side == 'left' else row + fill

    new_ids = torch.tensor([pad(r, pad_token_id) for r in rows], dtype=input_ids.dtype)
    carried = {name: torch.tensor([pad(r, per_token[name][2]) for r in carried_rows[name]],
                                  dtype=per_token[name][0].dtype) for name in per_token}
    return new_ids, carried


def synthetic_batch(frames: int = 32, tokens_per_frame: int = 256, batch_size: int = 2, merge: int = 2,
                    seed: int = 0) -> dict:
    """A right-padded training batch shaped like the collator's: one video of ``frames`` temporal groups of
    ``tokens_per_frame`` merged tokens per row, a text prompt and an answer of different lengths per row.

    Returns ``insert_geometry_tokens``'s keyword arguments (``per_token`` carries ``attention_mask``,
    ``mm_token_type_ids`` and ``labels`` as :class:`~geokit.models.QwenVLDataPreprocessor` does).
    """
    side = int(round((tokens_per_frame * merge ** 2) ** 0.5))
    if side * side != tokens_per_frame * merge ** 2:
        raise ValueError(f'tokens_per_frame={tokens_per_frame} x merge**2 must be a square patch grid.')
    g = torch.Generator().manual_seed(seed)
    rows, labels, types = [], [], []
    for b in range(batch_size):
        prefix = torch.randint(TEXT, TEXT + 500, (20 + 7 * b,), generator=g).tolist()
        question = torch.randint(TEXT, TEXT + 500, (30 + 11 * b,), generator=g).tolist()
        answer = torch.randint(TEXT, TEXT + 500, (3 + b,), generator=g).tolist()
        video = [VISION_START] + [VIDEO] * (frames * tokens_per_frame) + [VISION_END]
        row = prefix + video + question + answer
        rows.append(row)
        labels.append([-100] * (len(row) - len(answer)) + answer)
        types.append([0] * len(prefix) + [0] + [2] * (frames * tokens_per_frame) + [0] * (len(row) - len(prefix)
                                                                                          - len(video) + 1))
    length = max(len(r) for r in rows)
    input_ids = torch.full((batch_size, length), PAD)
    attention_mask = torch.zeros(batch_size, length, dtype=torch.long)
    label_t = torch.full((batch_size, length), -100)
    type_t = torch.zeros(batch_size, length, dtype=torch.long)
    for b, row in enumerate(rows):
        input_ids[b, :len(row)] = torch.tensor(row)
        attention_mask[b, :len(row)] = 1
        label_t[b, :len(row)] = torch.tensor(labels[b])
        type_t[b, :len(row)] = torch.tensor(types[b])
    grid = torch.tensor([[frames, side, side]] * batch_size)
    return dict(input_ids=input_ids, video_token_id=VIDEO, video_grid_thw=grid, spatial_merge_size=merge,
                camera_token_id=CAMERA, scale_token_id=SCALE, pad_token_id=PAD,
                per_token={'attention_mask': (attention_mask, 1, 0), 'mm_token_type_ids': (type_t, 0, 0),
                           'labels': (label_t, -100, -100)})


def outputs_equal(a: tuple[torch.Tensor, dict], b: tuple[torch.Tensor, dict]) -> bool:
    """Whether two ``(input_ids, carried)`` insertion outputs are identical (values, shapes and dtypes)."""
    same = lambda x, y: x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y)  # noqa: E731
    return same(a[0], b[0]) and a[1].keys() == b[1].keys() and all(same(a[1][k], b[1][k]) for k in a[1])


def benchmark_insertion(frames: int = 32, tokens_per_frame: int = 256, batch_size: int = 2, reps: int = 5,
                        inner: int = 10, threads: int | None = 1) -> dict:
    """Time the vectorised insertion against the loop reference on :func:`synthetic_batch` (CPU tensors).

    The two run alternately ``reps`` times (the vectorised one ``inner`` times per rep, averaged) so that both see
    the same machine load. Both outputs are checked identical for both padding sides first. ``threads`` torch
    intra-op threads are used (1 by default: the loop is single-threaded, and so is a DataLoader worker; on a
    shared CPU, extra threads of these tiny ops mostly wait for each other); None keeps the current setting.

    Returns:
        ``{'frames', 'tokens_per_frame', 'batch_size', 'tokens', 'threads', 'identical', 'vectorised_ms',
        'loop_ms', 'speedup'}`` (times are :func:`~geokit.benchmarking.measure.summarize_ms` dicts; speed-up =
        ratio of the medians).
    """
    kwargs = synthetic_batch(frames, tokens_per_frame, batch_size)
    identical = all(outputs_equal(insert_geometry_tokens(**kwargs, padding_side=side),
                                  insert_geometry_tokens_loop(**kwargs, padding_side=side))
                    for side in ('right', 'left'))
    cpu = torch.device('cpu')
    with torch_threads(threads) as used_threads:
        insert_geometry_tokens(**kwargs)                                       # warm-up
        vectorised, loop = [], []
        for _ in range(reps):
            vectorised.append(time_call(lambda: [insert_geometry_tokens(**kwargs) for _ in range(inner)], cpu)
                              / inner)
            loop.append(time_call(lambda: insert_geometry_tokens_loop(**kwargs), cpu))
    vec_ms, loop_ms = summarize_ms(vectorised), summarize_ms(loop)
    return dict(frames=frames, tokens_per_frame=tokens_per_frame, batch_size=batch_size,
                tokens=int(kwargs['input_ids'].numel()), threads=used_threads, identical=identical,
                vectorised_ms=vec_ms, loop_ms=loop_ms, speedup=loop_ms['median'] / vec_ms['median'])
