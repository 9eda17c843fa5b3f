"""The evaluation seeds of every task set and of the reach evaluator: which seeds may choose, which only report.

``VALIDATION_SEEDS`` are for training-time evaluations and every choice of recipe or checkpoint; ``TEST_SEEDS``
only for published figures (``ship/reach_table.py``), never for a choice.
"""

VALIDATION_SEEDS = (20_240_518, 20_240_517, 20_240_519)
"""Seeds of evaluations that choose (periodic evaluations, checkpoints, recipes). 20_240_517 was the held-out
seed of the first model cards; choices were made on it, so it validates now."""
VALIDATION_SEED = VALIDATION_SEEDS[0]
"""The periodic evaluations' seed during training."""
HELD_OUT_SEED = VALIDATION_SEEDS[1]
"""The final evaluation of a training run (a validation seed: the run's figure may choose among runs)."""
TEST_SEEDS = (20_261_127, 20_261_128, 20_261_129)
"""Seeds of published figures only."""
