"""When a training counts as diverged: the rules :func:`playground.train.train` applies.

Both rules look at the host copy of the per-step losses that a flush brings back anyway, so they
add nothing to the per-step loop (``benchmarks/train.py`` measures that loop):

- ``non_finite``: a step's loss or gradient norm is inf/NaN. The recorder finds the first bad
  step exactly; the run ends at the step before it.
- ``loss_growth``: the loss stays more than :data:`GROWTH_FACTOR` times its starting value for
  :data:`GROWTH_CHECKS` consecutive flushes. A learning rate far too high can leave every value
  finite while the weights grow without bound (SGD with ``lr=1e9`` on ``small_cnn`` ends near
  a loss of 6e8 at chance accuracy), so inf/NaN alone misses it.

Conventions of ``loss_growth``:

- the *starting value* is the first recorded training loss, step 1's, floored at
  :data:`MIN_START_LOSS`. Step 1's loss is computed before the first update, so it measures the
  network at initialisation whatever the learning rate; a median of the first few steps would
  not do: with ``lr=1e9`` the loss is 2.36 at step 1 and 4e16, 1.5e8, 3.7e8... after;
- a flush counts as "above" when even its *lowest* step loss is above the threshold, so a
  single spike never counts; a flush at or below it resets the count;
- cross-entropy at initialisation is about ``ln(classes)`` (0.69 for two classes, 2.30 for
  ten), so the threshold is a loss of 69 or more: the right class's logit a full 69 below the
  winner's on average, which an ordinary run, even a noisy one, never sustains.
"""

from __future__ import annotations

__all__ = [
    "GROWTH_CHECKS",
    "GROWTH_FACTOR",
    "MIN_START_LOSS",
    "RULES",
    "LossGrowth",
    "non_finite_message",
]

RULES: dict[str, str] = {
    "non_finite": "the loss or the gradients became inf/NaN",
    "loss_growth": "the loss stayed far above its starting value for several flushes",
}
GROWTH_FACTOR = 100.0  # the loss must exceed this multiple of its starting value...
GROWTH_CHECKS = 3  # ...at this many consecutive flushes
MIN_START_LOSS = 0.1  # a floor for the starting value (nats), against a near-zero start

_ADVICE = "lower the learning rate, clip gradients, or add normalisation"


def non_finite_message(step: int, what: str) -> str:
    """The ``non_finite`` rule's message: ``what`` ("the loss") became inf/NaN at ``step``."""
    return f"diverged at step {step}: {what} became inf/NaN — exploding gradients; {_ADVICE}"


class LossGrowth:
    """The ``loss_growth`` rule, fed the finite step losses of each flush in step order."""

    def __init__(self, factor: float = GROWTH_FACTOR, checks: int = GROWTH_CHECKS):
        self.factor = factor
        self.checks = checks
        self.start: float | None = None  # the first loss fed in (step 1's)
        self.streak = 0  # consecutive flushes above the threshold

    @property
    def threshold(self) -> float | None:
        """The loss above which a flush counts, once the starting value is known."""
        if self.start is None:
            return None
        return self.factor * max(self.start, MIN_START_LOSS)

    def check(self, losses: list[float], step: int) -> str | None:
        """Add one flush's losses (the last at ``step``); the run's message once the rule fires.

        A flush without steps changes nothing.
        """
        if not losses:
            return None
        if self.start is None:
            self.start = losses[0]
        limit = self.threshold
        assert limit is not None
        self.streak = self.streak + 1 if min(losses) > limit else 0
        if self.streak < self.checks:
            return None
        return (f"diverged at step {step}: the loss stayed above {self.factor:g}x its starting "
                f"value ({self.start:.3g} -> {losses[-1]:.3g}) for {self.streak} checks — "
                f"the updates are too large; {_ADVICE}")
