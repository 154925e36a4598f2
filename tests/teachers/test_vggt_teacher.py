"""VGGTTeacher: interface, frozen, preprocessing, feature halves, chunking."""
from __future__ import annotations

import pytest
import torch

from geokit.models.teachers import TeacherView, VGGTTeacher
from geokit.registry import TEACHERS


@pytest.mark.parametrize('mode, frame_hw, out_hw', [('crop', (480, 640), (392, 518)), ('crop', (640, 480), (518, 518)),
                                                    ('pad', (640, 480), (518, 518)), ('pad', (480, 640), (518, 518))])
def test_view_sizes_follow_vggt(mode, frame_hw, out_hw):
    view = TeacherView(518, 14, mode)
    assert view.output_hw(*frame_hw) == out_hw
    frames = torch.zeros(1, 1, *frame_hw, 3, dtype=torch.uint8)
    images = view.images(frames)
    assert images.shape == (1, 1, 3, *out_hw)
    if mode == 'pad' and frame_hw[0] > frame_hw[1]:  # portrait: white padding left/right, black image
        assert images[0, 0, :, :, 0].min() == 1.0 and images[0, 0, :, 259, 259].max() == 0.0
        assert not view.valid_mask(*frame_hw)[:, 0].any() and view.valid_mask(*frame_hw)[:, 259].all()


def test_view_warps_intrinsics_like_pixels():
    view = TeacherView(70, 14, 'crop')
    k = torch.tensor([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])  # principal point at the centre of 64 x 48
    warped = view.intrinsics(k, (48, 64))
    out_h, out_w = view.output_hw(48, 64)
    assert warped[0, 2] == pytest.approx((out_w - 1) / 2) and warped[1, 2] == pytest.approx((out_h - 1) / 2)
    assert warped[0, 0] == pytest.approx(50.0 * 70 / 64)


def test_teacher_outputs_and_frozen(tiny_vggt_cfg):
    torch.manual_seed(0)
    teacher = TEACHERS.build(dict(type='VGGTTeacher', with_points=True, **tiny_vggt_cfg))
    teacher.train()
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    frames = torch.randint(0, 256, (2, 3, 42, 56, 3), dtype=torch.uint8)
    targets = teacher(frames, [{}, {}], [None, None])
    h, w = targets.image_hw
    assert (h, w) == (42, 56)
    assert targets.pose_enc.shape == (2, 3, 9) and targets.depth.shape == (2, 3, h, w)
    assert targets.depth_conf.shape == (2, 3, h, w) and bool((targets.depth_conf > 1).all())
    assert bool((targets.depth > 0).all()) and targets.points.shape == (2, 3, h, w, 3)
    assert sorted(targets.features) == [0, 1] and targets.features[1].shape == (2, 3, 3, 4, 64)
    assert targets.metric_scale is None and not targets.depth.requires_grad
    # videos are independent; chunked dense heads give the same result
    single = teacher(frames[1:], [{}], [None])
    assert torch.allclose(single.depth[0], targets.depth[1], atol=1e-5)
    teacher.frames_chunk_size = 1
    chunked = teacher(frames, [{}, {}], [None, None])
    assert torch.allclose(chunked.depth, targets.depth, atol=1e-6)


def test_feature_parts_are_halves(tiny_vggt_cfg):
    torch.manual_seed(0)
    both = VGGTTeacher(feature_part='both', **tiny_vggt_cfg)
    frames = torch.randint(0, 256, (1, 2, 56, 56, 3), dtype=torch.uint8)
    full = both(frames, [{}], [None]).features[1]
    for part, sl in (('frame', slice(0, 32)), ('global', slice(32, 64))):
        both.feature_part = part
        assert torch.equal(both(frames, [{}], [None]).features[1], full[..., sl])
    with pytest.raises(ValueError, match='feature_layers'):
        VGGTTeacher(**{**tiny_vggt_cfg, 'feature_layers': (5,)})


def test_camera_head_detaches_the_accumulated_pose_between_iterations():
    """As VGGT: the pose of iteration k is ``detach(pose_{k-1}) + delta_k``, so the last prediction's gradient
    reaches only the last refinement's delta (not the earlier deltas through the running sum)."""
    from geokit.models.teachers.vggt.heads import CameraHead
    torch.manual_seed(0)
    head = CameraHead(dim_in=32, trunk_depth=1, num_heads=2)
    deltas = []
    head.pose_branch.register_forward_hook(lambda module, args, out: deltas.append(out))
    predictions = head(torch.randn(1, 3, 5, 32), num_iterations=3)
    assert len(predictions) == len(deltas) == 3
    grads = torch.autograd.grad(predictions[-1][..., :7].sum(), deltas, allow_unused=True)
    assert grads[0] is None and grads[1] is None
    assert torch.equal(grads[2][..., :7], torch.ones_like(grads[2][..., :7]))
