"""The torch reference cores of geokit.ops: known values, NaN safety, gradcheck."""
import pytest
import torch
from torch.autograd import gradcheck

from geokit.ops.reference import confidence_depth_loss, cosine_alignment_loss, silog_loss


def depth_inputs(shape=(2, 2, 8, 8), seed=0):
    gen = torch.Generator().manual_seed(seed)
    pred = (0.5 + torch.rand(shape, generator=gen, dtype=torch.float64)).requires_grad_()
    conf = (1 + torch.rand(shape, generator=gen, dtype=torch.float64)).requires_grad_()
    target = 0.5 + torch.rand(shape, generator=gen, dtype=torch.float64)
    mask = torch.rand(shape, generator=gen) > 0.3
    return pred, conf, target, mask


def test_confidence_depth_known_value():
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    target = torch.zeros_like(pred) + torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    conf = torch.full_like(pred, 2.0)
    mask = torch.ones_like(pred, dtype=torch.bool)
    # d = [[0, 1], [2, 3]]; reg = (2 * 6 - 4 * 0.2 * log 2) / 4
    reg = (12 - 0.8 * torch.log(torch.tensor(2.0))) / 4
    # scale 0: gx = 2 * (1 + 1), gy = 2 * (2 + 2) -> 12 / 4; scale 1: one pixel, no pairs -> 0; mean over scales
    expected = reg + 0.5 * (3.0 + 0.0) / 2
    out = confidence_depth_loss(pred, conf, target, mask, alpha=0.2, grad_weight=0.5, num_scales=2)
    torch.testing.assert_close(out, expected)


def test_silog_known_value():
    pred = torch.tensor([[2.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    target = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    mask = torch.ones_like(pred, dtype=torch.bool)
    log2 = torch.log(torch.tensor(2.0))
    v0 = torch.sqrt(log2 ** 2 - 0.5 * log2 ** 2)
    v1 = torch.sqrt(torch.tensor(1e-8))
    torch.testing.assert_close(silog_loss(pred, target, mask, lambd=0.5), (v0 + v1) / 2)
    torch.testing.assert_close(silog_loss(pred[:1] * 7, target[:1], mask[:1], lambd=1.0), v1)


def test_cosine_known_value():
    student = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    teacher = torch.tensor([[2.0, 0.0], [1.0, 0.0], [-1.0, -1.0], [1.0, 0.0]])
    torch.testing.assert_close(cosine_alignment_loss(student, teacher), torch.tensor((0 + 1 + 2 + 1) / 4))
    mask = torch.tensor([True, False, True, False])
    torch.testing.assert_close(cosine_alignment_loss(student, teacher, mask), torch.tensor(1.0))


def test_nan_safety_values_and_grads():
    pred, conf, target, mask = depth_inputs()
    bad_target = target.clone()
    bad_target[0, 0, :2] = float('nan')
    bad_target[0, 1, :2] = 0.0
    bad_target[1, 0, :2] = -1.0
    bad_pred = pred.detach().clone()
    bad_pred[1, 1, 0, 0] = float('nan')
    bad_pred.requires_grad_()
    for loss in (confidence_depth_loss(bad_pred, conf, bad_target, mask),
                 silog_loss(bad_pred, bad_target, mask)):
        assert torch.isfinite(loss)
        grads = torch.autograd.grad(loss, [bad_pred])
        assert all(torch.isfinite(g).all() for g in grads)
    student = torch.randn(6, 4, dtype=torch.float64)
    student[0] = float('nan')
    student[1] = 0.0
    student.requires_grad_()
    loss = cosine_alignment_loss(student, torch.randn(6, 4, dtype=torch.float64))
    assert torch.isfinite(loss)
    assert torch.isfinite(torch.autograd.grad(loss, student)[0]).all()


def test_empty_mask_gives_zero_with_zero_grads():
    pred, conf, target, mask = depth_inputs()
    empty = torch.zeros_like(mask)
    for loss in (confidence_depth_loss(pred, conf, target, empty), silog_loss(pred, target, empty)):
        assert loss.item() == 0.0
        (grad,) = torch.autograd.grad(loss, pred)
        assert grad.abs().max() == 0
    student = torch.randn(3, 4, requires_grad=True)
    loss = cosine_alignment_loss(student, torch.randn(3, 4), torch.zeros(3, dtype=torch.bool))
    assert loss.item() == 0.0


def test_fp32_accumulation_for_half_inputs():
    pred, conf, target, mask = depth_inputs()
    out = confidence_depth_loss(pred.detach().bfloat16(), conf.detach().bfloat16(), target.bfloat16(), mask)
    assert out.dtype == torch.float32


def test_shape_errors():
    pred, conf, target, mask = depth_inputs()
    with pytest.raises(ValueError, match=r'\(2, 2, 8, 8\).*\(2, 2, 8, 7\)'):
        confidence_depth_loss(pred, conf, target[..., :7], mask)
    with pytest.raises(ValueError, match=r'\(3, 4\).*\(3, 5\)'):
        cosine_alignment_loss(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r'\(2, 2, 8, 8\)'):
        silog_loss(pred, target[0], None)


def test_gradcheck_cores():
    pred, conf, target, mask = depth_inputs(shape=(1, 2, 5, 5))
    assert gradcheck(lambda p, c: confidence_depth_loss(p, c, target, mask, num_scales=3), (pred, conf))
    assert gradcheck(lambda p: silog_loss(p, target, mask), (pred,))
    gen = torch.Generator().manual_seed(1)
    student = torch.randn(6, 4, generator=gen, dtype=torch.float64).requires_grad_()
    teacher = torch.randn(6, 4, generator=gen, dtype=torch.float64).requires_grad_()
    assert gradcheck(lambda s, t: cosine_alignment_loss(s, t, torch.tensor([1, 1, 0, 1, 1, 1]).bool()),
                     (student, teacher))
