"""tools/gpu_verify.py --dry-run: every GPU step's command exists, its imports resolve and its flags are accepted."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tools'))

import gpu_verify  # noqa: E402


def test_dry_run_passes_on_cpu(tmp_path):
    result = subprocess.run([sys.executable, 'tools/gpu_verify.py', '--dry-run', '--out', str(tmp_path)], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads((tmp_path / 'gpu_verify.json').read_text())
    assert report['mode'] == 'dry-run' and report['missing'] == {}
    steps = {step['name']: step['status'] for step in report['steps']}
    assert steps == {name: 'passed' for name in ('triton_parity', 'kernel_bench', 'rehearse_geovr',
                                                  'rehearse_spatial_mllm', 'fsdp_zero2', 'fsdp_zero3',
                                                  'deepspeed_zero2')}
    assert (tmp_path / 'gpu_verify.md').read_text().count('| passed |') == 7


def test_dry_run_catches_a_flag_the_tool_does_not_take():
    help_text = 'usage: rehearse.py [--device {cpu,cuda}] [--json JSON] [--strategy ...]'
    argv = ['python', 'tools/rehearse.py', 'CONFIG', '--device', 'cuda', '--json', 'x', '--check-resume']
    assert gpu_verify.unknown_flags(argv, help_text) == ['--check-resume']


def test_every_package_a_step_needs_is_importable_or_carried():
    steps = gpu_verify.build_steps('/tmp/out')
    provided = gpu_verify.manifest_names()
    assert {'mmengine', 'mmcv-lite', 'kornia', 'av', 'deepspeed'} <= provided
    assert gpu_verify.missing_packages(steps, provided) == {}
    lacking = gpu_verify.Step('x', ['python', 'tools/rehearse.py'], 1, needs=['geokit_no_such_package'])
    assert gpu_verify.missing_packages([lacking], provided) == {'x': ['geokit_no_such_package']}


def test_the_time_boxes_fit_one_nine_minute_device_call():
    install_and_probe = 60 + 30
    assert sum(step.timeout_s for step in gpu_verify.build_steps('/tmp/out')) + install_and_probe <= 9 * 60
