"""geokit's import layering: no module imports from a higher floor, and the package never imports tools/ or projects/.

The imports are read from the source with ``ast`` (every ``import`` / ``from ... import`` anywhere in a module,
including inside functions, and ``importlib.import_module('literal')`` calls), so a lazy import cannot hide a back
edge. An area is a subpackage or top-level module of ``geokit``; each sits on one floor of :data:`FLOORS`.
"""
from __future__ import annotations

import ast
import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'geokit'

#: floor -> (areas, reason). A module may import its own floor and the floors below it, never a floor above.
FLOORS: dict[int, tuple[frozenset[str], str]] = {
    0: (frozenset({'registry', 'structures', 'samples', 'errors', 'ops', 'geometry'}),
        'foundations: registries, data structures, the batch contract, errors, kernels and geometry functions; they '
        'know no model or data'),
    1: (frozenset({'datasets', 'models', 'engine'}),
        'the parts a config builds: samples, networks, the runner; they meet only through the registry and the sample '
        'contract, so none of them imports another (INDEPENDENT_FLOORS)'),
    2: (frozenset({'evaluation', 'rl', 'visualization', 'inference', 'integrations'}),
        'uses of trained models: scoring, RL fine-tuning, plots, inference and the lmms-eval plugin; they combine '
        'datasets, models and the engine'),
    3: (frozenset({'benchmarking'}), 'measurements of everything below: speed, memory and fidelity suites'),
    4: (frozenset({'__init__'}), "the package façade (geokit/__init__.py): lazy shortcuts to any area's public API"),
}
#: floors whose areas must not import one another (not only not a higher floor)
INDEPENDENT_FLOORS = frozenset({1})
#: top-level names the package must never import: scripts and research projects sit above the library
OUTSIDE = frozenset({'tools', 'projects'})


class Import(NamedTuple):
    module: str  # importing module, dotted
    line: int
    target: str  # imported module, dotted (absolute)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def read_imports(root: Path) -> list[Import]:
    """Every import of every module under the package directory ``root``, relative imports made absolute."""
    found = []
    for path in sorted(root.rglob('*.py')):
        module = _module_name(path, root)
        package = module if path.name == '__init__.py' else module.rpartition('.')[0]
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'), filename=str(path))):
            if isinstance(node, ast.Import):
                found += [Import(module, node.lineno, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split('.')[:len(package.split('.')) - node.level + 1]
                    target = '.'.join(base + ([node.module] if node.module else []))
                else:
                    target = node.module
                if node.module is None or target == root.name:  # `from . import heads`, `from geokit import x`
                    found += [Import(module, node.lineno, f'{target}.{alias.name}') for alias in node.names]
                else:
                    found.append(Import(module, node.lineno, target))
            elif isinstance(node, ast.Call) and getattr(node.func, 'attr', getattr(node.func, 'id', None)) \
                    == 'import_module' and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                found.append(Import(module, node.lineno, node.args[0].value))
    return found


def area_of(module: str, package: str = 'geokit') -> str | None:
    """``geokit.models.heads.x`` -> ``models``; ``geokit`` -> ``__init__``; a module outside the package -> None."""
    parts = module.split('.')
    if parts[0] != package:
        return None
    return parts[1] if len(parts) > 1 else '__init__'


def floor_of(area: str) -> int:
    for floor, (areas, _) in FLOORS.items():
        if area in areas:
            return floor
    raise KeyError(f'geokit area {area!r} is on no floor of tests/test_layering.py FLOORS; add it to the floor of '
                   f'what it imports and what imports it.')


def back_edges(imports: list[Import], package: str = 'geokit') -> list[str]:
    """Imports that break the layering, as ``'module:line imports target (reason)'``."""
    bad = []
    for item in imports:
        top = item.target.split('.')[0]
        if top in OUTSIDE:
            bad.append(f'{item.module}:{item.line} imports {item.target} (the package never imports {top}/)')
            continue
        source, target = area_of(item.module, package), area_of(item.target, package)
        if target is None or source == target:
            continue
        low, high = floor_of(target), floor_of(source)
        if low > high:
            bad.append(f'{item.module}:{item.line} imports {item.target} (floor {high} {source} -> floor {low} '
                       f'{target})')
        elif low == high and low in INDEPENDENT_FLOORS:
            bad.append(f'{item.module}:{item.line} imports {item.target} ({source} and {target} share the '
                       f'independent floor {low})')
    return bad


def test_every_area_of_geokit_is_on_a_floor():
    areas = {path.stem if path.is_file() else path.name for path in PACKAGE.iterdir()
             if (path.suffix == '.py' or (path / '__init__.py').is_file())}
    for area in sorted(areas):
        floor_of(area)


def test_geokit_has_no_import_from_a_higher_floor():
    imports = read_imports(PACKAGE)
    assert len(imports) > 200  # the reader sees the package's imports
    assert back_edges(imports) == []


def test_models_datasets_geometry_ops_never_import_evaluation_benchmarking_or_tools():
    """The acceptance point, stated directly over the imports (not through the floor table)."""
    low = {'models', 'datasets', 'geometry', 'ops'}
    offending = [item for item in read_imports(PACKAGE) if area_of(item.module) in low
                 and (area_of(item.target) in {'evaluation', 'benchmarking'} or item.target.split('.')[0] in OUTSIDE)]
    assert offending == []


@pytest.mark.parametrize('source, line, expected', [
    ('models/heads/depth.py', 'def f():\n    from geokit.evaluation import vsibench\n',
     'geokit.models.heads.depth:2 imports geokit.evaluation (floor 1 models -> floor 2 evaluation)'),
    ('geometry/camera.py', 'from ..models import heads\n',
     'geokit.geometry.camera:1 imports geokit.models (floor 0 geometry -> floor 1 models)'),
    ('models/__init__.py', "import importlib\nimportlib.import_module('geokit.benchmarking.suite')\n",
     'geokit.models:2 imports geokit.benchmarking.suite (floor 1 models -> floor 3 benchmarking)'),
    ('datasets/x.py', 'from geokit.models.teachers import OracleTeacher\n',
     'geokit.datasets.x:1 imports geokit.models.teachers (datasets and models share the independent floor 1)'),
    ('evaluation/y.py', 'import projects.tiny_teacher.tiny_teacher\n',
     'geokit.evaluation.y:1 imports projects.tiny_teacher.tiny_teacher (the package never imports projects/)'),
])
def test_a_back_edge_is_found_wherever_it_is_written(tmp_path, source, line, expected):
    path = tmp_path / 'geokit' / source
    path.parent.mkdir(parents=True)
    path.write_text(textwrap.dedent(line))
    (tmp_path / 'geokit' / 'evaluation').mkdir(exist_ok=True)
    assert back_edges(read_imports(tmp_path / 'geokit')) == [expected]


def test_allowed_imports_are_not_reported(tmp_path):
    package = tmp_path / 'geokit'
    (package / 'evaluation').mkdir(parents=True)
    (package / 'evaluation' / 'a.py').write_text('from geokit.models import heads\nfrom . import b\nimport torch\n')
    (package / 'rl').mkdir()
    (package / 'rl' / 'r.py').write_text('from geokit.evaluation.vsibench import score_prediction\n'
                                         'from geokit import registry\n')
    assert back_edges(read_imports(package)) == []
