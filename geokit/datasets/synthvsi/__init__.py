"""SynthVSI: procedural indoor scene videos with exact geometry and VSI-Bench-style QA (see docs/synthvsi.md)."""
from .categories import CATEGORIES, CATEGORY_BY_NAME, Category
from .generate import SynthVSIParams, ensure_synthvsi, generate_scene, make_synthvsi, split_sizes
from .qa import TASKS, generate_qa
from .renderer import BoxSet, render, scene_boxes
from .scene import sample_scene
from .trajectory import sample_trajectory

__all__ = ['CATEGORIES', 'CATEGORY_BY_NAME', 'Category', 'SynthVSIParams', 'ensure_synthvsi', 'generate_scene',
           'make_synthvsi', 'split_sizes', 'TASKS', 'generate_qa', 'BoxSet', 'render', 'scene_boxes', 'sample_scene',
           'sample_trajectory']
