"""raylign's engine: hooks, config, Ray roles, the pipeline driver. No algorithm code lives here."""
import pluggy

PROJECT = "raylign"
hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

__all__ = ["PROJECT", "hookimpl", "hookspec"]
