"""Import a script of ``tools/`` as a module (the tools are scripts, not a package), for tests that call its main."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

TOOLS = Path(__file__).resolve().parents[1] / 'tools'


def load_tool(name: str, folder: Path = TOOLS) -> ModuleType:
    """``<folder>/<name>.py`` (default: ``tools/``) executed as a fresh module ``geokit_tools_<name>``."""
    spec = importlib.util.spec_from_file_location(f'geokit_tools_{name}', Path(folder) / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
