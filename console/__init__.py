"""opsconsole's app shell: CLI, config, the Textual app, screens and the demo world."""

__version__ = "0.1.0"
