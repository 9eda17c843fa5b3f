"""Methods over shared cores: ``offpolicy`` (replay, loop) and the method modules."""
