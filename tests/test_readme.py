"""The README documents what the code does: every config key and every global key."""

from __future__ import annotations

from pathlib import Path

from console.app import OpsConsoleApp
from console.config import render_default_config
from console.main_screen import MainScreen

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_readme_holds_the_default_config_verbatim():
    assert f"```toml\n{render_default_config()}```" in README


def test_readme_names_every_global_binding_id_and_key():
    for binding in (*MainScreen.BINDINGS, *OpsConsoleApp.BINDINGS):
        if binding.id not in ("app.interrupt",):
            assert binding.id in README, binding.id
        for key in binding.key.split(","):
            shown = {"question_mark": "?"}.get(key, key)
            assert f"`{shown}`" in README, key
