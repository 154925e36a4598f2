"""Thin wrappers around transformers' stock Qwen2.5-VL and Qwen3-VL classes (no copied modeling code).

A backbone owns the Hugging Face model *and* its processor (with GeoVR's geometry tokens added), and exposes what
the generic :class:`geokit.models.GeometricMLLM` needs: the decoder layers (for hidden-state taps), the vision
encoder (so a fusion module can modify its tokens), the LLM forward, the LM head and the special token ids.

Paths: ``path`` is a local Hugging Face checkpoint directory (``config.json`` + safetensors + processor files) or
``geokit://mllms/<name>`` for the tiny assets shipped in ``geokit/assets``. Nothing is ever downloaded.
"""
from __future__ import annotations

import os
import os.path as osp
import re
from typing import Any

import torch
from mmengine.logging import print_log
from torch import nn
from transformers import (
    AutoProcessor,
    PretrainedConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen3VLForConditionalGeneration,
)

from geokit.registry import MLLMS

ASSET_PREFIX = 'geokit://'
ASSET_ROOT = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'assets')

#: files of which a Hugging Face checkpoint / processor folder has at least one
HF_CHECKPOINT_FILES = ('config.json', 'preprocessor_config.json', 'processor_config.json', 'tokenizer_config.json')

#: Names of the geometry tokens GeoVR adds to the tokenizer.
DEFAULT_GEOMETRY_TOKENS = {'camera': '<|geo_camera|>', 'scale': '<|geo_scale|>'}

#: How geometry tokens get their multimodal-RoPE positions (``QwenVLBackbone(geometry_positions=...)``).
#:
#: * ``'frame_last_patch'`` (default; GeoVR's ``Qwen3VLModel.get_rope_index`` in ``models/qwen3vl_geo.py``): a
#:   geometry token takes the 3-D position of the token before it (a camera token its frame's last patch, the scale
#:   token the last camera token's); every other token keeps the position it has without geometry tokens, so
#:   training positions are the inference positions. Trade-off: none known; the tokens share a position with a patch.
#: * ``'consecutive_text'``: the stock ``get_rope_index`` on the sequence as it is (geometry tokens as text at
#:   consecutive 1-D positions; on Qwen2.5-VL the video split into one block per temporal group). Trade-off: every
#:   later position moves (by the geometry tokens before it, and on Qwen2.5-VL the temporal spacing and h/w offsets
#:   change), so training and inference positions differ; kept to reproduce checkpoints trained before the default.
GEOMETRY_POSITION_POLICIES = ('frame_last_patch', 'consecutive_text')


def resolve_path(path: str, key: str = 'model.backbone.path') -> str:
    """Map ``geokit://<rel>`` to ``geokit/assets/<rel>`` and check that a local path exists.

    Raises:
        FileNotFoundError: naming the config ``key`` to set.
    """
    resolved = osp.join(ASSET_ROOT, path[len(ASSET_PREFIX):]) if path.startswith(ASSET_PREFIX) else \
        osp.expanduser(path)
    relative = '' if osp.isabs(resolved) else f' (a relative path, taken from the current directory {os.getcwd()})'
    empty = osp.isdir(resolved) and not any(osp.isfile(osp.join(resolved, name)) for name in HF_CHECKPOINT_FILES)
    if not osp.exists(resolved) or empty:
        state = 'is a folder without a Hugging Face checkpoint in it (no config.json or processor files)' if empty \
            else 'does not exist'
        raise FileNotFoundError(
            f'{key}={path!r} {state} ({resolved}){relative}. geokit never downloads weights: set `{key}` to a local '
            f'Hugging Face checkpoint directory (config.json, *.safetensors and the processor files, e.g. from '
            f'`huggingface-cli download Qwen/Qwen3-VL-2B-Instruct --local-dir DIR` on a machine with internet), '
            f"or to 'geokit://mllms/tiny-qwen3vl' for the embedded tiny model.")
    return resolved


def take_frame_sampling(video_processor: Any, processor_kwargs: dict | None = None) -> None:
    """Switch the video processor's own frame sampling off: geokit's frame sampler has already picked the frames.

    Released processors differ (Qwen3-VL's samples at 2 fps by default, ``do_sample_frames=True``); sampling again
    would index frames the sampled clip does not have. The sampled frames' indices and the video's fps still reach
    the processor through ``video_metadata`` (timestamps, ``second_per_grid_ts``).

    Raises:
        ValueError: if ``processor_kwargs`` asks for ``do_sample_frames=True``.
    """
    if (processor_kwargs or {}).get('do_sample_frames'):
        raise ValueError('model.backbone.processor_kwargs.do_sample_frames=True: frames are sampled by the dataset\'s '
                         '`frame_sampler` (e.g. UniformSampler), never by the processor; drop the key and set the '
                         'frame count / sampler in the dataset config.')
    video_processor.do_sample_frames = False


class QwenVLBackbone(nn.Module):
    """A stock ``Qwen*VLForConditionalGeneration`` plus its processor, with geometry tokens.

    Args:
        path: checkpoint directory or ``geokit://mllms/<name>`` (see :func:`resolve_path`).
        load_weights: load the safetensors weights (``from_pretrained``); if False the model is built from its
            config with random weights (``from_config``): the tiny default, and meta-device config checks.
        config: Hugging Face config fields. With ``load_weights=False`` and no ``config.json`` under ``path``
            they are the whole architecture; otherwise they override the checkpoint's fields.
        processor_path: where the processor/tokenizer live (default: ``path``).
        processor_kwargs: attributes set on the video processor (e.g. ``size``); its frame sampling is always off
            (:func:`take_frame_sampling`).
        dtype: parameter dtype (``'float32'``, ``'bfloat16'``); mixed precision comes from the AMP optim wrapper.
        attn_implementation: ``'sdpa'`` (default), ``'eager'`` or ``'flash_attention_2'``.
        geometry_tokens: ``{'camera': str, 'scale': str}`` special tokens to add (kept if already present); with
            ``'camera_first': str`` too, every video's first camera token is that token, with its own embedding
            (GeoVR's ``camera_token = nn.Embedding(2, D)``; default: one camera embedding for all frames).
        freeze: regexes over the HF model's parameter names; matches are frozen (default: the vision tower
            except the merger(s), see ``DEFAULT_FREEZE``).
        gradient_checkpointing: transformers' ``gradient_checkpointing_enable`` (non-reentrant).
        lora: ``peft.LoraConfig`` fields to train LoRA adapters on the LLM instead of all its weights; the geometry
            token embeddings stay trainable (``trainable_token_indices``) and so do the vision merger(s).
        init_seed: seed for random init (``load_weights=False``), so the tiny model is reproducible.
        geometry_positions: RoPE positions of the geometry tokens, one of :data:`GEOMETRY_POSITION_POLICIES`.
    """

    hf_class: type = nn.Module
    #: Parameter-name regexes frozen by default: the vision tower, except the merger(s) into the LLM.
    DEFAULT_FREEZE: tuple[str, ...] = ()
    #: LoRA targets by default: every linear layer of the language model.
    DEFAULT_LORA_TARGETS = r'.*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$'
    #: Parameters kept trainable under LoRA.
    LORA_TRAINABLE = r'^model\.visual\.(merger|deepstack_merger_list)\.'

    def __init__(self, path: str, load_weights: bool = True, config: dict | None = None,
                 processor_path: str | None = None, processor_kwargs: dict | None = None, dtype: str = 'float32',
                 attn_implementation: str = 'sdpa', geometry_tokens: dict[str, str] | None = None,
                 freeze: list[str] | tuple[str, ...] | None = None, gradient_checkpointing: bool = False,
                 lora: dict | None = None, init_seed: int | None = 0,
                 geometry_positions: str = 'frame_last_patch') -> None:
        super().__init__()
        if geometry_positions not in GEOMETRY_POSITION_POLICIES:
            raise ValueError(f'model.backbone.geometry_positions={geometry_positions!r} is not one of '
                             f'{GEOMETRY_POSITION_POLICIES}.')
        self.geometry_positions = geometry_positions
        self.processor = AutoProcessor.from_pretrained(
            resolve_path(processor_path or path, 'model.backbone.processor_path' if processor_path else
                         'model.backbone.path'))
        for name, value in (processor_kwargs or {}).items():
            setattr(self.processor.video_processor, name, value)
        take_frame_sampling(self.processor.video_processor, processor_kwargs)
        tokens = dict(DEFAULT_GEOMETRY_TOKENS if geometry_tokens is None else geometry_tokens)
        tokenizer = self.processor.tokenizer
        new_tokens = [t for t in tokens.values() if t not in tokenizer.get_vocab()]
        if new_tokens:
            tokenizer.add_special_tokens({'extra_special_tokens': new_tokens},
                                         replace_extra_special_tokens=False)
        self.geometry_token_names = tokens
        torch_dtype = getattr(torch, dtype)
        self.model = self._build_hf_model(path, load_weights, config, torch_dtype, attn_implementation, init_seed)
        self._fit_embeddings(init_new_rows=bool(new_tokens) and load_weights)
        self._freeze(self.DEFAULT_FREEZE if freeze is None else freeze)
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={'use_reentrant': False})
        if lora is not None:
            self._apply_lora(dict(lora))

    # ------------------------------------------------------------------ construction
    def _build_hf_model(self, path: str, load_weights: bool, config: dict | None, torch_dtype: torch.dtype,
                        attn_implementation: str, init_seed: int | None) -> nn.Module:
        if load_weights:
            resolved = resolve_path(path)
            return self.hf_class.from_pretrained(resolved, dtype=torch_dtype, attn_implementation=attn_implementation,
                                                 **(config or {}))
        hf_config = self._config_from(path, config)
        hf_config._attn_implementation = attn_implementation
        with torch.random.fork_rng(devices=[]):
            if init_seed is not None:
                torch.manual_seed(init_seed)
            model = self.hf_class._from_config(hf_config, dtype=torch_dtype)
        return model

    def _config_from(self, path: str, config: dict | None) -> PretrainedConfig:
        config_class = self.hf_class.config_class
        resolved = osp.join(ASSET_ROOT, path[len(ASSET_PREFIX):]) if path.startswith(ASSET_PREFIX) else path
        if osp.isfile(osp.join(resolved, 'config.json')):
            return config_class.from_pretrained(resolved, **(config or {}))
        if config is None:
            resolve_path(path)  # raises with the config key to set
            raise FileNotFoundError(f'{path} has no config.json: set model.backbone.config to the architecture '
                                    f'({config_class.__name__} fields) or point model.backbone.path at a checkpoint.')
        return config_class(**config)

    def _fit_embeddings(self, init_new_rows: bool) -> None:
        """Make room for added tokens; initialise their rows to the mean embedding when the weights are trained."""
        embeddings = self.hf_model.get_input_embeddings()
        num_tokens = len(self.processor.tokenizer)
        if num_tokens > embeddings.num_embeddings:
            self.hf_model.resize_token_embeddings(num_tokens, pad_to_multiple_of=64, mean_resizing=False)
            embeddings = self.hf_model.get_input_embeddings()
        if init_new_rows and embeddings.weight.device.type != 'meta':
            ids = list(self.geometry_token_ids.values())
            with torch.no_grad():
                mean = embeddings.weight[:min(ids)].float().mean(0)
                embeddings.weight[ids] = mean.to(embeddings.weight.dtype)
            print_log(f'Initialised geometry token embeddings {ids} to the mean embedding.', logger='current')

    def _freeze(self, patterns: list[str] | tuple[str, ...]) -> None:
        compiled = [re.compile(p) for p in patterns]
        for name, param in self.hf_model.named_parameters():
            if any(p.search(name) for p in compiled):
                param.requires_grad_(False)

    def _apply_lora(self, lora: dict) -> None:
        from peft import LoraConfig, get_peft_model
        lora.setdefault('target_modules', self.DEFAULT_LORA_TARGETS)
        lora.setdefault('trainable_token_indices', {'embed_tokens': list(self.geometry_token_ids.values())})
        self.model = get_peft_model(self.model, LoraConfig(**lora))
        keep = re.compile(self.LORA_TRAINABLE)
        for name, param in self.hf_model.named_parameters():
            if keep.search(name):
                param.requires_grad_(True)

    # ------------------------------------------------------------------ properties
    @property
    def hf_model(self) -> nn.Module:
        """The stock transformers model (unwrapped from peft when LoRA is on)."""
        model = self.model
        return model.get_base_model() if hasattr(model, 'get_base_model') else model

    @property
    def config(self) -> PretrainedConfig:
        return self.hf_model.config

    @property
    def decoder_layers(self) -> nn.ModuleList:
        # looked up, not stored: an attribute would register the layers a second time under the backbone, which
        # doubles their state-dict keys and makes FSDP's auto-wrap visit (and wrap) each layer twice
        return self.hf_model.model.language_model.layers

    @property
    def num_layers(self) -> int:
        return self.config.text_config.num_hidden_layers

    @property
    def hidden_size(self) -> int:
        return self.config.text_config.hidden_size

    @property
    def frames_per_token(self) -> int:
        """Input frames per temporal group (the ViT's temporal patch size)."""
        return int(self.config.vision_config.temporal_patch_size)

    @property
    def spatial_merge_size(self) -> int:
        return int(self.config.vision_config.spatial_merge_size)

    @property
    def video_token_id(self) -> int:
        return int(self.config.video_token_id)

    @property
    def geometry_token_ids(self) -> dict[str, int]:
        tokenizer = self.processor.tokenizer
        return {kind: int(tokenizer.convert_tokens_to_ids(tok)) for kind, tok in self.geometry_token_names.items()}

    @property
    def pad_token_id(self) -> int:
        return int(self.processor.tokenizer.pad_token_id)

    # ------------------------------------------------------------------ forward pieces
    def encode_video(self, pixel_values_videos: torch.Tensor, video_grid_thw: torch.Tensor) -> Any:
        """The stock vision encoder; ``.pooler_output`` is a tuple of ``(N_v, D)`` merged tokens per video."""
        return self.hf_model.model.get_video_features(pixel_values_videos, video_grid_thw, return_dict=True)

    def rope_kwargs(self, video_grid_thw: torch.Tensor, second_per_grid_ts: torch.Tensor | None,
                    geometry_tokens: bool) -> dict[str, torch.Tensor]:
        """Extra arguments the stock model needs for multimodal RoPE (backbone-specific)."""
        return {'video_grid_thw': video_grid_thw}

    def _rope_index_kwargs(self, video_grid_thw: torch.Tensor,
                           second_per_grid_ts: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """What the stock ``get_rope_index`` takes besides ids, token types and mask (the unsplit video grid)."""
        return self.rope_kwargs(video_grid_thw, second_per_grid_ts, geometry_tokens=False)

    def geometry_position_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                              mm_token_type_ids: torch.Tensor, video_grid_thw: torch.Tensor,
                              second_per_grid_ts: torch.Tensor | None = None
                              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Multimodal RoPE positions with geometry tokens that move no other token (``'frame_last_patch'``).

        The stock ``get_rope_index`` runs on the sequence *without* the geometry tokens (they are masked out of its
        ``attention_mask``, which it uses to drop tokens), so every other token gets exactly the position it has
        when no geometry token exists; each geometry token then copies the position of the nearest non-geometry
        token before it (its frame's last patch).

        Args:
            input_ids, attention_mask, mm_token_type_ids: ``(B, L)``, geometry tokens included, either padding side.
            video_grid_thw: ``(V, 3)`` as the processor made it; second_per_grid_ts: ``(V,)`` (Qwen2.5-VL) or None.

        Returns:
            ``position_ids (3, B, L)`` (temporal, height, width; 0 at padding, as the stock function gives) and
            ``rope_deltas (B, 1)``: the offset of the next generated token's position from its index in the row
            (``max position + 1 - tokens in the row``, geometry tokens counted), as ``get_rope_index`` returns it.
        """
        geometry = torch.isin(input_ids, torch.tensor(list(self.geometry_token_ids.values()),
                                                      device=input_ids.device))
        present = attention_mask.bool()
        kept = present & ~geometry
        positions, _ = self.hf_model.model.get_rope_index(
            input_ids, mm_token_type_ids=mm_token_type_ids, attention_mask=kept.long(),
            **self._rope_index_kwargs(video_grid_thw, second_per_grid_ts))
        index = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        previous = torch.where(kept, index, torch.zeros_like(index)).cummax(dim=1).values
        copied = positions.gather(2, previous.unsqueeze(0).expand_as(positions))
        positions = torch.where((geometry & present).unsqueeze(0), copied, positions)
        largest = positions.masked_fill(~present.unsqueeze(0), 0).amax(dim=(0, 2))
        deltas = (largest + 1 - present.sum(1)).unsqueeze(1)
        return positions, deltas

    def position_kwargs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        mm_token_type_ids: torch.Tensor, video_grid_thw: torch.Tensor,
                        second_per_grid_ts: torch.Tensor | None, geometry_tokens: bool) -> dict[str, torch.Tensor]:
        """RoPE arguments for the stock forward: explicit ``position_ids`` when geometry tokens must not move any."""
        if geometry_tokens and self.geometry_positions == 'frame_last_patch':
            positions, _ = self.geometry_position_ids(input_ids, attention_mask, mm_token_type_ids, video_grid_thw,
                                                      second_per_grid_ts)
            return {**self._rope_index_kwargs(video_grid_thw, second_per_grid_ts), 'position_ids': positions}
        return self.rope_kwargs(video_grid_thw, second_per_grid_ts, geometry_tokens)

    def language_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         mm_token_type_ids: torch.Tensor, video_grid_thw: torch.Tensor, vision_outputs: Any,
                         second_per_grid_ts: torch.Tensor | None = None, geometry_tokens: bool = False,
                         **kwargs) -> torch.Tensor:
        """Run the stock multimodal model with precomputed vision tokens; returns the normed ``(B, L, D)`` states.

        Positions come from the stock ``get_rope_index`` (``mm_token_type_ids`` is always passed); with geometry
        tokens under ``geometry_positions='frame_last_patch'`` they are :meth:`geometry_position_ids`, passed as
        ``position_ids``.
        """
        self.hf_model.model.rope_deltas = None
        rope = self.position_kwargs(input_ids, attention_mask, mm_token_type_ids, video_grid_thw,
                                    second_per_grid_ts, geometry_tokens)
        out = self.hf_model.model(input_ids=input_ids, attention_mask=attention_mask,
                                  mm_token_type_ids=mm_token_type_ids,
                                  mm_encoder_outputs={'video': vision_outputs}, use_cache=False,
                                  **{k: v for k, v in rope.items() if v is not None}, **kwargs)
        return out.last_hidden_state

    def lm_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.hf_model.lm_head(hidden_states)

    def generate(self, **kwargs) -> torch.Tensor:
        """The stock ``generate``; a prompt with geometry tokens gets :meth:`geometry_position_ids` as its positions.

        Under ``'frame_last_patch'`` the prompt's positions are passed as ``position_ids`` (``(4, B, L)``: the 1-D
        text positions of the attention mask, then the three RoPE rows), which ``generate`` extends by one per new
        token, as the stock positions would be.
        """
        ids = kwargs.get('input_ids')
        geometry = torch.tensor(list(self.geometry_token_ids.values()))
        if (ids is not None and self.geometry_positions == 'frame_last_patch' and 'position_ids' not in kwargs
                and kwargs.get('video_grid_thw') is not None and bool(torch.isin(ids, geometry.to(ids.device)).any())):
            mask = kwargs.get('attention_mask')
            mask = torch.ones_like(ids) if mask is None else mask
            positions, deltas = self.geometry_position_ids(ids, mask, kwargs['mm_token_type_ids'],
                                                           kwargs['video_grid_thw'], kwargs.get('second_per_grid_ts'))
            text = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
            kwargs['position_ids'] = torch.cat([text.unsqueeze(0), positions], 0)
            self.hf_model.model.rope_deltas = deltas
        return self.hf_model.generate(**kwargs)


@MLLMS.register_module()
class Qwen3VLBackbone(QwenVLBackbone):
    """transformers' ``Qwen3VLForConditionalGeneration`` (e.g. Qwen3-VL-2B-Instruct, or the tiny default)."""

    hf_class = Qwen3VLForConditionalGeneration
    DEFAULT_FREEZE = (r'^model\.visual\.(patch_embed|pos_embed|blocks)\.',)


@MLLMS.register_module()
class Qwen25VLBackbone(QwenVLBackbone):
    """transformers' ``Qwen2_5_VLForConditionalGeneration`` (e.g. Qwen2.5-VL-3B-Instruct).

    Qwen2.5-VL lays a video out as one vision block. Under ``geometry_positions='frame_last_patch'`` the block is
    contiguous once the geometry tokens are masked out, so the stock grid and seconds-based temporal spacing are
    used as they are. Under ``'consecutive_text'`` camera tokens split it into one block per temporal group, and the
    grid handed to the stock ``get_rope_index`` is split accordingly (``t = 1`` rows; the ViT output is the same
    either way since its attention never crosses temporal groups), ``second_per_grid_ts`` repeated.
    """

    hf_class = Qwen2_5_VLForConditionalGeneration
    DEFAULT_FREEZE = (r'^model\.visual\.(patch_embed|blocks)\.',)
    LORA_TRAINABLE = r'^model\.visual\.merger\.'

    def rope_kwargs(self, video_grid_thw: torch.Tensor, second_per_grid_ts: torch.Tensor | None,
                    geometry_tokens: bool) -> dict[str, torch.Tensor]:
        if not geometry_tokens or self.geometry_positions != 'consecutive_text':
            return {'video_grid_thw': video_grid_thw, 'second_per_grid_ts': second_per_grid_ts}
        frames = video_grid_thw[:, 0]
        split = torch.repeat_interleave(video_grid_thw, frames, dim=0)
        split[:, 0] = 1
        seconds = None if second_per_grid_ts is None else torch.repeat_interleave(second_per_grid_ts, frames, dim=0)
        return {'video_grid_thw': split, 'second_per_grid_ts': seconds}
