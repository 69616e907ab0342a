"""The plugin manager: built from the ``raylign`` entry-point group, then asked for its registrations.

Built-in stages and verifiers are entry points of the ``raylign`` distribution itself, so they are loaded by
exactly the same path as a third-party package's. Every Ray actor calls :func:`build_registry` to rebuild its
own manager from the same entry points instead of receiving a pickled registry; driver-side code receives the
run's registry as an argument (only the CLI's entry points call :func:`get_registry`).
"""
from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field
from typing import Any, Iterable

import pluggy

from raylign.engine import PROJECT, hookspecs
from raylign.engine.errors import PluginError

KINDS = ("stages", "verifiers", "reward_providers", "losses", "advantage_estimators", "sandboxes", "tasks")
SINGULAR = {"stages": "stage", "verifiers": "verifier", "reward_providers": "reward provider", "losses": "loss",
            "advantage_estimators": "advantage estimator", "sandboxes": "sandbox", "tasks": "task"}


@dataclass(frozen=True)
class Entry:
    """One registered thing: its name, the object, and where it came from."""

    kind: str  # one of KINDS
    name: str  # the name configs use
    obj: Any  # the registered function or class
    plugin: str  # the plugin (module) name that registered it
    package: str  # the distribution that declared the plugin ("raylign" for built-ins, "<local>" otherwise)


@dataclass
class Registry:
    """All registrations of one plugin manager, by kind and name."""

    pm: pluggy.PluginManager
    entries: dict[str, dict[str, Entry]] = field(default_factory=lambda: {k: {} for k in KINDS})

    def get(self, kind: str, name: str) -> Any:
        """Return the object registered as ``name``, or fail listing the known names of that kind."""
        table = self.entries[kind]
        if name not in table:
            known = sorted(table)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            singular = SINGULAR[kind]
            raise PluginError(f"unknown {singular} {name!r}.{hint} Known: {', '.join(known) or '(none)'}")
        return table[name].obj

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def all(self) -> Iterable[Entry]:
        for kind in KINDS:
            yield from sorted(self.entries[kind].values(), key=lambda e: e.name)

    @property
    def hook(self):
        return self.pm.hook


def _dist_names(pm: pluggy.PluginManager) -> dict[int, str]:
    return {id(plugin): dist.project_name for plugin, dist in pm.list_plugin_distinfo()}


def build_plugin_manager(extra_plugins: Iterable[Any] = (), entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh manager: hook specs added, the ``raylign`` entry-point group loaded, extra plugins registered.

    :param extra_plugins: modules or objects to register besides the entry points (tests, embedding).
    :param entry_points: load the ``raylign`` entry-point group (built-ins included).
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    if entry_points:
        try:
            pm.load_setuptools_entrypoints(PROJECT)
        except Exception as exc:  # an entry point that fails to import names itself
            raise PluginError(f"a plugin of the {PROJECT!r} entry-point group failed to load: {exc!r}") from exc
    for plugin in extra_plugins:
        try:
            pm.register(plugin)
        except pluggy.PluginValidationError as exc:  # e.g. a hookimpl argument the spec does not have
            raise PluginError(f"plugin {exc.plugin!r} does not match raylign's hook specs: {exc}") from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r} implements a hook raylign does not define: {exc}") from exc
    return pm


def collect(pm: pluggy.PluginManager) -> Registry:
    """Call every registration hook once and gather the registrations into a :class:`Registry`."""
    reg = Registry(pm)
    dists = _dist_names(pm)
    for kind in KINDS:
        hook = getattr(pm.hook, f"raylign_register_{kind}")
        for impl in hook.get_hookimpls():
            plugin_name = impl.plugin_name
            package = dists.get(id(impl.plugin), "<local>")

            def register(name: str, obj: Any, _kind=kind, _plugin=plugin_name, _package=package) -> None:
                if not isinstance(name, str) or not name:
                    raise PluginError(f"plugin {_plugin!r} registered a {SINGULAR[_kind]} with an empty or non-str name")
                table = reg.entries[_kind]
                if name in table:
                    prev = table[name]
                    raise PluginError(
                        f"{SINGULAR[_kind]} {name!r} is registered twice: by plugin {prev.plugin!r} "
                        f"({prev.package}) and by plugin {_plugin!r} ({_package})"
                    )
                table[name] = Entry(_kind, name, obj, _plugin, _package)

            try:
                impl.function(register=register)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(f"plugin {plugin_name!r} failed in raylign_register_{kind}: {exc!r}") from exc
    return reg


def build_registry(extra_plugins: Iterable[Any] = (), entry_points: bool = True) -> Registry:
    """A fresh manager and its registrations (tests call this for isolation)."""
    return collect(build_plugin_manager(extra_plugins, entry_points))


@functools.lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The process-wide registry from the entry points (built once per process: driver or actor)."""
    return build_registry()
