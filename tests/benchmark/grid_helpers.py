"""Shared constants of the grid tests."""

from skelrobust.config import protocol_budget

#: The budget the small protocol runs at: it names none, so the embedded set's protocol budget.
BUDGET = protocol_budget("synthetic")[0]

#: Columns that legitimately differ between two runs of the same grid (time, the source tree's state).
RUN_VARYING = ("attack_seconds", "seconds_per_sample", "set_seconds", "git_commit")

#: The small protocol of the grid's specification, kept verbatim.
SMALL = """\
protocol: small-grid-v1
defaults: {steps: 10, seed: 0, n_samples: 16}
datasets:
  synthetic:
    attacks: [pgd, mifgsm]
    surrogates: [stgcn]
    victims: [stgcn, ctrgcn]
    defenses: [none, lowpass]
"""

