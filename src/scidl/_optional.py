"""Optional dependencies: import them on first use, with an error that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, needed_by: str) -> ModuleType:
    """``import module``, or an :class:`ImportError` saying ``pip install 'scidl[extra]'``.

    Args:
        module: dotted module name, e.g. ``"rdkit.Chem"``.
        extra: the scidl extra that installs it, e.g. ``"chem"``.
        needed_by: what needs it, for the message (e.g. ``"scidl.geometric.molecules"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{needed_by} needs {module.split('.')[0]}: "
                          f"pip install 'scidl[{extra}]'") from err
