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
    package_data={'geokit': ['assets/**/*']},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
