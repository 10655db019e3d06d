"""A resource package's face, loaded lazily: a name is imported when it is first used.

Each resource package (backends.pcap, .ports, .locks, .sessions) lists its face in its
``__init__.py`` as plain imports under ``if TYPE_CHECKING:``, so readers, type checkers and
import-linter see them, and ends with ``__getattr__, __dir__, __all__ = lazy_face(__name__)``.
That one list is the whole face: ``from backends.locks import acquire`` then loads only
``backends.locks.wrapper``, so a one-shot command pays for what it uses and nothing more.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def face_names(init_file: Path) -> dict[str, tuple[str, str]]:
    """Public name → (defining module, its name there), from ``init_file``'s ``if TYPE_CHECKING:`` imports."""
    names: dict[str, tuple[str, str]] = {}
    for node in ast.parse(init_file.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.module:
                    names.update((alias.asname or alias.name, (statement.module, alias.name)) for alias in statement.names)
    # Importing a submodule sets the package's attribute of that name to the module, which
    # would hide a face name spelled the same: forbid it here, at import time.
    clashes = sorted(name for name in names if (init_file.parent / f"{name}.py").exists()
                     or (init_file.parent / name / "__init__.py").exists())
    if clashes:
        raise ImportError(f"{init_file.parent.name}: face names that are also submodules: {', '.join(clashes)}")
    return names


def lazy_face(package: str) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``'s ``__init__`` (PEP 562)."""
    module = sys.modules[package]
    names = face_names(Path(module.__file__ or ""))

    def __getattr__(name: str) -> Any:
        try:
            home, original = names[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(home), original)
        setattr(module, name, value)  # the next use is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(names))

    return __getattr__, __dir__, sorted(names)
