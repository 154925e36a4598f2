"""Model configs of the training/inference benchmark, at the embedded (tiny) or the paper scale.

Cases (one config each, derived from the project configs so that the benchmark measures what training runs):

* ``sft``: the GeoVR backbone and data, LM loss only (no teacher, no objectives, no geometry tokens);
* ``geovr_online``: GeoVR with its frozen teacher run in every step (plus the config's scale teacher);
* ``geovr_cached``: GeoVR reading the teacher targets from a :class:`~geokit.models.teachers.CachedTeacher` cache;
* ``spatial_mllm``: Spatial-MLLM (dual encoder, LM loss).

Paper scale builds the paper architectures with random weights (nothing is read or downloaded): Qwen3-VL-2B from
``qwen3vl_2b_arch`` of the GeoVR paper config, Qwen2.5-VL-3B from ``qwen25vl_3b_arch`` of the Spatial-MLLM paper
config, VGGT-1B from the network defaults. The tokenizer/processor is the tiny asset's (so no
download), with the paper ViT's patch sizes and video pixel budgets; the paper vocabulary size is kept, the special
token ids are the tiny tokenizer's. The paper configs' metric-depth network (``MetricScaleTeacher``) needs a local
checkpoint, so the metric scale comes from an ``OracleTeacher`` on the synthetic ground truth instead.
"""
from __future__ import annotations

import copy
import json
import os.path as osp

from mmengine.config import Config

from geokit.engine.launch import load_config
from geokit.models.mllms.qwen_vl import ASSET_ROOT

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: Project configs per scale (relative to the repository root).
CONFIGS = {
    'tiny': {'geovr': 'projects/geovr/config.py', 'spatial_mllm': 'projects/spatial_mllm/config.py'},
    'paper': {'geovr': 'projects/geovr/geovr_qwen3vl-2b_vggt-1b_vsi590k.py',
              'spatial_mllm': 'projects/spatial_mllm/spatial_mllm_qwen2_5vl-3b_vggt-1b_vsi590k.py'},
}
#: Tiny assets whose processor (tokenizer + video processor) the paper-scale random models use.
TINY_PROCESSORS = {'Qwen3VLBackbone': 'geokit://mllms/tiny-qwen3vl', 'Qwen25VLBackbone': 'geokit://mllms/tiny-qwen2_5vl'}
#: Architecture dict names looked up in the paper configs.
ARCH_KEYS = {'Qwen3VLBackbone': 'qwen3vl_2b_arch', 'Qwen25VLBackbone': 'qwen25vl_3b_arch'}

#: VGGT's input size and patch size (pixels): the view an oracle scale teacher shares with the geometry teacher.
VGGT_IMAGE_SIZE, VGGT_PATCH_SIZE = 518, 14

TOKEN_KEYS = ('image_token_id', 'video_token_id', 'vision_start_token_id', 'vision_end_token_id')

#: Paper-scale synthetic inputs: frames per video and frame size (VSI-Bench videos are 640 x 480).
PAPER_FRAMES = {'geovr': 32, 'spatial_mllm': 16}
PAPER_HW = (480, 640)
#: Pixel budgets of the released checkpoints' video processors (the tiny processor's would downscale the frames):
#: Qwen3-VL-2B-Instruct ``longest_edge`` = pixels of the whole video; Qwen2.5-VL-3B-Instruct = pixels per frame.
#: Both keep 480 x 640 frames at full resolution (Qwen3-VL: 32 x 15 x 20 = 9600 tokens for 32 frames, each given
#: twice as GeoVR does (64 frames, within the budget);
#: Qwen2.5-VL: 8 x 17 x 23 = 3128 tokens for 16 frames).
PAPER_VIDEO_SIZE = {'Qwen3VLBackbone': {'shortest_edge': 4096, 'longest_edge': 25165824},
                    'Qwen25VLBackbone': {'shortest_edge': 3136, 'longest_edge': 12845056}}


def load_project_configs(scale: str, cfg_options: dict | None = None) -> dict[str, Config]:
    """``{'geovr': Config, 'spatial_mllm': Config}`` of ``scale`` with ``cfg_options`` merged into both."""
    if scale not in CONFIGS:
        raise ValueError(f'scale must be one of {sorted(CONFIGS)}, got {scale!r}.')
    out = {}
    for name, rel in CONFIGS[scale].items():
        out[name] = load_config(osp.join(REPO_ROOT, rel), cfg_options)
    return out


def paper_backbone(backbone: dict, cfg: Config) -> dict:
    """A paper backbone config -> the same architecture with random weights and the tiny processor."""
    backbone = copy.deepcopy(backbone)
    kind = backbone['type']
    arch = cfg.get(ARCH_KEYS[kind])
    if arch is None:
        raise KeyError(f'the paper config defines no `{ARCH_KEYS[kind]}` (the public architecture dict that random '
                       f'weights are built from); add it next to the backbone config.')
    arch = copy.deepcopy(arch.to_dict() if hasattr(arch, 'to_dict') else arch)
    processor = TINY_PROCESSORS[kind]
    with open(osp.join(ASSET_ROOT, processor[len('geokit://'):], 'config.json')) as f:
        tiny = json.load(f)
    arch.update({key: tiny[key] for key in TOKEN_KEYS})
    vision = arch['vision_config']
    backbone.update(load_weights=False, config=arch, processor_path=processor,
                    processor_kwargs=dict(patch_size=vision['patch_size'], merge_size=vision['spatial_merge_size'],
                                          temporal_patch_size=vision['temporal_patch_size'],
                                          size=dict(PAPER_VIDEO_SIZE[kind])))
    return backbone


def geometry_teacher(teacher: dict) -> dict:
    """The geometry teacher of a teacher config: the ``geometry`` part of a ``MetricScaleTeacher``, else itself."""
    return teacher['geometry'] if teacher.get('type') == 'MetricScaleTeacher' else teacher


def oracle_scale_teacher(teacher: dict) -> dict:
    """An ``OracleTeacher`` (metric scale from the sample's ground truth) on the same view as the geometry
    ``teacher``: it stands in for the paper configs' metric-depth network, which needs a local checkpoint."""
    return dict(type='OracleTeacher', image_size=teacher.get('image_size', VGGT_IMAGE_SIZE),
                patch_size=VGGT_PATCH_SIZE, mode=teacher.get('mode', 'crop'))


def case_model_configs(configs: dict[str, Config], scale: str, cache_dir: str | None) -> dict[str, dict]:
    """Model configs of the four training cases (see the module docstring)."""
    geovr = configs['geovr'].model.to_dict()
    spatial = configs['spatial_mllm'].model.to_dict()
    if scale == 'paper':
        geovr['backbone'] = paper_backbone(geovr['backbone'], configs['geovr'])
        spatial['backbone'] = paper_backbone(spatial['backbone'], configs['spatial_mllm'])
        teacher = geometry_teacher(geovr['teacher'])
        geovr['teacher'] = dict(teacher, load_from=None)
        geovr['scale_teacher'] = oracle_scale_teacher(teacher)
        spatial['fusion']['spatial_encoder']['load_from'] = None
    sft = copy.deepcopy(geovr)
    sft.update(teacher=None, scale_teacher=None, objectives=[])
    sft['data_preprocessor'] = dict(sft.get('data_preprocessor') or dict(type='QwenVLDataPreprocessor'),
                                    insert_geometry_tokens=False)
    cached = copy.deepcopy(geovr)
    cached['teacher'] = dict(type='CachedTeacher', cache_dir=cache_dir)
    return {'sft': sft, 'geovr_online': geovr, 'geovr_cached': cached, 'spatial_mllm': spatial}


#: One line per case, for the tables.
CASE_DESCRIPTIONS = {
    'sft': 'SFT-only baseline (GeoVR backbone, LM loss)',
    'geovr_online': 'GeoVR, online teacher',
    'geovr_cached': 'GeoVR, cached teacher targets',
    'spatial_mllm': 'Spatial-MLLM (dual encoder)',
    'base': 'base MLLM (stock transformers)',
    'geovr_export': 'GeoVR export (stock transformers, from_pretrained)',
}
