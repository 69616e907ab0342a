"""Typed options of registered functions (losses, advantage estimators), validated on the driver.

A loss or estimator declares its options as keyword-only parameters with annotations and defaults::

    def my_loss(logits, batch, *, beta: float = 0.1, agg: str = "token_mean"): ...

:func:`options_class` turns that signature into a frozen dataclass, and :func:`validate` builds one from what a
stage passes (a mapping or an instance), so a misspelt option or a wrong type fails on the driver with the
loss's name and the option's name, before any batch crosses to the learner actor.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from typing import Any, Callable, Mapping

from raylign.engine.config import from_dict
from raylign.engine.errors import ConfigError


def _option_types(fn: Callable, params: list[inspect.Parameter]) -> dict[str, Any]:
    """The resolved annotations of ``params`` (``fn``'s keyword-only parameters), as ``typing.get_type_hints``
    resolves them in ``fn``'s module.

    Only the options' annotations are resolved: the other parameters may name types imported for type checkers
    only (the built-in losses annotate ``logits: torch.Tensor`` under ``if TYPE_CHECKING``, so that registering
    them does not import torch). An option whose annotation does not resolve accepts any value.
    """
    globalns = getattr(inspect.unwrap(fn), "__globals__", {})
    hints: dict[str, Any] = {}
    for p in params:
        if p.annotation is inspect.Parameter.empty:
            continue
        holder = types.SimpleNamespace(__annotations__={p.name: p.annotation})
        try:
            hints[p.name] = typing.get_type_hints(holder, globalns)[p.name]
        except Exception:  # an annotation that does not resolve: accept any value for it
            pass
    return hints


@functools.lru_cache(maxsize=None)
def options_class(fn: Callable) -> type:
    """A frozen dataclass with one field per keyword-only parameter of ``fn`` (its annotated type, its default)."""
    params = [p for p in inspect.signature(fn).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    hints = _option_types(fn, params)
    fields = []
    for p in params:
        default = dataclasses.field() if p.default is inspect.Parameter.empty else dataclasses.field(default=p.default)
        fields.append((p.name, hints.get(p.name, Any), default))
    fields.sort(key=lambda f: f[2].default is dataclasses.MISSING, reverse=True)  # required fields first
    name = "".join(part.title() for part in getattr(fn, "__name__", "fn").split("_")) + "Options"
    return dataclasses.make_dataclass(name, fields, frozen=True)


def validate(fn: Callable, options: Any, owner: str) -> dict[str, Any]:
    """``options`` (None, a mapping, or an instance of :func:`options_class`) checked against ``fn``'s declared
    options; returns the values the caller set (plain data, what crosses to an actor). ``owner`` names the
    function in errors, e.g. ``"loss 'policy_gradient'"``:
    ``loss 'policy_gradient': unknown config key options.clip_lo. Did you mean options.clip_low? ...``"""
    cls = options_class(fn)
    if options is None:
        return {}
    if dataclasses.is_dataclass(options) and not isinstance(options, type):
        if type(options) is not cls:
            raise ConfigError(f"{owner}: options are a {type(options).__name__}, not {cls.__name__}")
        return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
    if not isinstance(options, Mapping):
        raise ConfigError(f"{owner}: options must be a table, got {type(options).__name__}")
    try:
        built = from_dict(cls, options, "options")
    except ConfigError as exc:
        raise ConfigError(f"{owner}: {exc}") from None
    return {k: getattr(built, k) for k in options}


def known(fn: Callable) -> list[str]:
    """The option names ``fn`` declares."""
    return [f.name for f in dataclasses.fields(options_class(fn))]


__all__ = ["options_class", "validate", "known"]
