"""Dispatcher behaviour of ``geokit.ops`` without the Triton interpreter (CPU tensors -> torch reference)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from geokit import ops
from geokit.ops import reference

REPO = Path(__file__).resolve().parents[2]


def _inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 2, 8, 9, generator=g) + 0.1
    y = torch.rand(2, 2, 8, 9, generator=g) + 0.1
    m = torch.rand(2, 2, 8, 9, generator=g) > 0.3
    return x, y, m


@pytest.mark.parametrize('impl', ['auto', 'torch'])
def test_cpu_dispatch_is_the_reference(impl):
    x, y, m = _inputs()
    depth = ops.confidence_depth_loss(x, 1 + y, y, m, alpha=0.3, grad_weight=0.5, num_scales=2, impl=impl)
    assert torch.equal(depth, reference.confidence_depth_loss(x, 1 + y, y, m, 0.3, 0.5, 2))
    s, t = x.flatten(1), y.flatten(1)
    cos = ops.cosine_alignment_loss(s, t, m[:, 0, 0, 0], impl=impl)
    assert torch.equal(cos, reference.cosine_alignment_loss(s, t, m[:, 0, 0, 0]))
    silog = ops.silog_loss(x, y, m, lambd=0.5, impl=impl)
    assert torch.equal(silog, reference.silog_loss(x, y, m, lambd=0.5))


def test_auto_keeps_float64_on_the_reference():
    x, y, m = _inputs()
    loss = ops.silog_loss(x.double(), y.double(), m)
    assert loss.dtype == torch.float64


def test_unknown_impl_is_rejected():
    x, y, m = _inputs()
    with pytest.raises(ValueError, match='impl must be one of'):
        ops.silog_loss(x, y, m, impl='cuda')


def _run_python(code: str, **env_changes: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in env_changes}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_triton_on_cpu_without_interpreter_raises():
    from geokit.ops import silog_kernels
    assert not silog_kernels.INTERPRETED, 'run the main test suite without TRITON_INTERPRET=1 (see tests/ops)'
    x = torch.rand(1, 1, 4, 4) + 0.1
    with pytest.raises(RuntimeError, match='TRITON_INTERPRET=1'):
        ops.silog_loss(x, x, None, impl='triton')


def test_imports_and_falls_back_without_triton():
    """In a child process where ``import triton`` fails: geokit.ops imports, 'auto' uses the reference and
    'triton' raises an ImportError that names the package, without importing a kernel module."""
    check_missing = """
        import sys
        sys.modules['triton'] = None  # make `import triton` fail
        import torch, geokit.ops as ops
        x = torch.rand(1, 1, 4, 4) + 0.1
        assert abs(ops.silog_loss(x, x, None).item() - 1e-4) < 1e-9  # sqrt of the 1e-8 variance floor
        try:
            ops.cosine_alignment_loss(x[0, 0], x[0, 0], impl='triton')
        except ImportError as e:
            assert '`triton`' in str(e), e
            assert 'geokit.ops.cosine_kernels' not in sys.modules
            print('OK')
    """
    proc = _run_python(check_missing, TRITON_INTERPRET=None)
    assert proc.stdout.strip() == 'OK', proc.stdout + proc.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device to run the compiled Triton kernels')
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_cuda_parity(dtype):
    """Compiled kernels vs reference on the GPU (fp32: 1e-5; bf16 inputs: both accumulate in fp32)."""
    g = torch.Generator(device='cuda').manual_seed(0)
    shape = (2, 3, 67, 95)
    pred = (torch.rand(shape, device='cuda', generator=g) * 4 + 0.2).to(dtype)
    target = (torch.rand(shape, device='cuda', generator=g) * 4 + 0.2).to(dtype)
    conf = (1 + torch.rand(shape, device='cuda', generator=g)).to(dtype)
    mask = torch.rand(shape, device='cuda', generator=g) < 0.7
    feats = torch.randn(2, 300, 130, device='cuda', generator=g).to(dtype)
    rows = torch.rand(300, device='cuda', generator=g) < 0.8
    cases = [
        (ops.confidence_depth_loss, (pred, conf, target, mask)),
        (ops.cosine_alignment_loss, (feats[0], feats[1], rows)),
        (ops.silog_loss, (pred, target, mask)),
    ]
    for fn, args in cases:
        leaves_f = [a.clone().requires_grad_(a.is_floating_point()) for a in args]
        leaves_r = [a.clone().requires_grad_(a.is_floating_point()) for a in args]
        loss_f = fn(*leaves_f, impl='triton')
        loss_r = fn(*leaves_r, impl='torch')
        loss_f.backward()
        loss_r.backward()
        torch.testing.assert_close(loss_f, loss_r, rtol=1e-5 if dtype == torch.float32 else 1e-3, atol=1e-6)
        rtol, atol_frac = (1e-5, 1e-6) if dtype == torch.float32 else (1e-2, 1e-2)
        for a, b in zip(leaves_f, leaves_r):
            if b.grad is not None:
                atol = atol_frac * float(b.grad.float().abs().max())
                torch.testing.assert_close(a.grad.float(), b.grad.float(), rtol=rtol, atol=atol)


class _FakeCudaTensor:
    """Stands in for a CUDA tensor in the dispatch decision (no GPU here): only what ``resolve_impl`` reads."""
    is_cuda = True
    dtype = torch.float32
    device = torch.device('cuda', 0)

    def is_floating_point(self) -> bool:
        return True


def test_auto_picks_triton_only_on_verified_device_classes(monkeypatch):
    monkeypatch.setattr(ops, 'device_class', lambda device: 'NVIDIA H200')
    monkeypatch.setattr(ops, 'triton_available', lambda: True)
    fake = _FakeCudaTensor()
    monkeypatch.setattr(ops, 'TRITON_VERIFIED_DEVICES', frozenset())
    assert ops.resolve_impl('auto', fake, kernel_module='silog_kernels') == 'torch'   # unverified GPU: reference
    assert ops.resolve_impl('triton', fake, kernel_module='silog_kernels') == 'triton'  # explicit choice holds
    monkeypatch.setattr(ops, 'TRITON_VERIFIED_DEVICES', frozenset({'NVIDIA H200'}))
    assert ops.resolve_impl('auto', fake, kernel_module='silog_kernels') == 'triton'


def test_verified_devices_are_recorded_in_the_benchmarks_doc():
    text = (REPO / 'docs' / 'benchmarks.md').read_text()
    assert 'TRITON_VERIFIED_DEVICES' in text
    for name in ops.TRITON_VERIFIED_DEVICES:
        assert name in text, f'{name} is in geokit.ops.TRITON_VERIFIED_DEVICES but not recorded in docs/benchmarks.md'


@pytest.mark.parametrize('loss', ['ConfidenceDepthLoss', 'ScaleInvariantDepthLoss', 'FeatureAlignmentLoss',
                                  'CameraPoseLoss', 'MetricScaleLoss'])
def test_every_loss_config_exposes_impl(loss):
    import geokit.models  # noqa: F401  (registers the losses)
    from geokit.registry import LOSSES
    for impl in ('auto', 'torch'):
        assert LOSSES.build(dict(type=loss, impl=impl)).impl == impl
    with pytest.raises(ValueError, match='impl'):
        LOSSES.build(dict(type=loss, impl='cuda'))
    has_kernel = loss in ('ConfidenceDepthLoss', 'ScaleInvariantDepthLoss', 'FeatureAlignmentLoss')
    if has_kernel:
        assert LOSSES.build(dict(type=loss, impl='triton')).impl == 'triton'
    else:
        with pytest.raises(ValueError, match='no Triton kernel'):
            LOSSES.build(dict(type=loss, impl='triton'))


def test_loss_impl_torch_is_the_reference_path():
    import geokit.models  # noqa: F401
    from geokit.registry import LOSSES
    x, y, m = _inputs()
    for impl in ('auto', 'torch'):
        out = LOSSES.build(dict(type='ConfidenceDepthLoss', impl=impl))(x, 1 + y, y, m)['loss']
        assert torch.equal(out, reference.confidence_depth_loss(x, 1 + y, y, m, 0.2, 1.0, 4))
