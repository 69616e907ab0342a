"""Two verifiers that reward SHOUTING: the smallest useful raylign plugin.

Declared in pyproject.toml as ``[project.entry-points.raylign] shout = "raylign_shout.shout"``.
"""
from raylign.engine import hookimpl
from raylign.verifiers import Verdict


def shout(completion: str, task: dict) -> Verdict:  # task: the dataset row (answer, tests, ...)
    """1.0 when the completion is all capitals, else 0.0."""
    return Verdict(reward=float(completion.isupper()))  # returning a plain float also works


class ShoutRatio:
    """The fraction of letters that are capitals; a class, so it can take options and keep state.

    Options come from the stage config, e.g. ``verifier_options = {shout_ratio = {min_letters = 3}}``; the class
    is instantiated once per verifier worker process.
    """

    def __init__(self, min_letters: int = 1):
        self.min_letters = min_letters  # fewer letters than this: the completion cannot be judged

    def __call__(self, completion: str, task: dict) -> Verdict:
        letters = [c for c in completion if c.isalpha()]
        if len(letters) < self.min_letters:
            return Verdict(status="invalid", error=f"fewer than {self.min_letters} letters")
        upper = sum(c.isupper() for c in letters)
        return Verdict(reward=upper / len(letters), details={"letters": len(letters), "upper": upper})


@hookimpl
def raylign_register_verifiers(register):
    register("shout", shout)
    register("shout_ratio", ShoutRatio)  # a class with __call__ works too (state, set-up)
