"""docs/architecture.md stays true to the code: its Registries table covers every registry of geokit/registry.py,
every place it names exists and every example ``type`` is registered; its Layering table is the layering test's."""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

from mmengine.registry import Registry

import geokit.registry

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / 'docs' / 'architecture.md'
#: the section names docstrings point at
SECTIONS = ('Sample contract', 'Data flow of one training step', 'TeacherTargets', 'Taps, heads and losses',
            'Fusion contract', 'Registries', 'Layering')
#: the toolkit packages whose import registers every toolkit component
TOOLKIT_PACKAGES = ('geokit.datasets', 'geokit.models', 'geokit.engine', 'geokit.evaluation', 'geokit.rl',
                    'geokit.visualization')
COLUMNS = ('registry', 'config key', 'where', 'example `type`', 'reads it')
NO_EXAMPLE = '—'


def defined_registries() -> list[str]:
    """Names bound to ``Registry(...)`` at the top level of geokit/registry.py (not mmengine's imported roots)."""
    tree = ast.parse(Path(geokit.registry.__file__).read_text())
    names = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and getattr(node.value.func, 'id', None) == 'Registry':
            names += [target.id for target in node.targets if isinstance(target, ast.Name)]
    return names


def section(text: str, title: str) -> str:
    match = re.search(rf'^## {re.escape(title)}\n(.*?)(?=^## |\Z)', text, flags=re.M | re.S)
    if match is None:
        raise AssertionError(f'docs/architecture.md has no "## {title}" section.')
    return match.group(1)


def registry_rows(text: str) -> list[dict[str, str]]:
    """The rows of the table in the Registries section, as ``{column: cell}``."""
    lines = [line.strip() for line in section(text, 'Registries').splitlines() if line.strip().startswith('|')]
    if len(lines) < 3:
        raise AssertionError('the Registries section has no table.')
    header = [cell.strip() for cell in lines[0].strip('|').split('|')]
    if tuple(header) != COLUMNS:
        raise AssertionError(f'Registries table columns are {header}, expected {list(COLUMNS)}.')
    rows = []
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip('|').split('|')]
        rows.append(dict(zip(header, cells)))
    return rows


def backticked(cell: str) -> list[str]:
    return re.findall(r'`([^`]+)`', cell)


def registry_table_problems(text: str) -> list[str]:
    """Everything that is wrong with the Registries table of ``text`` (empty when it matches the code)."""
    for package in TOOLKIT_PACKAGES:
        importlib.import_module(package)
    problems = []
    rows = registry_rows(text)
    names = [backticked(row['registry'])[0] if backticked(row['registry']) else row['registry'] for row in rows]
    defined = defined_registries()
    problems += [f'no row for registry {name}' for name in defined if name not in names]
    problems += [f'row for {name}, which geokit/registry.py does not define' for name in names if name not in defined]
    for name, row in zip(names, rows):
        registry = getattr(geokit.registry, name, None)
        if not isinstance(registry, Registry):
            continue
        places = backticked(row['where'])
        if not places:
            problems.append(f'{name}: the "where" cell names no path or module')
        for place in places:
            if '/' in place:
                if not (ROOT / place).exists():
                    problems.append(f'{name}: {place} does not exist')
            else:
                try:
                    importlib.import_module(place)
                except ImportError as error:
                    problems.append(f'{name}: module {place} does not import ({error})')
        examples = backticked(row['example `type`'])
        if not examples:
            # what mmengine's root holds depends on what else was imported (mmcv registers its transforms there)
            if row['example `type`'] != NO_EXAMPLE or registry.module_dict:
                problems.append(f'{name}: no example type (allowed, as "{NO_EXAMPLE}", only for a registry in which '
                                f'geokit registers nothing)')
        for example in examples:
            if registry.get(example) is None:
                problems.append(f'{name}: example type {example!r} is not registered')
        if not backticked(row['config key']):
            problems.append(f'{name}: no config key')
    return problems


def test_architecture_doc_has_the_sections_docstrings_cite():
    text = DOC.read_text()
    for title in SECTIONS:
        section(text, title)


def test_registries_table_matches_registry_py():
    assert registry_table_problems(DOC.read_text()) == []


def test_registries_table_check_catches_a_removed_row_and_a_wrong_path():
    text = DOC.read_text()
    loss_row = next(line for line in text.splitlines() if line.startswith('| `LOSSES` |'))
    assert 'no row for registry LOSSES' in registry_table_problems(text.replace(loss_row + '\n', ''))
    moved = text.replace(loss_row, loss_row.replace('`geokit/models/losses/`', '`geokit/models/lossez/`'))
    assert 'LOSSES: geokit/models/lossez/ does not exist' in registry_table_problems(moved)
    renamed = text.replace(loss_row, loss_row.replace('`CameraPoseLoss`', '`CameraPoseLos`'))
    assert "LOSSES: example type 'CameraPoseLos' is not registered" in registry_table_problems(renamed)


def test_a_registry_with_geokit_classes_needs_an_example():
    text = DOC.read_text()
    row = next(line for line in text.splitlines() if line.startswith('| `LOSSES` |'))
    cells = row.split('|')
    cells[4] = f' {NO_EXAMPLE} '
    problems = registry_table_problems(text.replace(row, '|'.join(cells)))
    assert any(problem.startswith('LOSSES: no example type') for problem in problems)


def test_every_registry_py_registry_is_found():
    names = defined_registries()
    assert {'MODELS', 'LOSSES', 'TEACHERS', 'HEADS', 'CONNECTORS', 'FRAME_SAMPLERS', 'REWARDS'} <= set(names)
    assert not any(name.startswith('MMENGINE_') for name in names)
    assert all(isinstance(getattr(geokit.registry, name), Registry) for name in names)


def layering_rows(text: str) -> dict[int, set[str]]:
    """The Layering table as ``{floor: {area}}`` (``geokit.models`` -> ``models``; ``geokit`` -> ``__init__``)."""
    rows = {}
    for line in section(text, 'Layering').splitlines():
        cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
        if line.strip().startswith('|') and cells[0].isdigit():
            names = [name.split(' ')[0] for name in backticked(cells[1]) if name.startswith('geokit')]
            rows[int(cells[0])] = {name.removeprefix('geokit.') if name != 'geokit' else '__init__' for name in names}
    return rows


def test_layering_table_matches_the_layering_test():
    from .test_layering import FLOORS, INDEPENDENT_FLOORS
    assert layering_rows(DOC.read_text(encoding='utf-8')) == {floor: set(areas) for floor, (areas, _) in FLOORS.items()}
    assert INDEPENDENT_FLOORS == {1}  # what the doc's sentence about floor 1 says
    broken = DOC.read_text(encoding='utf-8').replace('`geokit.samples`, ', '')
    assert layering_rows(broken)[0] != set(FLOORS[0][0])
