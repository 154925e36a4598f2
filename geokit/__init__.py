"""geokit: teach multimodal LLMs 3D spatial intelligence from ordinary 2D video."""
__version__ = '0.1.0'


def load_exported(path: str, dtype: str = 'float32', device: str = 'cpu'):
    """Rebuild the inference model of a ``tools/export_hf.py`` export.

    See :func:`geokit.models.mllms.export.load_exported`.
    """
    from geokit.models.mllms.export import load_exported as _load_exported
    return _load_exported(path, dtype=dtype, device=device)
