"""Regenerate docs/screenshot.svg: the console on the demo world at 160x48, headless.

Run: .venv/bin/python docs/screenshot.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from backends.host import read_host_info
from console.app import make_app
from console.audit import AuditLog
from console.collectors import build_collectors
from console.config import Config
from console.demo.world import DemoWorld


async def main() -> None:
    with DemoWorld() as world:
        config = world.apply(Config())
        app = make_app(config, build_collectors(config), host=read_host_info(),
                       audit=AuditLog(world.path / "audit.log"))
        async with app.run_test(size=(160, 48)) as pilot:
            for _ in range(300):  # until every panel shows its first collection (the capture tree is seeded)
                if all(app.collectors[name].snapshot.value is not None for name in app.panels):
                    break
                await pilot.pause(0.05)
            await pilot.pause(1.0)
            app.save_screenshot("screenshot.svg", str(Path(__file__).parent))


if __name__ == "__main__":
    asyncio.run(main())
