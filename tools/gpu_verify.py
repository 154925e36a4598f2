"""Every GPU-side check of geokit in one time-boxed run on a lent CUDA machine, with one JSON + markdown report.

The device machine has its own torch / transformers / triton but not geokit's other dependencies: they travel as
wheels in ``.whl/`` (fetched here by ``tools/gpu_wheels.sh``) and are installed into a scratch site directory first.
Then, in order, each step with its own time box, its output kept whatever a later step does:

1. ``triton_parity``: the CUDA Triton parity tests (``pytest -m gpu``).
2. ``kernel_bench``: ``tools/benchmark_kernels.py`` (fused vs eager, achieved bandwidth as % of the device's peak).
3. ``rehearse_geovr`` / ``rehearse_spatial_mllm``: ``tools/rehearse.py --device cuda`` on both paper configs at
   full depth (random weights): step times, peak memory and the GeoVR / Spatial-MLLM vs SFT ratios.
4. ``fsdp_zero2`` / ``fsdp_zero3`` / ``deepspeed_zero2``: one training step of the GeoVR paper config at truncated
   depth under each strategy (``torchrun``, one process), a checkpoint save and a resume.

    bash tools/gpu_wheels.sh                              # here: fetch the wheels the device machine lacks
    python3 tools/gpu_verify.py --out "$OUT"              # there (device tool: carry .whl)
    python tools/gpu_verify.py --dry-run                  # any machine: every step's command exists and imports

``--dry-run`` runs nothing on a GPU: it checks that each step's entry point exists and that its Python imports
resolve (each tool is started with ``--help``; pytest collects the GPU tests), and that every package the steps need
is importable or carried as a wheel.

Outputs under ``--out``: ``gpu_verify.json``, ``gpu_verify.md`` and ``gpu_verify.log`` (every step's output in
order), plus the JSON files the steps write themselves. Exit status: 0 when every step passed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GEOVR_PAPER = 'projects/geovr/geovr_qwen3vl-2b_vggt-1b_vsi590k.py'
SPATIAL_MLLM_PAPER = 'projects/spatial_mllm/spatial_mllm_qwen2_5vl-3b_vggt-1b_vsi590k.py'
#: Wheels the device machine lacks (``tools/gpu_wheels.sh`` downloads exactly these distributions).
WHEEL_MANIFEST = REPO / 'tools' / 'gpu_wheels.txt'


@dataclass
class Step:
    """One time-boxed command of the verification.

    Attributes:
        name: report key.
        argv: the command; ``{out}`` and ``{python}`` are substituted.
        timeout_s: wall-clock limit; the whole process group is killed when it is reached.
        dry_argv: what ``--dry-run`` runs instead (imports and argument parsing only); None: only check ``argv[1]``.
        needs: importable packages (or carried wheels) the step needs.
    """

    name: str
    argv: list[str]
    timeout_s: int
    dry_argv: list[str] | None = None
    needs: list[str] = field(default_factory=list)


@dataclass
class StepResult:
    name: str
    command: str
    status: str  # 'passed' | 'failed' | 'timeout' | 'skipped'
    returncode: int | None
    seconds: float
    tail: str


def build_steps(out: str) -> list[Step]:
    """The verification steps in the order they run: their time boxes, with the install's 60 s and the environment
    probe's 30 s, sum to 520 s, inside one 9-minute device call."""
    py = sys.executable
    rehearse = [py, 'tools/rehearse.py']
    torchrun = [py, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '1']
    truncated = ['--llm-layers', '2', '--vit-layers', '2', '--teacher-depth', '2', '--steps', '1']
    steps = [
        Step('triton_parity', [py, '-m', 'pytest', '-m', 'gpu', 'tests/ops', '-q', '-p', 'no:cacheprovider'], 60,
             dry_argv=[py, '-m', 'pytest', '-m', 'gpu', 'tests/ops', '-q', '--collect-only', '-p',
                       'no:cacheprovider'], needs=['triton', 'mmengine', 'kornia']),
        Step('kernel_bench', [py, 'tools/benchmark_kernels.py', '--json', f'{out}/kernels.json'], 45,
             needs=['triton']),
        Step('rehearse_geovr', [*rehearse, GEOVR_PAPER, '--device', 'cuda', '--json', f'{out}/rehearse_geovr.json'],
             110, needs=['mmengine', 'kornia', 'av']),
        Step('rehearse_spatial_mllm', [*rehearse, SPATIAL_MLLM_PAPER, '--device', 'cuda', '--json',
                                       f'{out}/rehearse_spatial_mllm.json'], 110, needs=['mmengine', 'kornia', 'av']),
    ]
    for strategy, needs in (('fsdp_zero2', []), ('fsdp_zero3', []), ('deepspeed_zero2', ['deepspeed'])):
        steps.append(Step(strategy, [*torchrun, 'tools/rehearse.py', GEOVR_PAPER, '--device', 'cuda', *truncated,
                                     '--strategy', strategy, '--check-resume', '--launcher', 'pytorch'], 35,
                          dry_argv=[py, 'tools/rehearse.py', '--help'], needs=['mmengine', *needs]))
    return steps


def _tail(text: str, chars: int = 4000) -> str:
    return text[-chars:]


def _run(argv: list[str], timeout_s: int, env: dict[str, str]) -> tuple[int | None, str, float, bool]:
    """Run ``argv`` in its own process group; kill the group at the time box. Returns rc, output, seconds, timed out."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
        return proc.returncode, output, time.monotonic() - start, False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return None, output, time.monotonic() - start, True


def unknown_flags(argv: list[str], help_text: str) -> list[str]:
    """The ``--flags`` of ``argv`` after the entry point that its ``--help`` output does not mention."""
    entry = next(i for i, a in enumerate(argv) if a.endswith('.py'))
    flags = [a for a in argv[entry + 1:] if a.startswith('--')]
    return [f for f in flags if f not in help_text]


def carried_wheels(wheel_dir: Path) -> set[str]:
    """Normalised distribution names of the wheels in ``wheel_dir`` (empty if it does not exist)."""
    if not wheel_dir.is_dir():
        return set()
    return {w.name.split('-')[0].lower().replace('_', '-') for w in wheel_dir.glob('*.whl')}


def manifest_names() -> set[str]:
    """Distribution names listed in ``tools/gpu_wheels.txt`` (``name==version`` lines)."""
    names = set()
    for line in WHEEL_MANIFEST.read_text().splitlines():
        line = line.split('#')[0].strip()
        if line:
            names.add(line.split('==')[0].strip().lower().replace('_', '-'))
    return names


def missing_packages(steps: list[Step], provided: set[str]) -> dict[str, list[str]]:
    """Per step, the packages it needs that are neither importable nor provided (carried or in the manifest)."""
    out = {}
    for step in steps:
        lacking = [name for name in step.needs
                   if importlib.util.find_spec(name) is None and name.replace('_', '-') not in provided]
        if lacking:
            out[step.name] = lacking
    return out


def install_wheels(wheel_dir: Path, site: Path, env: dict[str, str]) -> StepResult:
    """``pip install --target site`` every carried wheel (no index, no dependencies resolved)."""
    wheels = sorted(str(w) for w in wheel_dir.glob('*.whl'))
    argv = [sys.executable, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps', '--no-compile',
            '--no-cache-dir', '--upgrade', '--target', str(site), *wheels]
    if not wheels:
        return StepResult('install', '', 'skipped', None, 0.0, f'no wheels in {wheel_dir}')
    rc, output, seconds, timed_out = _run(argv, 60, env)
    status = 'timeout' if timed_out else ('passed' if rc == 0 else 'failed')
    return StepResult('install', f'pip install --target {site} ({len(wheels)} wheels)', status, rc, seconds,
                      _tail(output))


def environment_summary(env: dict[str, str]) -> dict:
    """Device name, driver, torch / triton / transformers versions as the child processes see them."""
    probe = ('import json, torch, transformers\n'
             'info = dict(torch=torch.__version__, transformers=transformers.__version__,\n'
             '            cuda=torch.cuda.is_available())\n'
             'try:\n    import triton; info["triton"] = triton.__version__\n'
             'except ImportError:\n    info["triton"] = None\n'
             'if info["cuda"]:\n    info["device"] = torch.cuda.get_device_name()\n'
             'print(json.dumps(info))')
    rc, output, _, _ = _run([sys.executable, '-c', probe], 30, env)
    try:
        return json.loads(output.strip().splitlines()[-1]) if rc == 0 else {'error': _tail(output, 800)}
    except (json.JSONDecodeError, IndexError):
        return {'error': _tail(output, 800)}


def format_markdown(report: dict) -> str:
    env = report['environment']
    lines = [f"# GPU verification ({report['mode']})", '',
             f"- device: {env.get('device', 'none')}; torch {env.get('torch')}, triton {env.get('triton')}, "
             f"transformers {env.get('transformers')}",
             f"- date: {report['date']}; total {report['seconds']:.0f} s", '',
             '| step | status | seconds | command |', '|---|---|---|---|']
    for step in report['steps']:
        lines.append(f"| {step['name']} | {step['status']} | {step['seconds']:.1f} | `{step['command']}` |")
    if report.get('missing'):
        lines += ['', 'Missing packages (neither importable nor carried/listed as wheels):']
        lines += [f'- {name}: {", ".join(pkgs)}' for name, pkgs in report['missing'].items()]
    return '\n'.join(lines) + '\n'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='work_dirs/gpu_verify', help='report folder (the device tool: "$OUT")')
    parser.add_argument('--dry-run', action='store_true',
                        help='check commands, imports and packages without running anything on a GPU')
    parser.add_argument('--wheels', default='.whl', help='folder of carried wheels (tools/gpu_wheels.sh)')
    parser.add_argument('--site', default='/tmp/geokit-site', help='where the wheels are installed')
    parser.add_argument('--only', nargs='+', help='run only these steps (names as in the report)')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = os.pathsep.join(p for p in (str(REPO), env.get('PYTHONPATH', '')) if p)
    steps = build_steps(str(out))
    if args.only:
        unknown = set(args.only) - {s.name for s in steps}
        if unknown:
            raise SystemExit(f'--only: unknown steps {sorted(unknown)}; choose from {[s.name for s in steps]}.')
        steps = [s for s in steps if s.name in args.only]
    wheel_dir = (REPO / args.wheels) if not Path(args.wheels).is_absolute() else Path(args.wheels)
    results: list[StepResult] = []
    report: dict = {}
    started = time.monotonic()
    log = (out / 'gpu_verify.log').open('w')
    if not args.dry_run:
        install = install_wheels(wheel_dir, Path(args.site), env)
        results.append(install)
        if install.status == 'passed':
            env['PYTHONPATH'] = os.pathsep.join((env['PYTHONPATH'], args.site))
            sys.path.append(args.site)
        log.write(f'## install ({install.status})\n{install.tail}\n')
    provided = manifest_names() if args.dry_run else carried_wheels(wheel_dir)
    missing = missing_packages(steps, provided)
    for step in steps:
        argv = step.dry_argv if args.dry_run else step.argv
        if argv is None:
            argv = [*step.argv[:2], '--help']
        if args.dry_run and not (REPO / argv[1]).exists() and argv[1] != '-m':
            result = StepResult(step.name, shlex.join(argv), 'failed', None, 0.0, f'{argv[1]} does not exist')
        else:
            rc, output, seconds, timed_out = _run(argv, step.timeout_s, env)
            status = 'timeout' if timed_out else ('passed' if rc == 0 else 'failed')
            if args.dry_run and status == 'passed' and argv[-1] == '--help':
                unknown = unknown_flags(step.argv, output)
                if unknown:
                    status, output = 'failed', f'{argv[1]} --help does not list {unknown}\n{output}'
            result = StepResult(step.name, shlex.join(argv), status, rc, seconds, _tail(output))
        results.append(result)
        log.write(f'## {step.name} ({result.status}, {result.seconds:.1f} s)\n$ {result.command}\n{result.tail}\n')
        log.flush()
        # The report is rewritten after every step, so a machine taken back mid-run still leaves what was measured.
        report = dict(mode='dry-run' if args.dry_run else 'run',
                      date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
                      seconds=time.monotonic() - started, environment={}, missing=missing,
                      steps=[asdict(r) for r in results])
        (out / 'gpu_verify.json').write_text(json.dumps(report, indent=1))
    report['environment'] = environment_summary(env)
    (out / 'gpu_verify.json').write_text(json.dumps(report, indent=1))
    (out / 'gpu_verify.md').write_text(format_markdown(report))
    log.close()
    sys.stdout.write(format_markdown(report))
    failed = [r.name for r in results if r.status in ('failed', 'timeout')]
    return 1 if failed or (args.dry_run and missing) else 0


if __name__ == '__main__':
    sys.exit(main())
