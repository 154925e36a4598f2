"""VGGTGeometryModel: ground-truth supervision of a VGGT from geometry_collate batches; export -> teacher."""
from __future__ import annotations

import torch
from mmengine.dataset import pseudo_collate

from geokit.datasets import geometry_collate
from geokit.models.teachers import VGGTTeacher
from geokit.models.teachers.vggt import save_vggt_weights
from geokit.registry import MODELS
from projects.tiny_teacher.tiny_teacher import evaluate_teacher

from ...teachers.conftest import TINY_VGGT, plane_scene


def test_training_step_and_export(tmp_path):
    torch.manual_seed(0)
    net = {k: v for k, v in TINY_VGGT.items() if k not in ('image_size', 'feature_layers')}
    model = MODELS.build(dict(type='VGGTGeometryModel', net=net, image_size=56, train_frames=(2, 3),
                              camera_loss=dict(type='CameraPoseLoss'), depth_loss=dict(type='ConfidenceDepthLoss')))
    samples = [plane_scene(num_frames=3, seed=s) for s in range(2)]
    batch = geometry_collate(samples)  # what the runner's dataloader hands the model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        out = model(**batch, mode='loss')
        assert {'loss_camera', 'loss_depth'} <= set(out) and all(torch.isfinite(v) for v in out.values())
        total = out['loss_camera'] + out['loss_depth']
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(total.item())
    assert losses[-1] < losses[0]
    save_vggt_weights(model.vggt, tmp_path / 'teacher.safetensors')
    teacher = VGGTTeacher(load_from=tmp_path / 'teacher.safetensors', **TINY_VGGT)
    metrics = evaluate_teacher(teacher, samples, progress=False)
    assert metrics['videos'] == 2 and metrics['pairs'] == 6 and 0 <= metrics['auc30'] <= 1
    assert metrics['abs_rel'] >= 0


def test_contiguous_train_window_draws_consecutive_frames_in_either_direction():
    import pytest

    net = {k: v for k, v in TINY_VGGT.items() if k not in ('image_size', 'feature_layers')}
    model = MODELS.build(dict(type='VGGTGeometryModel', net=net, image_size=56, train_frames=(3, 3),
                              train_window='contiguous'))
    frames = torch.arange(8, dtype=torch.uint8).view(1, 8, 1, 1, 1).expand(1, 8, 2, 2, 3)
    geometry = [{'depth': torch.arange(8.0)}]
    torch.manual_seed(0)
    steps = set()
    for _ in range(20):
        kept, kept_geometry = model._subset(frames, geometry)
        index = kept[0, :, 0, 0, 0].long()
        assert torch.equal(kept_geometry[0]['depth'].long(), index)  # frames and geometry stay paired
        steps.add(tuple((index[1:] - index[:-1]).tolist()))
    assert steps == {(1, 1), (-1, -1)}
    with pytest.raises(ValueError, match='train_window must be one of'):
        MODELS.build(dict(type='VGGTGeometryModel', net=net, image_size=56, train_window='strided'))


def test_pseudo_collated_batches_are_refused_naming_geometry_collate():
    import pytest

    net = {k: v for k, v in TINY_VGGT.items() if k not in ('image_size', 'feature_layers')}
    model = MODELS.build(dict(type='VGGTGeometryModel', net=net, image_size=56))
    with pytest.raises(TypeError, match="geokit.geometry_collate"):
        model(**pseudo_collate([plane_scene(num_frames=2, seed=0)]), mode='loss')


def _qa_sample(options, seed: int) -> dict:
    """A plane scene as a QA dataset item: conversations and options of its own type (None or a list)."""
    sample = plane_scene(num_frames=2, height=56, width=56, seed=seed)
    return dict(sample, conversations=[{'from': 'human', 'value': 'q'}], meta=dict(sample['meta'], options=options))


def test_geometry_collate_batch_of_qa_samples_trains_the_model():
    """QA samples whose options differ in type (which pseudo_collate cannot merge) batch through geometry_collate."""
    net = {k: v for k, v in TINY_VGGT.items() if k not in ('image_size', 'feature_layers')}
    model = MODELS.build(dict(type='VGGTGeometryModel', net=net, image_size=56))
    losses = model(**geometry_collate([_qa_sample(None, 0), _qa_sample(['A. 1'], 1)]), mode='loss')
    assert torch.isfinite(losses['loss_camera']) and torch.isfinite(losses['loss_depth'])
