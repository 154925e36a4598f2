"""geokit: teach multimodal LLMs 3D spatial intelligence from ordinary 2D video."""
__version__ = '0.1.0'
