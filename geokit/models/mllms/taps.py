"""Hidden-state taps: capture the LLM's states at chosen layers with forward hooks and slice out token groups.

Layer numbering follows Hugging Face's ``hidden_states`` tuple: layer ``k`` (1..L) is the output of decoder layer
``k - 1`` (before the final norm); negative numbers count from the end (``-1`` = ``L``). Only the layers some
objective asks for are kept, and only during the forward pass of the model (hooks are removed afterwards, so
gradient-checkpoint recomputation in the backward pass never overwrites them).

The objective's ``tap`` config keys and what each token kind yields: docs/architecture.md, "Taps, heads and losses".
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

TOKEN_KINDS = ('video', 'camera', 'scale')


def teacher_to_llm_layer(teacher_layer: int, teacher_num_layers: int, llm_num_layers: int) -> int:
    """GeoVR's mapping of teacher layer ``i`` (0-based) to LLM layer ``round((i + 1) / L_teacher * L_llm)``.

    Rounds half up (e.g. 2.5 -> 3); the result is clamped to ``1..L_llm``.
    """
    value = (teacher_layer + 1) / teacher_num_layers * llm_num_layers
    return min(max(int(math.floor(value + 0.5)), 1), llm_num_layers)


@dataclass(frozen=True)
class TapRequest:
    """What one objective reads from the LLM.

    Attributes:
        tokens: ``'video'`` (``(B, T', h, w, D)`` per layer), ``'camera'`` (``(B, T', D)``) or ``'scale'``
            (``(B, D)``); ``T'`` is the number of temporal groups.
        layers: 1-based LLM layers, in the order the head receives them.
        teacher_layers: the teacher layers these LLM layers stand for (alignment/depth targets), or ``None``.
    """

    tokens: str
    layers: tuple[int, ...]
    teacher_layers: tuple[int, ...] | None = None

    @classmethod
    def from_config(cls, cfg: dict, llm_num_layers: int, key: str = 'tap') -> TapRequest:
        """Build from ``dict(tokens=..., layers=[...])`` or ``dict(tokens=..., teacher_layers=[...],
        teacher_num_layers=N)`` (the latter maps layers with :func:`teacher_to_llm_layer`)."""
        cfg = dict(cfg)
        tokens = cfg.pop('tokens', None)
        if tokens not in TOKEN_KINDS:
            raise ValueError(f'{key}.tokens must be one of {TOKEN_KINDS}, got {tokens!r}.')
        teacher_layers = cfg.pop('teacher_layers', None)
        if teacher_layers is not None:
            if 'teacher_num_layers' not in cfg:
                raise ValueError(f'{key}: teacher_layers={teacher_layers} needs teacher_num_layers (the depth of the '
                                 f'teacher, e.g. 24 for VGGT-1B) to map them onto LLM layers.')
            num = cfg.pop('teacher_num_layers')
            outside = [i for i in teacher_layers if not 0 <= int(i) < num]
            if outside:
                raise ValueError(f'{key}: teacher_layers {outside} are outside 0..{num - 1} (teacher_num_layers={num}: '
                                 f'the teacher has {num} layers, 0-based). Use layers the teacher has.')
            layers = tuple(teacher_to_llm_layer(i, num, llm_num_layers) for i in teacher_layers)
            teacher_layers = tuple(int(i) for i in teacher_layers)
            cfg.pop('layers', None)
        else:
            layers = tuple(int(k) if k > 0 else llm_num_layers + 1 + int(k) for k in cfg.pop('layers', [-1]))
        if cfg:
            raise ValueError(f'{key} has unknown keys {sorted(cfg)}; use tokens, layers or teacher_layers + '
                             f'teacher_num_layers.')
        bad = [k for k in layers if not 1 <= k <= llm_num_layers]
        if bad:
            raise ValueError(f'{key}: layers {bad} are outside 1..{llm_num_layers} (the LLM has {llm_num_layers} '
                             f'decoder layers; -1 is the last).')
        return cls(tokens, layers, teacher_layers)


class HiddenStateTaps:
    """Forward hooks on decoder layers that keep their outputs ``(B, L, D)`` for one forward pass."""

    def __init__(self, decoder_layers: nn.ModuleList) -> None:
        self.decoder_layers = decoder_layers

    @contextmanager
    def capture(self, layers: Sequence[int]) -> Iterator[dict[int, torch.Tensor]]:
        """Context in which the outputs of the given 1-based layers are stored in the yielded dict."""
        states: dict[int, torch.Tensor] = {}
        handles = []
        for layer in sorted(set(layers)):
            def hook(module: nn.Module, args: tuple, output, layer: int = layer) -> None:
                states[layer] = output[0] if isinstance(output, tuple) else output
            handles.append(self.decoder_layers[layer - 1].register_forward_hook(hook))
        try:
            yield states
        finally:
            for handle in handles:
                handle.remove()


@dataclass
class Taps:
    """Token groups sliced from captured hidden states, keyed by 1-based layer.

    Attributes:
        video: ``{layer: (B, T', h, w, D)}`` video tokens (``h, w`` after the ViT's spatial merge).
        camera: ``{layer: (B, T', D)}`` camera tokens, one per temporal group.
        scale: ``{layer: (B, D)}`` scale tokens, one per video.
    """

    video: dict[int, torch.Tensor] = field(default_factory=dict)
    camera: dict[int, torch.Tensor] = field(default_factory=dict)
    scale: dict[int, torch.Tensor] = field(default_factory=dict)

    def select(self, request: TapRequest) -> list[torch.Tensor]:
        group = getattr(self, request.tokens)
        return [group[layer] for layer in request.layers]

    @classmethod
    def gather(cls, states: dict[int, torch.Tensor], requests: Sequence[TapRequest], input_ids: torch.Tensor,
               video_grid_thw: torch.Tensor, spatial_merge_size: int, token_ids: dict[str, int]) -> Taps:
        """Slice the requested token groups out of ``states``.

        Args:
            states: ``{layer: (B, L, D)}`` from :meth:`HiddenStateTaps.capture`.
            requests: what to slice.
            input_ids: ``(B, L)``; locates the tokens.
            video_grid_thw: ``(B, 3)`` one video per sample, all with the same grid.
            spatial_merge_size: the ViT merger's spatial factor.
            token_ids: ``{'video': id, 'camera': id, 'scale': id}`` (+ ``'camera_first'`` if the backbone has one).
        """
        batch = input_ids.shape[0]
        grid = video_grid_thw.long()
        if grid.shape[0] != batch or not bool((grid == grid[:1]).all()):
            raise ValueError(f'Taps need one video per sample with the same grid, got video_grid_thw '
                             f'{grid.tolist()} for batch size {batch}. Sample the same number of frames at the '
                             f'same resolution for every video (frame sampler num_frames, processor size).')
        t, h, w = (int(v) for v in grid[0])
        h, w = h // spatial_merge_size, w // spatial_merge_size
        shapes = {'video': (batch, t, h, w), 'camera': (batch, t), 'scale': (batch,)}
        taps = cls()
        for request in requests:
            mask = input_ids == token_ids[request.tokens]
            if request.tokens == 'camera' and 'camera_first' in token_ids:   # a video's first camera token
                mask = mask | (input_ids == token_ids['camera_first'])
            count = int(mask.sum())
            expected = math.prod(shapes[request.tokens])
            if count != expected:
                raise ValueError(f'Found {count} {request.tokens} tokens, expected {expected} '
                                 f'(shape {shapes[request.tokens]}). Geometry tokens are inserted by the data '
                                 f'preprocessor: set model.data_preprocessor.insert_geometry_tokens=True.')
            for layer in request.layers:
                group = getattr(taps, request.tokens)
                if layer not in group:
                    hidden = states[layer]
                    group[layer] = hidden[mask].view(*shapes[request.tokens], hidden.shape[-1])
        return taps
