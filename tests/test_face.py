"""backends.face: a resource's face loads a name's module only when the name is used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FACE = '''"""A resource."""
from typing import TYPE_CHECKING

from backends.face import lazy_face

if TYPE_CHECKING:
    from {package}.left import LEFT
    from {package}.right import RIGHT as RENAMED

__getattr__, __dir__, __all__ = lazy_face(__name__)
'''


def make_package(root: Path, name: str, extra: dict[str, str] | None = None) -> None:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text(FACE.format(package=name))
    (package / "left.py").write_text("LEFT = 'left'\n")
    (package / "right.py").write_text("RIGHT = 'right'\n")
    for file_name, text in (extra or {}).items():
        (package / file_name).write_text(text)


def run(root: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": f"{root}:{ROOT}"})


def test_a_name_loads_only_its_own_module(tmp_path: Path) -> None:
    make_package(tmp_path, "resource")
    result = run(tmp_path, "import sys; from resource import LEFT; import resource; "
                           "print(LEFT, 'resource.right' in sys.modules, resource.__all__, resource.RENAMED)")
    assert result.stdout.split() == ["left", "False", "['LEFT',", "'RENAMED']", "right"], result.stderr


def test_an_unknown_name_is_an_attribute_error(tmp_path: Path) -> None:
    make_package(tmp_path, "resource")
    result = run(tmp_path, "import resource; resource.MISSING")
    assert "AttributeError: module 'resource' has no attribute 'MISSING'" in result.stderr


@pytest.mark.parametrize("clash", ["LEFT.py", "RENAMED.py"])
def test_a_face_name_that_is_also_a_submodule_is_refused(tmp_path: Path, clash: str) -> None:
    """Importing that submodule would replace the name by the module: refused at import time."""
    make_package(tmp_path, "resource", {clash: ""})
    result = run(tmp_path, "import resource")
    assert f"face names that are also submodules: {clash.removesuffix('.py')}" in result.stderr
