"""Benchmarks: long runs and comparisons (not tests), and their results (``benchmarks/results/``, which the docs
cite).

Run from the checkout's root, which puts this folder on the import path; nothing installed imports it (it is the
top layer: it reads the training package ``mtpolicy_training`` and the runtime ``mtpolicy``)::

    python -m benchmarks.harness planar8-fig4a        # a paper's grid (torch: the [train] extra)
    python -m benchmarks.throughput --repeats 3       # our SAC/PPO vs Stable-Baselines3 (the [bench] extra)
    python benchmarks/latency.py --rates 250          # the controller over ROS 2 ([ros]; also python -m)

The harness writes under ``benchmarks/results/<grid>/`` of the folder it runs in.
"""
