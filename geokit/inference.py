"""Ask a trained model about a video: load a checkpoint (training or exported), build samples, generate answers.

Shared by ``tools/infer.py`` and the lmms-eval plugin (:mod:`geokit.lmms_eval_plugin`)::

    model = load_model('projects/geovr/config.py', 'work_dirs/geovr/config/iter_300.safetensors')
    sample = video_sample('scene/video.mp4', 'How many chairs are in the room?', model_frame_sampler(cfg))
    answer = generate_answers(model, [sample])[0]['prediction']

A *training checkpoint* is a geokit ``.safetensors`` file (``state_dict`` of the whole ``GeometricMLLM``); an
*exported checkpoint* is the directory of ``tools/export_hf.py`` (a stock Hugging Face model + processor, GeoVR's
heads in ``geovr_heads.safetensors``). Either way the model is built from the training config, without its teacher
(inference never needs one).
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Sequence
from typing import Any

import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import load_state_dict
from safetensors.torch import load_file

from geokit.datasets.prompts import build_vsibench_prompt
from geokit.datasets.video_io import probe_video, read_video_frames
from geokit.engine.launch import load_config
from geokit.registry import FRAME_SAMPLERS, MODELS

VIDEO_TOKEN = '<video>'
#: Files that mark a directory as an exported (Hugging Face) checkpoint of ``tools/export_hf.py``.
EXPORTED_CONFIG_FILE = 'config.json'
EXPORTED_HEADS_FILE = 'geovr_heads.safetensors'


def is_exported_checkpoint(path: str) -> bool:
    """True for a directory written by ``tools/export_hf.py`` (``config.json`` of a Hugging Face model)."""
    return osp.isdir(path) and osp.isfile(osp.join(path, EXPORTED_CONFIG_FILE))


def load_model(config: str | Config, checkpoint: str, predict_geometry: bool = False,
               cfg_options: dict | None = None, device: str | torch.device = 'cpu') -> torch.nn.Module:
    """Build the config's ``GeometricMLLM`` without a teacher and load trained weights, in eval mode.

    Args:
        config: the training config (path or ``Config``).
        checkpoint: a training checkpoint (``.safetensors`` of the whole model) or an exported directory.
        predict_geometry: also return the heads' geometry when predicting (GeoVR; puts geometry tokens in the
            prompt, as the heads read them).
        cfg_options: config overrides (``--cfg-options``).
        device: where the model runs.
    Raises:
        FileNotFoundError: ``checkpoint`` does not exist.
        ValueError: ``predict_geometry`` for a model without geometry heads.
        FileNotFoundError: a fusion config with an exported directory that ``tools/export_hf.py`` did not write.
        KeyError: a training checkpoint that lacks weights of the model built from ``config``.
    """
    import geokit.models  # noqa: F401  (registers GeometricMLLM and its parts)
    from geokit.models.mllms.export import load_exported

    cfg = load_config(config, cfg_options)
    model_cfg = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(cfg.model)
    model_cfg['teacher'] = None
    model_cfg['scale_teacher'] = None
    model_cfg['predict_geometry'] = predict_geometry
    if predict_geometry:
        model_cfg.setdefault('data_preprocessor', dict(type='QwenVLDataPreprocessor'))
        model_cfg['data_preprocessor']['geometry_tokens_in_predict'] = True
    exported = is_exported_checkpoint(checkpoint)
    if not exported and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'Checkpoint {checkpoint} does not exist: give a training checkpoint '
                                f'(work_dirs/<run>/iter_<N>.safetensors) or a tools/export_hf.py output directory.')
    if exported and model_cfg.get('fusion') is not None:
        # a fusion export carries its spatial encoder and connector beside the stock checkpoint
        return load_exported(checkpoint).to(device).eval()
    if exported:
        model_cfg['backbone'] = dict(model_cfg['backbone'], path=checkpoint, processor_path=None, load_weights=True,
                                     config=None)
    else:
        model_cfg['backbone'] = dict(model_cfg['backbone'], load_weights=False)
    model = MODELS.build(model_cfg)
    if predict_geometry and not len(model.heads):
        raise ValueError(f'predict_geometry needs geometry heads, but {config} has no model.objectives.')
    if exported:
        heads_file = osp.join(checkpoint, EXPORTED_HEADS_FILE)
        if len(model.heads):
            if not osp.isfile(heads_file):
                raise FileNotFoundError(f'{heads_file} is missing: the config has heads {list(model.heads)}; '
                                        f're-export with tools/export_hf.py.')
            model.heads.load_state_dict(load_file(heads_file), strict=True)
    else:
        load_training_weights(model, checkpoint)
    return model.to(device).eval()


def load_training_weights(model: torch.nn.Module, checkpoint: str) -> None:
    """Load a training checkpoint (``.safetensors`` of the whole model) into ``model``, strictly.

    Raises:
        KeyError: the checkpoint lacks weights of ``model`` (names a few; the checkpoint was trained with another
            config).
    """
    from geokit.engine.runner import load_checkpoint_file

    state_dict = load_checkpoint_file(checkpoint)['state_dict']
    missing = sorted(set(model.state_dict()) - set(state_dict))
    if missing:
        raise KeyError(f'{checkpoint} lacks {len(missing)} weights of the model built from the config, e.g. '
                       f'{missing[:5]}. Use the config the checkpoint was trained with.')
    load_state_dict(model, state_dict, strict=True)


def model_frame_sampler(cfg: Config) -> dict:
    """The frame sampler config of the config's test dataset (the frames the model was evaluated on)."""
    dataloader = cfg.get('test_dataloader') or cfg.get('val_dataloader') or cfg.get('train_dataloader') or {}
    sampler = (dataloader.get('dataset') or {}).get('frame_sampler')
    return dict(sampler) if sampler else dict(type='UniformSampler', num_frames=16)


def question_prompt(question: str, question_type: str | None = None, options: Sequence[str] | None = None) -> str:
    """The human turn: the VSI-Bench prompt when ``question_type`` is given, else ``question`` as written."""
    if question_type:
        return build_vsibench_prompt(dict(question=question, question_type=question_type, options=list(options or [])))
    if options:
        return '\n'.join([question, 'Options:', *options])
    return question


def video_sample(video: str, prompt: str, frame_sampler: dict | Any, meta: dict | None = None) -> dict:
    """A sample dict (docs/architecture.md, "Sample contract") for one video and one prompt.

    The video's own frame count and frame rate choose the frames (``frame_sampler``) and go into ``meta['fps']``.
    """
    sampler = FRAME_SAMPLERS.build(frame_sampler) if isinstance(frame_sampler, dict) else frame_sampler
    num_frames, fps = probe_video(video)
    indices = sampler(num_frames, fps, video_path=video)
    frames = read_video_frames(video, indices)
    sample_meta = dict(id=osp.splitext(osp.basename(video))[0], video=video, fps=fps)
    sample_meta.update(meta or {})
    return dict(frames=frames, frame_indices=torch.as_tensor(indices), geometry=None, meta=sample_meta,
                conversations=[{'from': 'human', 'value': f'{VIDEO_TOKEN}\n{prompt}'}])


@torch.no_grad()
def generate_answers(model: torch.nn.Module, samples: Sequence[dict], batch_size: int = 1) -> list[dict]:
    """The model's ``predict`` outputs (``prediction`` text, ``meta``, ``geometry_pred`` if enabled) per sample."""
    outputs: list[dict] = []
    for start in range(0, len(samples), batch_size):
        outputs.extend(model.test_step(list(samples[start:start + batch_size])))
    return outputs


def render_predicted_geometry(sample: dict, geometry: dict[str, torch.Tensor], path: str,
                              backend: str = 'auto', stride: int = 1) -> str:
    """Render the heads' depth and cameras of one sample as a point cloud with frustums (PNG).

    Depth and camera translations are multiplied by the predicted ``metric_scale`` when there is one (so the
    picture is in metres); cameras come from ``pose_enc`` (``[t, quat XYZW, fov_h, fov_w]``, camera-from-world).
    Returns the backend that rendered.
    """
    from geokit.geometry.pose_encoding import pose_encoding_to_extrinsics_intrinsics
    from geokit.visualization import build_scene_geometry, render_panels, resize_frames

    if 'depth' not in geometry or 'pose_enc' not in geometry:
        raise KeyError(f'Rendering needs predicted depth and pose_enc (a depth and a camera head); got '
                       f'{sorted(geometry)}.')
    depth = geometry['depth'].float()
    extrinsics, intrinsics = pose_encoding_to_extrinsics_intrinsics(geometry['pose_enc'].float(),
                                                                    tuple(depth.shape[-2:]))
    scale = float(geometry['metric_scale']) if 'metric_scale' in geometry else 1.0
    extrinsics = extrinsics.clone()
    extrinsics[..., :3, 3] *= scale
    frames = resize_frames(torch.as_tensor(sample['frames'])[:depth.shape[0]], tuple(depth.shape[-2:]))
    unit = 'm' if 'metric_scale' in geometry else 'teacher units'
    scene = build_scene_geometry(depth * scale, extrinsics, intrinsics, frames, stride=stride,
                                 title=f'predicted depth + cameras ({unit})')
    return render_panels([scene], path, backend=backend)
