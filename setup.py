"""geokit: teach multimodal LLMs 3D spatial intelligence from ordinary 2D video."""
from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    'torch>=2.6',
    'torchvision',
    'transformers>=5.5,<6',
    'mmengine>=0.10.7',
    'mmcv-lite>=2.1',  # provides the `mmcv` package; the full mmcv build does not install here
    'kornia>=0.8',
    'einops',
    'safetensors>=0.4',
    'numpy',
    'av',
    'tqdm',
    'tokenizers',
    'pillow',
    'matplotlib',  # plots of tools/probe.py and tools/benchmark.py, visualize.py's fallback renderer
]

EXTRAS_REQUIRE = {
    'vis': ['open3d'],
    'peft': ['peft'],
    'deepspeed': ['deepspeed'],
    'dev': ['pytest', 'pytest-xdist', 'hypothesis', 'ruff', 'peft', 'triton', 'trl>=1.0'],
    # lmms-eval model plugin + local tasks (geokit/integrations); heavy (~1 GB, pins av<16), so not in `dev`
    # lmms-eval 0.7.3 imports filelock._api (gone in filelock 4); its Qwen-VL classes read videos with decord
    'eval': ['lmms-eval>=0.7.3', 'filelock<4', 'decord'],
    'logging': ['tensorboard', 'wandb'],  # the visualizer's tensorboard / wandb switches (default_runtime.py)
}

setup(
    name='geokit',
    version='0.1.0',
    description='A research toolkit that teaches multimodal LLMs 3D spatial intelligence from 2D video.',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.10',
    packages=find_packages(include=['geokit', 'geokit.*']),
    include_package_data=True,
    package_data={'geokit': ['assets/**/*', 'integrations/lmms_eval_tasks/**/*']},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    # lmms-eval finds the `geokit` model through this group (python -m lmms_eval --model geokit ...)
    entry_points={'lmms_eval.models': ['geokit = geokit.integrations.lmms_eval:manifest']},
)
