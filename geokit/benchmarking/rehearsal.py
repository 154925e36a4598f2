"""Paper scale, rehearsed: a paper config at its checkpoints' real widths, depth truncated, real steps.

:func:`rehearse` builds a paper config's model (Qwen3-VL-2B-Instruct / Qwen2.5-VL-3B-Instruct from their public
``config.json``, VGGT-1B from its public settings; random weights, nothing read or downloaded) with the processor at
the release's defaults (:mod:`geokit.benchmarking.published`), truncates the ViT, the LLM and the 3D network to a
few layers, and on a synthetic video at the config's frame count and VSI-Bench's resolution (640 x 480, 30 fps):

1. runs ``steps`` training steps exactly as the config says (its optimizer wrapper with its learning rates,
   precision, objectives, gradient checkpointing; the schedule's warm-up is not applied, so the steps learn):
   GeoVR's step 1 runs the teacher online and writes its targets as a real teacher-cache shard (paper settings,
   :func:`~geokit.models.teachers.cached.write_shard`), the following steps read them back through
   ``CachedTeacher``; Spatial-MLLM runs its spatial encoder in every step;
2. measures one step of the SFT baseline (the same backbone, LM loss only, no geometry tokens, no fusion);
3. times the components: ViT block (forward; frozen), one LLM layer (forward + backward, standalone on the
   captured inputs), the teacher / spatial encoder (forward, and per layer), each head + its loss (forward +
   backward, standalone on the captured taps), the optimizer step; with the peak memory of each;
4. greedy generation on the video, and the export round trip (:func:`~geokit.models.mllms.export.export_hf` then
   :func:`~geokit.models.mllms.export.load_exported`: the largest logit difference on a 2-frame clip);
5. extrapolates to full depth: ``step_full = step + (L - l) t_llm + (V - v) t_vit [+ (D - d) t_teacher_layer] +
   t_opt (P_full / P - 1)`` per case, the ratios GeoVR online / SFT, GeoVR cached / SFT, Spatial-MLLM / SFT, and the
   peak memory per GPU (parameters, gradients, AdamW states at full depth, 1 GPU and the config's ZeRO-2 over 8,
   plus the measured activations grown by the checkpointed layer inputs).

Truncation keeps every width; the teacher's feature layers (e.g. 4, 11, 17, 23 of 24) are served from the truncated
network's layers (:class:`TruncatedLayerTeacher`), so the heads, losses and the cache see the paper's shapes.
On CPU the numbers are wall times of a shared machine: ratios, not absolute speeds, are what transfers.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
import os.path as osp
import platform
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import transformers
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

from geokit.engine.launch import load_config
from geokit.models.mllms.export import export_hf, load_exported
from geokit.models.teachers.cached import CACHE_FORMAT, shard_name, video_key, write_cache_info, write_shard
from geokit.registry import TEACHERS
from geokit.structures import TeacherTargets

from .configs import PAPER_HW, geometry_teacher, oracle_scale_teacher
from .inputs import synthetic_samples
from .measure import count_parameters, device_description, load_average, synchronize, torch_threads
from .published import PUBLISHED, published_config, vggt_1b_config, write_published_processor
from .training import build_model, free_memory

#: Full depths of the released networks (their public configs).
VGGT_1B_DEPTH = 24
#: fps of the synthetic rehearsal video (VSI-Bench's ScanNet / ARKitScenes clips are 24-30 fps).
REHEARSAL_FPS = 30.0


@dataclass
class RehearsalSettings:
    """What :func:`rehearse` runs.

    Attributes:
        config: path of a paper config (``projects/geovr/geovr_qwen3vl-2b_vggt-1b_vsi590k.py`` or the Spatial-MLLM
            one).
        llm_layers, vit_layers, teacher_depth: truncated depths (None: the full depth of the release).
        steps: training steps K of the config's model (>= 2: GeoVR's first is online, the rest cached).
        device: ``'cpu'`` or ``'cuda'``.
        threads: torch intra-op threads (None: torch's default).
        new_tokens: generated tokens in the generation check.
        work_dir: where the teacher cache and the export go (None: a temporary directory).
        seed: random init and synthetic video.
        num_frames, frame_hw: override the config's frame count / VSI-Bench's 480 x 640 (smoke tests only: the
            rehearsal's numbers are for the defaults).
    """

    config: str
    llm_layers: int | None = 1
    vit_layers: int | None = 1
    teacher_depth: int | None = 1
    steps: int = 2
    device: str = 'cpu'
    threads: int | None = None
    new_tokens: int = 2
    work_dir: str | None = None
    seed: int = 0
    cfg_options: dict = field(default_factory=dict)
    num_frames: int | None = None
    frame_hw: tuple[int, int] | None = None


# ---------------------------------------------------------------------------------------------------- teacher
@TEACHERS.register_module()
class TruncatedLayerTeacher(nn.Module):
    """Serves a truncated teacher's features under the full network's layer indices (rehearsal only).

    ``layer_map = {full layer: truncated layer}``: the targets of ``teacher`` get ``features[full] =
    features[truncated]``, so objectives configured for VGGT-1B's layers 4, 11, 17, 23 run on a 1-layer network
    with the same widths and token grids.
    """

    def __init__(self, teacher: dict, layer_map: dict) -> None:
        super().__init__()
        self.teacher = TEACHERS.build(teacher)
        self.layer_map = {int(k): int(v) for k, v in layer_map.items()}

    @torch.no_grad()
    def forward(self, frames: Any, meta: Any, geometry: Any = None) -> TeacherTargets:
        targets = self.teacher(frames, meta, geometry)
        features = {full: targets.features[part] for full, part in self.layer_map.items()}
        return TeacherTargets(**{**{f: getattr(targets, f) for f in ('pose_enc', 'depth', 'depth_conf', 'points',
                                                                       'points_conf', 'metric_scale', 'image_hw')},
                                 'features': features})


def truncated_layer(layer: int, full_depth: int, depth: int) -> int:
    """Layer ``layer`` of a ``full_depth`` network -> the proportional layer of a ``depth``-layer one."""
    layer = layer % full_depth
    return min(depth - 1, layer * depth // full_depth)


def truncated_vggt(teacher: dict, depth: int) -> tuple[dict, dict]:
    """A ``VGGTTeacher`` config at VGGT-1B width with ``depth`` aggregator and DINOv2 layers, and its layer map."""
    public = vggt_1b_config()
    cfg = copy.deepcopy(teacher)
    full_layers = [int(i) for i in cfg.get('feature_layers', (4, 11, 17, 23))]
    layer_map = {full: truncated_layer(full, VGGT_1B_DEPTH, depth) for full in full_layers}
    cfg.update(load_from=None, img_size=public['img_size'], patch_size=public['patch_size'],
               embed_dim=public['embed_dim'], depth=depth, patch_embed_cfg=dict(depth=depth),
               feature_layers=sorted(set(layer_map.values())),
               dpt_head=dict(features=256, out_channels=(256, 512, 1024, 1024),
                             intermediate_layer_idx=tuple(truncated_layer(i, VGGT_1B_DEPTH, depth)
                                                          for i in (4, 11, 17, 23))))
    return cfg, layer_map


# ---------------------------------------------------------------------------------------------------- models
def paper_backbone_config(backbone: dict, llm_layers: int | None, vit_layers: int | None,
                          processor_dir: str, path_dir: str) -> tuple[dict, dict]:
    """The backbone config at the release's widths, truncated; and ``{'llm': full depth, 'vit': full depth}``."""
    kind = backbone['type']
    arch = published_config(kind)
    text = arch['text_config'] if 'text_config' in arch else arch
    vision = arch['vision_config']
    full = {'llm': int(text['num_hidden_layers']), 'vit': int(vision['depth'])}
    llm = full['llm'] if llm_layers is None else min(llm_layers, full['llm'])
    vit = full['vit'] if vit_layers is None else min(vit_layers, full['vit'])
    text['num_hidden_layers'] = llm
    if 'max_window_layers' in text:
        text['max_window_layers'] = max(llm, int(text['max_window_layers']))
    vision['depth'] = vit
    if 'deepstack_visual_indexes' in vision:             # Qwen3-VL: one DeepStack merger per tapped ViT layer
        vision['deepstack_visual_indexes'] = sorted({truncated_layer(i, full['vit'], vit)
                                                     for i in vision['deepstack_visual_indexes']})
    if 'fullatt_block_indexes' in vision:                # Qwen2.5-VL: the last truncated block attends fully
        vision['fullatt_block_indexes'] = sorted({truncated_layer(i, full['vit'], vit)
                                                  for i in vision['fullatt_block_indexes']})
    cfg = dict(copy.deepcopy(backbone), path=path_dir, load_weights=False, config=arch, processor_path=processor_dir)
    return cfg, full


def rehearsal_model_configs(cfg: Config, settings: RehearsalSettings, processor_dir: str, path_dir: str,
                            cache_dir: str) -> tuple[dict[str, dict], dict]:
    """``{'main', 'cached' (GeoVR), 'sft'}`` model configs and the full depths."""
    model = cfg.model.to_dict()
    backbone, full = paper_backbone_config(model['backbone'], settings.llm_layers, settings.vit_layers,
                                           processor_dir, path_dir)
    model['backbone'] = backbone
    depth = VGGT_1B_DEPTH if settings.teacher_depth is None else min(settings.teacher_depth, VGGT_1B_DEPTH)
    full['teacher'] = VGGT_1B_DEPTH
    configs = {}
    if model.get('teacher') is not None:
        if model['teacher'].get('type') == 'MetricScaleTeacher':
            # the metric-depth network needs a local checkpoint: the synthetic video's ground truth stands in
            model['scale_teacher'] = oracle_scale_teacher(geometry_teacher(model['teacher']))
        teacher = geometry_teacher(model['teacher'])
        inner, layer_map = truncated_vggt(teacher, depth)
        model['teacher'] = dict(type='TruncatedLayerTeacher', teacher=inner, layer_map=layer_map)
        cached = copy.deepcopy(model)
        cached['teacher'] = dict(type='CachedTeacher', cache_dir=cache_dir)
        configs['cached'] = cached
    if model.get('fusion') is not None:
        encoder = model['fusion']['spatial_encoder']
        public = vggt_1b_config()
        encoder.update(load_from=None, net=dict(img_size=public['img_size'], patch_size=public['patch_size'],
                                                embed_dim=public['embed_dim'], depth=depth,
                                                patch_embed_cfg=dict(depth=depth),
                                                dpt_head=dict(intermediate_layer_idx=(0, 0, 0, 0))))
    configs['main'] = model
    sft = copy.deepcopy(model)
    sft.update(teacher=None, scale_teacher=None, objectives=[], fusion=None)
    sft['data_preprocessor'] = dict(sft.get('data_preprocessor') or dict(type='QwenVLDataPreprocessor'),
                                    insert_geometry_tokens=False)
    configs['sft'] = sft
    full['teacher_truncated'] = depth
    return configs, full


def rehearsal_samples(cfg: Config, seed: int, num_frames: int | None = None,
                      frame_hw: tuple[int, int] | None = None) -> list[dict]:
    """One synthetic video at the config's frame count, 480 x 640, sampled from a 30 fps clip (fps in meta)."""
    num_frames = num_frames or int(cfg.train_dataloader.dataset.frame_sampler.num_frames)
    sample = synthetic_samples(1, num_frames, *(frame_hw or PAPER_HW), seed=seed)[0]
    sample['frame_indices'] = torch.linspace(0, 30 * 60 - 1, num_frames).round().long()   # a 1-minute clip
    sample['meta'].update(fps=REHEARSAL_FPS, video='rehearsal/synthetic_0.mp4')
    return [sample]


# ---------------------------------------------------------------------------------------------------- probes
class MemoryTimeline:
    """Current memory sampled every few ms (CPU: process RSS; CUDA: ``memory_allocated`` + per-region peaks)."""

    def __init__(self, device: torch.device, interval_s: float = 0.002) -> None:
        self.device, self.interval_s = device, interval_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._page = os.sysconf('SC_PAGE_SIZE')

    def current(self) -> int:
        if self.device.type == 'cuda':
            return int(torch.cuda.memory_allocated(self.device))
        with open('/proc/self/statm') as handle:
            return int(handle.read().split()[1]) * self._page

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self.current()))
            time.sleep(self.interval_s)

    def __enter__(self) -> MemoryTimeline:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def peak_between(self, start: float, end: float) -> int:
        values = [m for t, m in self.samples if start <= t <= end]
        return max(values) if values else self.current()


@dataclass
class Region:
    """Wall time and peak memory of one component (all calls of it in a step are summed / maxed)."""

    ms: float = 0.0
    calls: int = 0
    peak_mib: float = 0.0
    start_mib: float = 0.0


class ForwardProbe:
    """Forward hooks timing modules (wall time incl. their children) and their peak memory (above the start)."""

    def __init__(self, device: torch.device, timeline: MemoryTimeline) -> None:
        self.device, self.timeline = device, timeline
        self.regions: dict[str, Region] = {}
        self._handles: list = []
        self._open: dict[int, tuple[float, int]] = {}

    def attach(self, name: str, module: nn.Module) -> None:
        def pre(mod, args):
            synchronize(self.device)
            self._open[id(mod)] = (time.perf_counter(), self.timeline.current())

        def post(mod, args, out):
            synchronize(self.device)
            start, base = self._open.pop(id(mod))
            end = time.perf_counter()
            region = self.regions.setdefault(name, Region())
            region.ms += (end - start) * 1e3
            region.calls += 1
            region.peak_mib = max(region.peak_mib, (self.timeline.peak_between(start, end) - base) / 2**20)
            region.start_mib = base / 2**20

        self._handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]

    def reset(self) -> None:
        self.regions = {}

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def measure(fn: Callable[[], Any], device: torch.device, timeline: MemoryTimeline) -> tuple[Any, float, float]:
    """``(result, ms, peak MiB above the start)`` of one call."""
    synchronize(device)
    base = timeline.current()
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    end = time.perf_counter()
    return result, (end - start) * 1e3, (timeline.peak_between(start, end) - base) / 2**20


class Capture:
    """Forward pre-hook keeping the positional and keyword inputs of a module's first call."""

    def __init__(self, module: nn.Module) -> None:
        self.args: tuple | None = None
        self.kwargs: dict | None = None
        self._handle = module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        if self.args is None:
            self.args, self.kwargs = args, kwargs

    def close(self) -> None:
        self._handle.remove()


def _fresh(value: Any) -> Any:
    """Detached copies of the floating tensors in ``value`` (requiring grad), everything else as is."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.is_floating_point())
    if isinstance(value, (list, tuple)):
        return type(value)(_fresh(v) for v in value)
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    return value


def _grad_targets(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value] if value.requires_grad else []
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _grad_targets(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _grad_targets(v)]
    return []


def _first_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)):
        return _first_tensor(value[0])
    if hasattr(value, 'last_hidden_state'):
        return value.last_hidden_state
    raise TypeError(f'no tensor in {type(value).__name__}')


# ---------------------------------------------------------------------------------------------------- driver
def quiet_optim_wrapper(model: nn.Module, optim_cfg: dict):
    """``build_optim_wrapper`` without mmengine's per-parameter log lines (thousands at paper width)."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')
    try:
        return build_optim_wrapper(model, copy.deepcopy(optim_cfg))
    finally:
        logger.setLevel(level)


def optim_wrapper_config(cfg: Config) -> dict:
    """The config's optimizer wrapper for single-process steps (one optimizer step per step)."""
    optim = cfg.optim_wrapper.to_dict()
    if optim.get('type') == 'DeepSpeedOptimWrapper':
        raise ValueError('the rehearsal runs single-process steps; rehearse the FSDP variant of this config.')
    optim.pop('accumulative_counts', None)
    return optim


def _loss_values(log: dict) -> dict[str, float]:
    return {k: float(v.detach() if isinstance(v, torch.Tensor) else v) for k, v in log.items() if 'loss' in k}


def rehearse(settings: RehearsalSettings) -> dict:
    """Run the rehearsal (see the module docstring); returns JSON-serialisable results."""
    device = torch.device(settings.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError('--device cuda was requested but CUDA is not available; run on a GPU machine or use '
                           '--device cpu (truncated depth).')
    if settings.steps < 2:
        raise ValueError('steps must be >= 2 (GeoVR: one online step that fills the cache, then cached steps).')
    with torch_threads(settings.threads):
        return _rehearse(settings, device)


def _rehearse(settings: RehearsalSettings, device: torch.device) -> dict:
    init_default_scope('geokit')
    started = time.perf_counter()
    load_before = load_average()
    cfg = load_config(settings.config, settings.cfg_options)
    kind = cfg.model.backbone.type
    if kind not in PUBLISHED:
        raise ValueError(f'{settings.config}: backbone {kind} has no published settings in the repository '
                         f'(known: {sorted(PUBLISHED)}).')
    torch.manual_seed(settings.seed)
    samples = rehearsal_samples(cfg, settings.seed, settings.num_frames, settings.frame_hw)
    if settings.work_dir is not None:
        os.makedirs(settings.work_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='geokit-rehearse-', dir=settings.work_dir) as work, \
            MemoryTimeline(device) as timeline:
        processor_dir = write_published_processor(kind, osp.join(work, 'processor'))
        path_dir = osp.join(work, 'no_weights')
        os.makedirs(path_dir)
        cache_dir = osp.join(work, 'teacher_cache')
        os.makedirs(cache_dir)
        configs, full = rehearsal_model_configs(cfg, settings, processor_dir, path_dir, cache_dir)
        write_cache_info(cache_dir, dict(format=CACHE_FORMAT, source='geokit.benchmarking.rehearsal',
                                         feature_pool=1, feature_dtype='float16', dense_dtype='float32'))
        optim_cfg = optim_wrapper_config(cfg)
        results: dict[str, Any] = dict(
            config=settings.config, settings=asdict(settings), device=device_description(device),
            torch=torch.__version__, transformers=transformers.__version__, python=platform.python_version(),
            torch_threads=torch.get_num_threads(), load_average_before=load_before, full_depth=full,
            inputs=dict(frames=list(samples[0]['frames'].shape), fps=REHEARSAL_FPS,
                        frame_indices=samples[0]['frame_indices'].tolist()),
            optim_wrapper=optim_cfg['type'], backbone_dtype=configs['main']['backbone'].get('dtype', 'float32'))
        print_log(f'rehearse: building {kind} at the release widths ({full}) -> truncated', logger='current')
        main = _rehearse_main(configs, optim_cfg, samples, settings, device, timeline, cache_dir, full, results)
        results.update(main)
        free_memory(device)
        results['sft'] = _rehearse_sft(configs['sft'], optim_cfg, samples, device, timeline)
        free_memory(device)
        results['extrapolation'] = extrapolate(results, full, settings)
    results['wall_s'] = time.perf_counter() - started
    results['load_average_after'] = load_average()
    return results


def _rehearse_main(configs: dict, optim_cfg: dict, samples: list[dict], settings: RehearsalSettings,
                   device: torch.device, timeline: MemoryTimeline, cache_dir: str, full: dict,
                   results: dict) -> dict:
    model = build_model(configs['main'], device).train()
    optim_wrapper = quiet_optim_wrapper(model, optim_cfg)
    hf = model.backbone.hf_model
    probe = ForwardProbe(device, timeline)
    vision_blocks = hf.model.visual.blocks
    for block in vision_blocks:
        probe.attach('vit_block', block)
    probe.attach('vit', hf.model.visual)
    for layer in model.backbone.decoder_layers:
        probe.attach('llm_layer_fwd', layer)
    for name in model.objective_names:
        probe.attach(f'head:{name}', model.heads[name])
        probe.attach(f'loss:{name}', model.losses[name])
    encoder_net = None
    if model.teacher is not None:
        probe.attach('teacher', model.teacher)
        encoder_net = model.teacher.teacher.net.aggregator
    if model.fusion is not None:
        probe.attach('spatial_encoder', model.fusion.spatial_encoder)
        probe.attach('connector', model.fusion.connector)
        encoder_net = model.fusion.spatial_encoder.aggregator
    if encoder_net is not None:
        for block in list(encoder_net.frame_blocks) + list(encoder_net.global_blocks):
            probe.attach('teacher_block', block)
        for block in getattr(encoder_net.patch_embed, 'blocks', []):
            probe.attach('teacher_patch_block', block)
    optimizer_times: list[float] = []
    opt_open: list[float] = []
    optimizer = optim_wrapper.optimizer
    def step_started(*args) -> None:
        synchronize(device)
        opt_open.append(time.perf_counter())

    def step_ended(*args) -> None:
        synchronize(device)
        optimizer_times.append((time.perf_counter() - opt_open.pop()) * 1e3)
    optimizer.register_step_pre_hook(step_started)
    optimizer.register_step_post_hook(step_ended)
    counts = dict(params=count_parameters(model), trainable=count_parameters(model, True),
                  llm_layer=count_parameters(model.backbone.decoder_layers[0]),
                  vit_block=count_parameters(vision_blocks[0]))
    if encoder_net is not None:
        per_layer = count_parameters(encoder_net.frame_blocks[0]) + count_parameters(encoder_net.global_blocks[0])
        patch_blocks = getattr(encoder_net.patch_embed, 'blocks', None)
        per_layer += count_parameters(patch_blocks[0]) if patch_blocks else 0
        counts['teacher_layer'] = per_layer
        teacher_module = model.teacher if model.teacher is not None else model.fusion.spatial_encoder
        counts['teacher'] = count_parameters(teacher_module)

    # ---- training steps (GeoVR: online step 1 writes the cache shard; then cached steps on the same batch)
    captures = {'llm': Capture(model.backbone.decoder_layers[0])}
    captures.update({f'head:{n}': Capture(model.heads[n]) for n in model.objective_names})
    teacher_out: list[TeacherTargets] = []
    teacher_handle = model.teacher.register_forward_hook(lambda m, a, out: teacher_out.append(out)) \
        if model.teacher is not None else None
    steps, cache = [], None
    for index in range(settings.steps):
        probe.reset()
        optimizer_times.clear()
        log, ms, peak = measure(functools.partial(model.train_step, samples, optim_wrapper), device, timeline)
        step = dict(step=index + 1, ms=ms, peak_mib=peak, losses=_loss_values(log),
                    teacher='online' if model.teacher is not None and index == 0 else
                    ('cached' if model.teacher is not None else None),
                    components={k: asdict(v) for k, v in probe.regions.items()},
                    optimizer_ms=sum(optimizer_times))
        steps.append(step)
        print_log(f"rehearse: step {index + 1}/{settings.steps} ({step['teacher'] or 'no teacher'}): "
                  f"{ms / 1e3:.1f} s, loss {step['losses'].get('loss', float('nan')):.4f}", logger='current')
        if index == 0 and model.teacher is not None:
            teacher_handle.remove()
            cache = _write_cache(teacher_out[0], samples[0], cache_dir)
            teacher_out.clear()
            model.frozen['teacher'] = TEACHERS.build(configs['cached']['teacher'])  # frees the online one
            free_memory(device)
    for capture in captures.values():
        capture.close()
    probe.close()

    # ---- standalone components on the captured inputs
    components = {}
    llm = captures['llm']
    layer = model.backbone.decoder_layers[0]
    autocast = _autocast(optim_wrapper, device)

    def llm_fwd_bwd():
        with autocast():
            args, kwargs = _fresh(llm.args), _fresh(llm.kwargs)
            out = _first_tensor(layer(*args, **kwargs))
        out.float().sum().backward()
    _, ms, peak = measure(llm_fwd_bwd, device, timeline)
    components['llm_layer'] = dict(ms=ms, peak_mib=peak, what='fwd+bwd, one decoder layer '
                                   f'({"checkpointed" if hf.is_gradient_checkpointing else "no checkpointing"})')
    hidden_bytes = _first_tensor(llm.args or llm.kwargs['hidden_states']).numel() * 4
    model.zero_grad(set_to_none=True)
    targets = None
    if model.teacher is not None:          # the cached targets (+ the metric scale), as the cached steps saw them
        targets = model._teacher_targets(dict(
            frames=torch.as_tensor(samples[0]['frames'])[None].to(device), geometry=[samples[0]['geometry']],
            meta=[dict(samples[0]['meta'], frame_indices=samples[0]['frame_indices'].tolist())]))
    for name in model.objective_names:
        capture = captures[f'head:{name}']
        head, loss_module = model.heads[name], model.losses[name]

        def head_fwd_bwd(capture=capture, head=head, loss_module=loss_module):
            with autocast():
                features = _fresh(capture.args[0])
                ctx = dataclasses.replace(capture.args[1], targets=targets)
                preds = head(features, ctx)
                out = loss_module(**head.loss_inputs(preds, targets, ctx))
            out['loss'].backward()
        _, ms, peak = measure(head_fwd_bwd, device, timeline)
        components[f'head+loss:{name}'] = dict(ms=ms, peak_mib=peak, what='fwd+bwd (standalone)')
    model.zero_grad(set_to_none=True)
    last = steps[-1]['components']
    first = steps[0]['components']
    vit = last.get('vit_block', {'ms': 0.0, 'calls': 1, 'peak_mib': 0.0})
    components['vit_block'] = dict(ms=vit['ms'] / max(vit['calls'], 1), peak_mib=vit['peak_mib'],
                                   what='fwd, one ViT block (frozen: no backward)')
    components['vit'] = dict(ms=last['vit']['ms'], peak_mib=last['vit']['peak_mib'],
                             what=f'fwd, whole truncated ViT ({len(vision_blocks)} blocks + patch embed + mergers)')
    encoder_key = 'teacher' if 'teacher' in first else ('spatial_encoder' if 'spatial_encoder' in last else None)
    if encoder_key is not None:
        source = first if encoder_key == 'teacher' else last
        blocks = source.get('teacher_block', {'ms': 0.0, 'calls': 0})
        patch = source.get('teacher_patch_block', {'ms': 0.0, 'calls': 0})
        depth = full['teacher_truncated']
        per_layer = (blocks['ms'] + patch['ms']) / depth
        components[encoder_key] = dict(ms=source[encoder_key]['ms'], peak_mib=source[encoder_key]['peak_mib'],
                                       what=f'fwd (no grad), truncated to {depth} layer(s)')
        components[f'{encoder_key}_layer'] = dict(ms=per_layer, peak_mib=float('nan'),
                                                  what='fwd, one frame + one global block + one DINOv2 block')
    if 'connector' in last:
        components['connector'] = dict(ms=last['connector']['ms'], peak_mib=last['connector']['peak_mib'],
                                       what='fwd')
    components['optimizer_step'] = dict(ms=statistics_median([s['optimizer_ms'] for s in steps[1:]]),
                                        peak_mib=float('nan'), what=f'{type(optimizer).__name__}.step over '
                                        f'{counts["trainable"] / 1e6:.0f} M trainable parameters')

    # ---- generation and the export round trip
    generation = _generate(model, samples, settings, device, timeline)
    del optim_wrapper, optimizer
    model.zero_grad(set_to_none=True)
    free_memory(device)
    export = _export_round_trip(model, configs['main'], samples, device)
    return dict(steps=steps, components=components, counts=counts, hidden_bytes_per_layer=hidden_bytes,
                teacher_cache=cache, generation=generation, export=export)


def statistics_median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else float('nan')


def _autocast(optim_wrapper, device: torch.device):
    dtype = getattr(optim_wrapper, 'cast_dtype', None)

    @contextmanager
    def context():
        if dtype is None:
            yield
        else:
            with torch.autocast(device_type=device.type, dtype=dtype):
                yield
    return context


def _write_cache(targets: TeacherTargets, sample: dict, cache_dir: str) -> dict:
    meta = dict(sample['meta'], frame_indices=sample['frame_indices'].tolist())
    key = video_key(meta)
    path = osp.join(cache_dir, shard_name(key, meta['frame_indices']))
    size = write_shard(path, targets, 0, key, meta['frame_indices'])
    layers = sorted(targets.features)
    feature = targets.features[layers[0]]
    return dict(bytes_per_video=size, feature_layers=layers, feature_shape=list(feature.shape[1:]),
                depth_shape=list(targets.depth.shape[1:]), note='one shard per (video, frames): every question '
                'about this video with these frames shares it')


def _generate(model: nn.Module, samples: list[dict], settings: RehearsalSettings, device: torch.device,
              timeline: MemoryTimeline) -> dict:
    model.eval()
    model.max_new_tokens = settings.new_tokens
    model.backbone.hf_model.generation_config.min_new_tokens = settings.new_tokens
    with torch.no_grad():
        data = model.data_preprocessor(samples, False)
        out, ms, peak = measure(lambda: model.predict(**data), device, timeline)
    model.train()
    return dict(ms=ms, peak_mib=peak, new_tokens=settings.new_tokens,
                prompt_tokens=int(data['inputs']['input_ids'].shape[1]), prediction=out[0]['prediction'])


def _export_round_trip(model: nn.Module, model_cfg: dict, samples: list[dict], device: torch.device) -> dict:
    """Export, load back with :func:`load_exported`, compare logits on the first 2 frames of the video."""
    clip = [dict(samples[0], frames=samples[0]['frames'][:2], frame_indices=samples[0]['frame_indices'][:2],
                 geometry=None)]
    model.eval()
    with tempfile.TemporaryDirectory(prefix='geokit-rehearse-export-') as out_dir:
        target = osp.join(out_dir, 'export')
        start = time.perf_counter()
        written = export_hf(model, target, objectives_cfg=model_cfg.get('objectives'),
                            fusion_cfg=model_cfg.get('fusion'),
                            data_preprocessor_cfg=model_cfg.get('data_preprocessor'))
        export_s = time.perf_counter() - start
        size = sum(osp.getsize(osp.join(target, f)) for f in os.listdir(target))
        with torch.no_grad():
            data = model.data_preprocessor(clip, False)
            ours = model(**data, mode='tensor').logits.float()
        files = sorted(os.listdir(target))
        loaded = load_exported(target, device=str(device))
        with torch.no_grad():
            theirs = loaded(**loaded.data_preprocessor(clip, False), mode='tensor').logits.float()
        del loaded
    model.train()
    diff = float((ours - theirs).abs().max())
    return dict(max_abs_logit_diff=diff, equal=diff <= 1e-4, export_s=export_s, bytes=size, files=files,
                fusion='fusion' in written)


def _rehearse_sft(model_cfg: dict, optim_cfg: dict, samples: list[dict], device: torch.device,
                  timeline: MemoryTimeline) -> dict:
    model = build_model(model_cfg, device).train()
    optim_wrapper = quiet_optim_wrapper(model, optim_cfg)
    steps = []
    for _ in range(2):
        log, ms, peak = measure(functools.partial(model.train_step, samples, optim_wrapper), device, timeline)
        steps.append(dict(ms=ms, peak_mib=peak, losses=_loss_values(log)))
    counts = dict(params=count_parameters(model), trainable=count_parameters(model, True))
    del model, optim_wrapper
    print_log(f"rehearse: SFT step {steps[-1]['ms'] / 1e3:.1f} s", logger='current')
    return dict(steps=steps, counts=counts)


# ---------------------------------------------------------------------------------------------------- extrapolation
def extrapolate(results: dict, full: dict, settings: RehearsalSettings) -> dict:
    """Full-depth step times, ratios and peak memory per GPU from the truncated measurements (module docstring)."""
    comp, counts = results['components'], results['counts']
    model_llm = settings.llm_layers if settings.llm_layers is not None else full['llm']
    model_vit = settings.vit_layers if settings.vit_layers is not None else full['vit']
    model_llm, model_vit = min(model_llm, full['llm']), min(model_vit, full['vit'])
    extra_llm, extra_vit = full['llm'] - model_llm, full['vit'] - model_vit
    extra_teacher = full['teacher'] - full['teacher_truncated']
    t_llm, t_vit = comp['llm_layer']['ms'], comp['vit_block']['ms']
    t_teacher_layer = (comp.get('teacher_layer') or comp.get('spatial_encoder_layer') or {'ms': 0.0})['ms']
    t_opt = comp['optimizer_step']['ms']
    trainable_full = counts['trainable'] + extra_llm * counts['llm_layer']
    sft_trainable_full = results['sft']['counts']['trainable'] + extra_llm * counts['llm_layer']
    backbone_extra = extra_llm * t_llm + extra_vit * t_vit

    def full_step(step_ms: float, trainable: int, trainable_trunc: int, teacher: bool) -> float:
        opt = t_opt * (trainable / max(trainable_trunc, 1) - 1)
        return step_ms + backbone_extra + (extra_teacher * t_teacher_layer if teacher else 0.0) + opt

    steps = results['steps']
    sft_ms = results['sft']['steps'][-1]['ms']
    out = dict(formula='step + (L - l) t_llm_layer + (V - v) t_vit_block [+ (D - d) t_teacher_layer] + '
               't_opt (P_full / P - 1)', extra_layers=dict(llm=extra_llm, vit=extra_vit, teacher=extra_teacher))
    out['sft_step_ms'] = full_step(sft_ms, sft_trainable_full, results['sft']['counts']['trainable'], False)
    has_teacher = any(s['teacher'] == 'online' for s in steps)
    if has_teacher:
        online = steps[0]['ms']
        cached = statistics_median([s['ms'] for s in steps[1:]])
        out['geovr_online_step_ms'] = full_step(online, trainable_full, counts['trainable'], True)
        out['geovr_cached_step_ms'] = full_step(cached, trainable_full, counts['trainable'], False)
        out['ratios'] = dict(geovr_online_vs_sft=out['geovr_online_step_ms'] / out['sft_step_ms'],
                             geovr_cached_vs_sft=out['geovr_cached_step_ms'] / out['sft_step_ms'])
        main_ms_key = 'geovr_cached_step_ms'
    else:
        main = statistics_median([s['ms'] for s in steps[1:]])
        out['spatial_mllm_step_ms'] = full_step(main, trainable_full, counts['trainable'], True)
        out['ratios'] = dict(spatial_mllm_vs_sft=out['spatial_mllm_step_ms'] / out['sft_step_ms'])
        main_ms_key = 'spatial_mllm_step_ms'
    out['main_step_ms_key'] = main_ms_key
    # memory: fp32 parameters everywhere, fp32 gradients + two fp32 AdamW states for the trainable ones
    # the frozen teacher / spatial encoder lives outside the model's module tree: count it explicitly
    params_full = counts['params'] + counts.get('teacher', 0) + extra_llm * counts['llm_layer'] + \
        extra_vit * counts['vit_block'] + extra_teacher * counts.get('teacher_layer', 0)
    # growth during a later step (states exist by then) = gradients (re-allocated each step) + activations
    growth = steps[-1]['peak_mib'] * 2**20
    activations = max(growth - 4 * counts['trainable'], 0) + extra_llm * results['hidden_bytes_per_layer']
    memory = {}
    for world in (1, 8):
        static = 4 * params_full + 12 * trainable_full / world
        memory[f'gpus_{world}'] = (static + activations) / 2**30
    out['peak_memory_gib_per_gpu'] = memory
    out['params_full'] = params_full
    out['trainable_full'] = trainable_full
    out['activations_gib'] = activations / 2**30
    return out


# ---------------------------------------------------------------------------------------------------- report
def markdown_report(results: dict) -> str:
    """The rehearsal's tables (components, steps, extrapolation) as markdown."""
    lines = [f"Rehearsal of `{results['config']}` on {results['device']} (torch {results['torch']}, "
             f"{results['torch_threads']} threads, load average before {results['load_average_before']}); "
             f"video {results['inputs']['frames']} at {results['inputs']['fps']} fps; depth "
             f"{dict((k, v) for k, v in results['settings'].items() if k.endswith(('layers', 'depth')))} of "
             f"{ {k: v for k, v in results['full_depth'].items() if k != 'teacher_truncated'} }; "
             f"{results['optim_wrapper']} with {results['backbone_dtype']} weights; wall "
             f"{results['wall_s']:.0f} s.", '',
             '| component | what | time ms | peak MiB |', '|---|---|---:|---:|']
    for name, value in results['components'].items():
        peak = value['peak_mib']
        lines.append(f"| {name} | {value['what']} | {value['ms']:.0f} | "
                     f"{'-' if peak != peak else f'{peak:.0f}'} |")
    lines += ['', '| step | teacher | time s | peak MiB | loss | losses |', '|---:|---|---:|---:|---:|---|']
    for step in results['steps']:
        parts = ', '.join(f'{k} {v:.4f}' for k, v in step['losses'].items() if k != 'loss')
        lines.append(f"| {step['step']} | {step['teacher'] or '-'} | {step['ms'] / 1e3:.1f} | "
                     f"{step['peak_mib']:.0f} | {step['losses'].get('loss', float('nan')):.4f} | {parts} |")
    for index, step in enumerate(results['sft']['steps']):
        lines.append(f"| SFT {index + 1} | - | {step['ms'] / 1e3:.1f} | {step['peak_mib']:.0f} | "
                     f"{step['losses'].get('loss', float('nan')):.4f} | |")
    ext = results['extrapolation']
    lines += ['', f"Extrapolated to full depth ({ext['formula']}; extra layers {ext['extra_layers']}):", '',
              '| quantity | value |', '|---|---:|']
    for key in ('sft_step_ms', 'geovr_online_step_ms', 'geovr_cached_step_ms', 'spatial_mllm_step_ms'):
        if key in ext:
            lines.append(f'| {key.replace("_ms", "")} | {ext[key] / 1e3:.1f} s |')
    for key, value in ext['ratios'].items():
        lines.append(f'| **{key.replace("_vs_", " / ")}** | **{value:.3f}** |')
    for key, value in ext['peak_memory_gib_per_gpu'].items():
        gpus = key.replace('gpus_', '')
        lines.append(f'| peak memory per GPU, {gpus} GPU{"" if gpus == "1" else "s, ZeRO-2"} | {value:.1f} GiB |')
    lines.append(f"| parameters / trainable at full depth | {ext['params_full'] / 1e9:.2f} B / "
                 f"{ext['trainable_full'] / 1e9:.2f} B |")
    if results.get('teacher_cache'):
        cache = results['teacher_cache']
        lines.append(f"| teacher cache, bytes per video | {cache['bytes_per_video'] / 1e6:.1f} MB "
                     f"({len(cache['feature_layers'])} feature maps {cache['feature_shape']}, depth "
                     f"{cache['depth_shape']}) |")
    gen, export = results['generation'], results['export']
    lines.append(f"| generation ({gen['prompt_tokens']} prompt tokens + {gen['new_tokens']} new) | "
                 f"{gen['ms'] / 1e3:.1f} s |")
    lines.append(f"| export round trip: max abs logit difference (load_exported) | {export['max_abs_logit_diff']:.2e} "
                 f"({'equal' if export['equal'] else 'DIFFERENT'}; {export['bytes'] / 1e9:.2f} GB"
                 f"{', spatial encoder + connector included' if export['fusion'] else ', plain HF'}) |")
    return '\n'.join(lines)


def write_json(results: dict, path: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as handle:
        json.dump(results, handle, indent=2, default=str)
