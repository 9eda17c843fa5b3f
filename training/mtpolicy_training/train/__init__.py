"""Trainers, one per method family, behind one entry point: ``python -m mtpolicy_training.train <family> ...``."""
