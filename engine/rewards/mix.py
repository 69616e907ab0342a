"""A stage's reward as a weighted sum of named terms: verifiers and reward providers, each logged on its own.

    [ppo]
    rewards = [
      { name = "reward_model", model = "reward_model" },            # a provider serving an earlier stage's model
      { name = "math", weight = 0.5 },                               # a verifier
      { name = "length", weight = 0.01, options = { free = 20 } },  # a length penalty (a verifier too)
    ]

A term named ``verifier`` is each row's own verifier (its ``verifier`` field, else the stage's default), as a
GRPO stage without ``rewards`` routes rows. The combined :class:`~raylign.engine.types.Verdict` has the weighted
sum as its reward, each term's reward in ``details["terms"]``, and a status that hides no failure: ``timeout``
or ``error`` when any term failed (the first such term's), ``invalid`` when every term was invalid, else ``ok``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from raylign.engine.errors import ConfigError
from raylign.engine.types import Verdict

ROUTED = "verifier"  # the term that scores each row with its own verifier


@dataclass(frozen=True)
class RewardTerm:
    name: str  # a registered verifier or reward provider, or "verifier" (each row's own verifier)
    weight: float = 1.0  # its factor in the sum (negative for a penalty)
    label: str = ""  # its name in metrics (reward/<label>); "" = name
    options: dict[str, Any] = field(default_factory=dict)  # the verifier's or provider's options
    model: str = ""  # providers that serve a model: an earlier stage of the run or a model dir (option `model`)
    replicas: int = 1  # provider actors
    num_cpus: float = 1.0  # logical CPUs per provider actor
    num_gpus: float = 0.0  # GPUs per provider actor
    batch_size: int = 64  # samples per provider call
    resources: dict[str, float] = field(default_factory=dict)  # custom resources per provider actor (pins them)

    @property
    def key(self) -> str:
        return self.label or self.name


class RewardMix:
    """The driver's handle on every term of a stage's reward.

    :param terms: the terms (kinds resolved against ``registry``: a verifier or a reward provider).
    :param registry: the driver's registry.
    :param start_verifiers: ``start_verifiers(default_verifier, verifier_options)`` -> a RewardFleet.
    :param start_provider: ``start_provider(term, options)`` -> a ProviderPool.
    :param default_verifier: the routed term's default. :param verifier_options: per-verifier options.
    :param owner: the config key of the terms, for errors (``ppo.rewards``).
    """

    def __init__(self, terms: Sequence[RewardTerm], registry: Any, start_verifiers: Callable, start_provider: Callable,
                 default_verifier: str | None = None, verifier_options: Mapping[str, Any] | None = None,
                 owner: str = "rewards") -> None:
        if not terms:
            raise ConfigError(f"{owner} is empty: name at least one verifier or reward provider")
        keys = [t.key for t in terms]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"{owner}: two terms are both called {next(k for k in keys if keys.count(k) > 1)!r}; "
                              f"give one a `label`")
        self.terms = list(terms)
        options = {k: dict(v) for k, v in (verifier_options or {}).items()}
        self.kinds: dict[str, str] = {}
        for i, t in enumerate(self.terms):
            kind = self.kind_of(t, registry, f"{owner}[{i}]")
            self.kinds[t.key] = kind
            if kind == "verifier" and t.name != ROUTED:
                if t.model:
                    raise ConfigError(f"{owner}[{i}].model: {t.name!r} is a verifier; only reward providers serve "
                                      f"a model")
                if t.options:
                    options[t.name] = {**options.get(t.name, {}), **t.options}
        uses_verifiers = any(k == "verifier" for k in self.kinds.values())
        self.verifiers = start_verifiers(default_verifier, options) if uses_verifiers else None
        self.providers = {t.key: start_provider(t) for t in self.terms if self.kinds[t.key] == "provider"}

    @staticmethod
    def kind_of(term: RewardTerm, registry: Any, where: str) -> str:
        """``verifier`` or ``provider``; an unknown name fails with both lists."""
        if term.name == ROUTED:
            return "verifier"
        if term.name in registry.names("reward_providers"):
            return "provider"
        if term.name in registry.names("verifiers"):
            return "verifier"
        raise ConfigError(f"{where}.name = {term.name!r} is neither a reward provider "
                          f"({', '.join(registry.names('reward_providers')) or 'none registered'}) nor a verifier "
                          f"({', '.join(registry.names('verifiers'))})")

    def score(self, samples: Sequence[Mapping[str, Any]]) -> list[Verdict]:
        """One combined Verdict per ``{"completion", "task"}`` sample, in order."""
        per_term = {t.key: self.score_term(t, samples) for t in self.terms}
        out = []
        for i in range(len(samples)):
            verdicts = {k: per_term[k][i] for k in per_term}
            out.append(combine(self.terms, verdicts))
        return out

    def score_term(self, term: RewardTerm, samples: Sequence[Mapping[str, Any]]) -> list[Verdict]:
        if self.kinds[term.key] == "provider":
            return self.providers[term.key].score(samples)
        if term.name == ROUTED:
            return self.verifiers.score(samples)
        # a named verifier scores every sample, whatever the row's own `verifier` field says
        return self.verifiers.score([{"completion": s.get("completion"),
                                      "task": {**(s.get("task") or {}), "verifier": term.name}} for s in samples])

    def load_verifiers(self, row_verifiers: Sequence[str]) -> None:
        """Construct every verifier this reward will call (``row_verifiers``: the rows' own, for the routed term;
        plus the named verifier terms) in the verifier pool now; PluginError when one cannot run here."""
        if self.verifiers is None:
            return
        names = {t.name for t in self.terms if self.kinds[t.key] == "verifier" and t.name != ROUTED}
        if any(t.name == ROUTED for t in self.terms):
            names |= set(row_verifiers)
        self.verifiers.load(sorted(names))

    def verifier_score(self) -> Callable[[Sequence[Mapping[str, Any]]], list[Verdict]] | None:
        """Scoring by the reward's verifier alone (the routed term, else the first named verifier; no weights,
        no providers), for checks that ask whether a row's own reference passes; None without a verifier term."""
        terms = [t for t in self.terms if self.kinds[t.key] == "verifier"]
        terms.sort(key=lambda t: t.name != ROUTED)
        if not terms:
            return None
        return lambda samples: self.score_term(terms[0], samples)

    def term_metrics(self, verdicts: Sequence[Verdict]) -> dict[str, float]:
        """``reward/<term>``: each term's mean raw reward (before its weight) over ``verdicts`` (one term too)."""
        out = {}
        for t in self.terms:
            vals = [v.details["terms"][t.key] for v in verdicts if t.key in v.details.get("terms", {})]
            out[f"reward/{t.key}"] = sum(vals) / max(1, len(vals))
        return out

    def shutdown(self) -> None:
        for pool in self.providers.values():
            pool.shutdown()
        if self.verifiers is not None:
            self.verifiers.shutdown()


def combine(terms: Sequence[RewardTerm], verdicts: Mapping[str, Verdict]) -> Verdict:
    """The weighted sum of one sample's term verdicts (see the module docstring for the status)."""
    if len(terms) == 1 and terms[0].weight == 1.0:
        return verdicts[terms[0].key]
    reward = sum(t.weight * verdicts[t.key].reward for t in terms)
    failed = [(t.key, verdicts[t.key]) for t in terms if verdicts[t.key].failed]
    if failed:
        status, error = failed[0][1].status, f"{failed[0][0]}: {failed[0][1].error}"
    elif all(verdicts[t.key].status == "invalid" for t in terms):
        status, error = "invalid", "; ".join(f"{t.key}: {verdicts[t.key].error}" for t in terms)
    else:
        status, error = "ok", None
    details: dict[str, Any] = {"terms": {t.key: verdicts[t.key].reward for t in terms},
                               "statuses": {t.key: verdicts[t.key].status for t in terms}}
    for t in terms:
        for k, v in verdicts[t.key].details.items():
            details.setdefault(k, v)
    return Verdict(reward=reward, status=status, error=error, details=details)
