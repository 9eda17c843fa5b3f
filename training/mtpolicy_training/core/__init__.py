"""What every trainer stands on: the run record, replay, vector envs, distributions, networks and the loops."""
