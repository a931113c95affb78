"""framescan's command line: one module per sub-command, each with ``add_parser`` and ``run``.

A command module exposes::

    NAME = "scan"
    def add_parser(subparsers) -> argparse.ArgumentParser: ...
    def run(args: argparse.Namespace) -> int: ...   # returns the exit code

``main`` parses, dispatches and turns every ``FramescanError`` into a one-line message on
stderr (never a traceback) and its documented exit code.
"""
