"""Frozen modules a model runs but does not own: 3D teachers, a fusion's spatial encoder, GRPO's KL reference.

The rule, in one place: such a module is

* frozen (no gradient, eval mode; it only produces targets or features),
* outside the owner's module tree: not in ``state_dict()`` (it is rebuilt from its own checkpoint, so a model
  checkpoint holds only what trains), not in ``parameters()`` (no optimizer sees it), never wrapped or sharded by
  DDP/FSDP (wrappers walk the module tree),
* moved with the owner by ``.to()`` / ``.cuda()`` / ``.half()`` (all of which go through ``nn.Module._apply``).

An owner derives from :class:`HoldsFrozenModules` and sets ``self.frozen = FrozenModules(name=module, ...)``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from torch import nn

__all__ = ['FrozenModules', 'HoldsFrozenModules']


class FrozenModules:
    """Named frozen modules kept outside the module tree of their owner (see the module docstring).

    Not an ``nn.Module``, so assigning it to a module attribute registers nothing. Entries may be ``None`` (an
    optional teacher that is not configured).

    Args:
        modules: ``name -> module or None``; every module is frozen here (``requires_grad_(False)``, ``eval()``).
    """

    def __init__(self, **modules: nn.Module | None) -> None:
        self._entries: dict[str, nn.Module | None] = {}
        for name, module in modules.items():
            self[name] = module

    def __getitem__(self, name: str) -> nn.Module | None:
        return self._entries[name]

    def __setitem__(self, name: str, module: nn.Module | None) -> None:
        """Add or replace an entry (e.g. swap an online teacher for a cached one), frozen."""
        if module is not None:
            module.requires_grad_(False).eval()
        self._entries[name] = module

    def __iter__(self) -> Iterator[nn.Module]:
        """The modules that are set (``None`` entries skipped)."""
        return (module for module in self._entries.values() if module is not None)

    def apply(self, fn: Callable, recurse: bool = True) -> None:
        """``nn.Module._apply(fn)`` on every module: what the owner's ``.to()`` does to its own tree."""
        for module in self:
            module._apply(fn, recurse)

    def __repr__(self) -> str:
        names = ', '.join(f'{name}={type(m).__name__ if m is not None else None}' for name, m in self._entries.items())
        return f'FrozenModules({names})'


class HoldsFrozenModules(nn.Module):
    """Base of a module with a :class:`FrozenModules` in ``self.frozen``: its ``.to()``/``.cuda()`` move them too."""

    frozen: FrozenModules

    def _apply(self, fn: Callable, recurse: bool = True):
        super()._apply(fn, recurse)
        frozen = self.__dict__.get('frozen')
        if frozen is not None:
            frozen.apply(fn, recurse)
        return self
