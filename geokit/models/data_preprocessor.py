"""``QwenVLDataPreprocessor``: a batch of dataset samples -> Qwen-VL processor inputs with geometry tokens.

Input: a batch is the list of sample dicts of docs/architecture.md, "Sample contract", as
:func:`geokit.list_collate` returns it (``collate_fn=dict(type='geokit.list_collate')``, which every config sets).
mmengine's ``pseudo_collate`` dict of lists is read back into that list by :func:`geokit.samples.uncollate`;
anything else is an error naming the fix. Output (``BaseModel.forward``'s keyword arguments)::

    inputs = {input_ids (B, L), attention_mask (B, L), mm_token_type_ids (B, L), labels (B, L) (training only),
              pixel_values_videos (N, C*t*p*p), video_grid_thw (B, 3), second_per_grid_ts (B,) (Qwen2.5-VL only),
              geometry_tokens: bool}
    data_samples = {frames: uint8 (B, T, H, W, 3), meta: list[dict], geometry: list[dict | None]}

Training batches are the full conversation, right-padded, with ``labels`` = the answer tokens plus the closing
``<|im_end|>`` (everything else is -100). Inference batches are the prompt up to ``<|im_start|>assistant\n``,
left-padded for generation. Geometry tokens (camera per temporal group, scale per video) are inserted into
training batches (and into inference batches only with ``geometry_tokens_in_predict=True``) by
:func:`geokit.models.mllms.insert_geometry_tokens`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from mmengine.model import BaseDataPreprocessor

from geokit.models.mllms.geometry_tokens import insert_geometry_tokens
from geokit.models.teachers.preprocess import frames_from_processor
from geokit.registry import MODELS
from geokit.samples import uncollate

VIDEO_PLACEHOLDER = '<video>'
ROLES = {'human': 'user', 'user': 'user', 'gpt': 'assistant', 'assistant': 'assistant', 'system': 'system'}


def conversation_messages(conversations: Sequence[Mapping], num_videos: int = 1) -> tuple[list[dict], str | None]:
    """VSI-590K-style turns -> chat-template messages of the prompt, and the final answer (if the last turn is gpt).

    ``<video>`` in a human turn becomes a video content item at that place; without one, the video goes first in
    the first human turn.
    """
    turns = list(conversations)
    answer = None
    if turns and ROLES.get(turns[-1]['from']) == 'assistant':
        answer = str(turns[-1]['value']).strip()
        turns = turns[:-1]
    messages, placed = [], 0
    for turn in turns:
        role = ROLES.get(turn['from'])
        if role is None:
            raise ValueError(f"Unknown conversation role {turn['from']!r}; expected one of {sorted(ROLES)}.")
        pieces = str(turn['value']).split(VIDEO_PLACEHOLDER)
        content: list[dict] = []
        for index, piece in enumerate(pieces):
            if index > 0:
                content.append({'type': 'video'})
                placed += 1
            if piece:
                content.append({'type': 'text', 'text': piece})
        messages.append({'role': role, 'content': content})
    if placed == 0 and num_videos:
        first_user = next(m for m in messages if m['role'] == 'user')
        first_user['content'].insert(0, {'type': 'video'})
    return messages, answer


@MODELS.register_module()
class QwenVLDataPreprocessor(BaseDataPreprocessor):
    """Tokenise conversations and videos with the backbone's stock processor; insert geometry tokens.

    The processor comes from the backbone (:meth:`bind`, called by :class:`~geokit.models.GeometricMLLM`), so
    the tokenizer with the added geometry tokens exists once.

    Args:
        insert_geometry_tokens: insert camera/scale tokens into training batches (needed by camera/scale taps).
        geometry_tokens_in_predict: also insert them for generation. Off by default: GeoVR's heads are dropped at
            inference and the model runs as the plain MLLM on the stock processor's input (what an exported
            checkpoint sees).
        default_fps: frame rate assumed when a sample's meta has no ``fps`` (Qwen-VL timestamps / RoPE spacing).
        system_prompt: optional system turn prepended to every conversation.
        repeat_frames: give the processor every frame this many times in a row. GeoVR (``get_repeat_video_inputs``
            in ``utils/preprocess.py``): 2, so one Qwen temporal token (2 frames) is one teacher frame and the heads
            predict one frame per token (the model sets ``frames_per_token`` accordingly); double the processor's
            frame and pixel limits to match. Default 1: one token covers two frames (half the video tokens).
        teacher_frames: what ``data_samples['frames']`` (the teacher's input) holds: ``'input'`` (default: the
            dataset's frames) or ``'processor'`` (GeoVR: the frames recovered from the processor's patches, i.e.
            exactly what the MLLM saw, after its resize; see
            :func:`~geokit.models.teachers.preprocess.frames_from_processor`).
    """

    def __init__(self, insert_geometry_tokens: bool = True, geometry_tokens_in_predict: bool = False,
                 default_fps: float = 2.0, system_prompt: str | None = None, non_blocking: bool = False,
                 repeat_frames: int = 1, teacher_frames: str = 'input') -> None:
        super().__init__(non_blocking=non_blocking)
        if repeat_frames < 1 or teacher_frames not in ('input', 'processor'):
            raise ValueError(f"model.data_preprocessor: repeat_frames must be >= 1 and teacher_frames 'input' or "
                             f"'processor', got {repeat_frames!r}, {teacher_frames!r}.")
        self.repeat_frames, self.teacher_frames = repeat_frames, teacher_frames
        self.insert_geometry_tokens = insert_geometry_tokens
        self.geometry_tokens_in_predict = geometry_tokens_in_predict
        self.default_fps = default_fps
        self.system_prompt = system_prompt
        self._backbone_ref: list = []

    def bind(self, backbone) -> None:
        """Use this backbone's processor and token ids (kept outside the module tree)."""
        self._backbone_ref = [backbone]

    @property
    def backbone(self):
        if not self._backbone_ref:
            raise RuntimeError('QwenVLDataPreprocessor is not bound to a backbone; build it through GeometricMLLM '
                               '(which calls data_preprocessor.bind(backbone)).')
        return self._backbone_ref[0]

    # ------------------------------------------------------------------ text
    def _prompts(self, samples: list[dict]) -> tuple[list[str], list[str | None]]:
        processor = self.backbone.processor
        prompts, answers = [], []
        for sample in samples:
            messages, answer = conversation_messages(sample['conversations'])
            if self.system_prompt:
                messages.insert(0, {'role': 'system', 'content': self.system_prompt})
            prompts.append(processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
            answers.append(answer)
        return prompts, answers

    def _video_metadata(self, samples: list[dict]) -> list[dict]:
        metadata = []
        for sample in samples:
            indices = sample.get('frame_indices')
            num = len(sample['frames'])
            indices = list(range(num)) if indices is None else [int(i) for i in torch.as_tensor(indices).tolist()]
            fps = float((sample.get('meta') or {}).get('fps') or self.default_fps)
            metadata.append({'fps': fps, 'frames_indices': indices, 'total_num_frames': max(indices) + 1})
        return metadata

    @staticmethod
    def _append_answers(batch: dict, answer_ids: list[list[int]], pad_id: int) -> dict:
        """Right-padded prompts + answers -> full sequences and labels (vectorised scatter)."""
        ids, mask = batch['input_ids'], batch['attention_mask']
        prompt_len = mask.sum(1)
        answers = torch.nn.utils.rnn.pad_sequence([torch.tensor(a, dtype=ids.dtype) for a in answer_ids],
                                                  batch_first=True, padding_value=pad_id)
        answer_len = torch.tensor([len(a) for a in answer_ids])
        total = int((prompt_len + answer_len).max())
        rows = ids.shape[0]

        def grow(tensor: torch.Tensor, pad: int) -> torch.Tensor:
            out = tensor.new_full((rows, total), pad)
            out[:, :min(total, tensor.shape[1])] = tensor[:, :total]
            return out

        positions = prompt_len[:, None] + torch.arange(answers.shape[1])[None]
        valid = torch.arange(answers.shape[1])[None] < answer_len[:, None]
        rr = torch.arange(rows)[:, None].expand_as(positions)
        new_ids = grow(ids, pad_id)
        new_ids[rr[valid], positions[valid]] = answers[valid]
        new_mask = grow(mask, 0)
        new_mask[rr[valid], positions[valid]] = 1
        labels = torch.full_like(new_ids, -100)
        labels[rr[valid], positions[valid]] = answers[valid]
        out = dict(batch)
        out.update(input_ids=new_ids, attention_mask=new_mask, labels=labels,
                   mm_token_type_ids=grow(batch['mm_token_type_ids'], 0))
        return out

    # ------------------------------------------------------------------ forward, step by step
    def forward(self, data: Any, training: bool = False) -> dict:
        """A batch of samples -> ``{'inputs': ..., 'data_samples': ...}`` (see the module docstring).

        Steps: chat-template prompts; the stock processor on prompts + videos; in training, the answers appended
        as labels; geometry tokens inserted (:meth:`adds_geometry_tokens`); the teacher's data samples.
        """
        samples = uncollate(data)
        prompts, answers = self._prompts(samples)
        frames = [torch.as_tensor(s['frames']) for s in samples]
        metadata = self._video_metadata(samples)
        padding_side = 'right' if training else 'left'      # answers append on the right; generation continues
        batch = self._process(prompts, frames, metadata, padding_side)
        if training:
            batch = self._with_answers(batch, answers)
        with_geometry = self.adds_geometry_tokens(training)
        if with_geometry:
            batch = self._with_geometry_tokens(batch, padding_side)
        batch['geometry_tokens'] = with_geometry
        data_samples = self._data_samples(samples, self._teacher_frames(frames, batch), metadata)
        return {'inputs': self.cast_data(batch), 'data_samples': self.cast_data(data_samples)}

    def adds_geometry_tokens(self, training: bool) -> bool:
        """Whether a batch built with this ``training`` flag gets camera/scale tokens (``inputs['geometry_tokens']``):
        training batches when ``insert_geometry_tokens``, prompt batches only with ``geometry_tokens_in_predict``
        too."""
        return self.insert_geometry_tokens and (training or self.geometry_tokens_in_predict)

    def _process(self, prompts: list[str], frames: list[torch.Tensor], metadata: list[dict],
                 padding_side: str) -> dict:
        """The stock processor on the prompts and videos (each frame ``repeat_frames`` times in a row)."""
        repeat = self.repeat_frames
        if repeat > 1:  # each frame twice in a row at its own timestamp: one temporal token per frame
            frames = [f.repeat_interleave(repeat, 0) for f in frames]
            metadata = [dict(m, frames_indices=[i for i in m['frames_indices'] for _ in range(repeat)])
                        for m in metadata]
        return dict(self.backbone.processor(text=prompts, videos=frames, video_metadata=metadata, padding=True,
                                            padding_side=padding_side, return_tensors='pt'))

    def _with_answers(self, batch: dict, answers: list[str | None]) -> dict:
        """Training: every prompt followed by its answer and ``<|im_end|>``, which are the only labels."""
        missing = [i for i, a in enumerate(answers) if a is None]
        if missing:
            raise ValueError(f'Training samples {missing} have no answer (last conversation turn must be gpt).')
        tokenizer = self.backbone.processor.tokenizer
        end_of_turn = tokenizer.convert_tokens_to_ids('<|im_end|>')
        answer_ids = [tokenizer(a, add_special_tokens=False)['input_ids'] + [end_of_turn] for a in answers]
        return self._append_answers(batch, answer_ids, self.backbone.pad_token_id)

    def _with_geometry_tokens(self, batch: dict, padding_side: str) -> dict:
        """Camera and scale tokens inserted, ``attention_mask``/``mm_token_type_ids``/``labels`` carried along."""
        backbone = self.backbone
        ids = backbone.geometry_token_ids
        carry = {'attention_mask': (batch['attention_mask'], 1, 0),
                 'mm_token_type_ids': (batch['mm_token_type_ids'], 0, 0)}
        if 'labels' in batch:
            carry['labels'] = (batch['labels'], -100, -100)
        new_ids, carried = insert_geometry_tokens(
            batch['input_ids'], backbone.video_token_id, batch['video_grid_thw'], backbone.spatial_merge_size,
            ids['camera'], ids['scale'], backbone.pad_token_id, carry, padding_side,
            first_camera_token_id=ids.get('camera_first'))
        return dict(batch, input_ids=new_ids, **carried)

    def _teacher_frames(self, frames: list[torch.Tensor], batch: dict) -> list[torch.Tensor]:
        """What the teacher sees: the dataset's frames, or those recovered from the processor's patches."""
        if self.teacher_frames == 'input':
            return frames
        return frames_from_processor(batch['pixel_values_videos'], batch['video_grid_thw'],
                                     self.backbone.processor.video_processor, [len(f) for f in frames],
                                     self.repeat_frames)

    def _data_samples(self, samples: list[dict], frames: list[torch.Tensor], metadata: list[dict]) -> dict:
        """``{frames, meta (with the frame indices), geometry}`` for the teacher, the heads and the metrics."""
        return {
            'frames': self._stack_frames(frames),
            'meta': [dict(s.get('meta') or {}, frame_indices=m['frames_indices']) for s, m in zip(samples, metadata)],
            'geometry': [s.get('geometry') for s in samples],
        }

    @staticmethod
    def _stack_frames(frames: list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        shapes = {tuple(f.shape) for f in frames}
        return torch.stack(frames) if len(shapes) == 1 else frames
