"""Env steps per second of our SAC and PPO against Stable-Baselines3's, same settings, side by side.

    python -m benchmarks.throughput --repeats 3

For each algorithm (SAC, PPO) and env (HalfCheetah-v5, planar8) it trains
ours and SB3's for the same fixed step budget with the same network sizes,
batch size, update-to-data ratio, number of envs and one torch thread, each
run in a fresh subprocess. The two runs of a pair alternate (ours first in
even repeats, SB3 first in odd ones), so both see the same machine load;
the ratio ours / SB3 is taken per pair and its median over repeats printed
with the medians of steps/s (and, as a check less sensitive to other jobs on
the machine, the ratio of steps per process CPU second). Steps/s is the
budget over the wall time of the training call (``train_off_policy`` / ``train_on_policy`` vs ``learn``),
construction excluded; our loops' bookkeeping (CSV, TensorBoard, final
checkpoint) is inside it, evaluation is off for both, module imports are done
before it for both. Writes ``results.json``
and ``table.md`` to ``out_dir``. Needs the ``[bench]`` extra (SB3).
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tyro

from mtpolicy.integrity import strict_json

ENVS = ("halfcheetah", "planar8")
ALGOS = ("sac", "ppo")


@dataclass
class ThroughputConfig:
    """What to measure and where to write it."""

    algos: list[str] = field(default_factory=lambda: list(ALGOS))
    """Algorithms to measure (sac, ppo)."""
    envs: list[str] = field(default_factory=lambda: list(ENVS))
    """Envs to measure on (halfcheetah = HalfCheetah-v5, planar8 = the reach env)."""
    repeats: int = 3
    """Pairs of runs (ours, SB3) per algorithm and env."""
    sac_steps: int = 2000
    """Env steps per SAC run (learning starts after one batch)."""
    ppo_steps: int = 8192
    """Env steps per PPO run (a multiple of the rollout size)."""
    sac_hidden: tuple[int, ...] = (256, 256)
    """SAC actor and critic hidden sizes (SB3's default)."""
    sac_batch_size: int = 256
    """SAC minibatch size (SB3's default)."""
    sac_num_envs: int = 1
    """SAC parallel envs; one update per env step (update-to-data ratio 1, SB3's default)."""
    ppo_hidden: tuple[int, ...] = (64, 64)
    """PPO policy and value hidden sizes (SB3's default)."""
    ppo_num_envs: int = 1
    """PPO parallel envs."""
    ppo_rollout: int = 2048
    """PPO transitions per rollout (over all envs), SB3's n_steps * n_envs."""
    ppo_minibatch_size: int = 64
    """PPO minibatch size (SB3's default)."""
    ppo_epochs: int = 10
    """PPO epochs per rollout (SB3's default)."""
    out_dir: Path = Path("benchmarks/results/throughput")
    """Where results.json and table.md go."""

    def __post_init__(self):
        bad = [k for k in ("repeats", "sac_steps", "ppo_steps", "sac_batch_size", "sac_num_envs", "ppo_num_envs",
                           "ppo_rollout", "ppo_minibatch_size", "ppo_epochs") if getattr(self, k) <= 0]
        bad += [f"algos ({a})" for a in self.algos if a not in ALGOS]
        bad += [f"envs ({e})" for e in self.envs if e not in ENVS]
        if self.ppo_rollout % (self.ppo_num_envs * self.ppo_minibatch_size) or self.ppo_steps % self.ppo_rollout:
            bad.append("ppo_rollout (a multiple of ppo_num_envs * ppo_minibatch_size dividing ppo_steps)")
        if bad:
            raise ValueError("invalid ThroughputConfig value(s): " + ", ".join(bad))


def reach_single_env():
    """The planar8 reach env with its time limit, as SB3 gets it."""
    import gymnasium as gym

    from mtpolicy_training.envs.reach import ReachConfig, ReachEnv

    return gym.wrappers.TimeLimit(ReachEnv(), ReachConfig().max_episode_steps)


def sb3_vec_env(env: str, n: int):
    from stable_baselines3.common.env_util import make_vec_env

    return make_vec_env("HalfCheetah-v5" if env == "halfcheetah" else reach_single_env, n_envs=n, seed=0)


def our_vec_env(env: str):
    from mtpolicy_training.core.vector_envs import gym_vector_env
    from mtpolicy_training.envs.reach import ReachVectorEnv

    return (lambda n: gym_vector_env("HalfCheetah-v5", n)) if env == "halfcheetah" else ReachVectorEnv


def timed(train) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of ``train()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    train()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_ours(algo: str, env: str, c: ThroughputConfig, out_dir: Path) -> tuple[float, float]:
    """Wall and CPU seconds of our training call."""
    from mtpolicy_training.algos.ppo import PPO, PPOConfig
    from mtpolicy_training.algos.sac import SAC, SACConfig
    from mtpolicy_training.core.offpolicy import LoopConfig, train_off_policy
    from mtpolicy_training.core.onpolicy import OnPolicyLoopConfig, train_on_policy
    from mtpolicy_training.core.run_record import RunConfig, RunSettings
    from mtpolicy_training.core.vector_envs import space_sizes

    unrecorded = RunConfig({}, {})  # throughput runs are never resumed
    make_env = our_vec_env(env)
    probe = make_env(1)
    obs_size, act_size = space_sizes(probe)

    def no_eval(m):
        return {}

    if algo == "sac":
        n = c.sac_num_envs
        sac = SAC(SACConfig(hidden=c.sac_hidden), obs_size, act_size)
        sac_loop = LoopConfig(num_envs=n, batch_size=c.sac_batch_size, update_every=n, updates_per_round=n,
                              buffer_size=c.sac_steps, learning_starts=c.sac_batch_size, eval_every=10 * c.sac_steps,
                              checkpoint_every=10 * c.sac_steps)
        run = RunSettings(budget_steps=c.sac_steps, seed=0, out_dir=out_dir, progress=False)
        return timed(lambda: train_off_policy(sac, make_env, sac_loop, run, no_eval, None, unrecorded))
    n = c.ppo_num_envs
    ppo = PPO(PPOConfig(hidden=c.ppo_hidden, epochs=c.ppo_epochs, minibatch_size=c.ppo_minibatch_size),
              obs_size, act_size, c.ppo_rollout)
    ppo_loop = OnPolicyLoopConfig(num_envs=n, rollout_steps=c.ppo_rollout // n, eval_every=10 * c.ppo_steps,
                                  checkpoint_every=10 * c.ppo_steps)
    run = RunSettings(budget_steps=c.ppo_steps, seed=0, out_dir=out_dir, progress=False)
    return timed(lambda: train_on_policy(ppo, make_env, ppo_loop, run, no_eval, unrecorded))


def run_sb3(algo: str, env: str, c: ThroughputConfig) -> tuple[float, float]:
    """Wall and CPU seconds of SB3's ``learn`` with the same settings."""
    from stable_baselines3 import PPO, SAC

    if algo == "sac":
        n = c.sac_num_envs
        model = SAC("MlpPolicy", sb3_vec_env(env, n), learning_starts=c.sac_batch_size, batch_size=c.sac_batch_size,
                    buffer_size=c.sac_steps, train_freq=1, gradient_steps=n,
                    policy_kwargs={"net_arch": list(c.sac_hidden)}, device="cpu", seed=0)
        budget = c.sac_steps
    else:
        n = c.ppo_num_envs
        model = PPO("MlpPolicy", sb3_vec_env(env, n), n_steps=c.ppo_rollout // n, batch_size=c.ppo_minibatch_size,
                    n_epochs=c.ppo_epochs, policy_kwargs={"net_arch": list(c.ppo_hidden)}, device="cpu", seed=0)
        budget = c.ppo_steps
    return timed(lambda: model.learn(budget))


def sac_gemm_list(obs: int, act: int, c: ThroughputConfig) -> list[tuple[int, int, int, bool]]:
    """(M, K, N, first operand transposed) of every matrix product of one SAC update (ours; SB3 has more).

    Forward: the actor on s and s', the twin critics on (s', a'), (s, a) and
    (s, pi(s)). Backward: the critics' weight and hidden-input gradients for
    the critic loss, their input gradients for the actor loss, the actor's
    weight and hidden-input gradients.
    """
    b, widths = c.sac_batch_size, c.sac_hidden
    actor = list(zip((obs, *widths), (*widths, 2 * act)))
    critic = list(zip((obs + act, *widths), (*widths, 1)))
    forward = [(b, i, o, False) for i, o in actor] * 2 + [(b, i, o, False) for i, o in critic] * 6
    critic_grads = ([(i, b, o, True) for i, o in critic] + [(b, o, i, False) for i, o in critic[1:]]) * 2
    through_critic = [(b, o, i, False) for i, o in critic] * 2
    actor_grads = [(i, b, o, True) for i, o in actor] + [(b, o, i, False) for i, o in actor[1:]]
    return forward + critic_grads + through_critic + actor_grads


def gemm_floor_cpu_ms(obs: int, act: int, c: ThroughputConfig, repeats: int = 50) -> float:
    """CPU ms of the bare matrix products of one SAC update (``sac_gemm_list``): no update can cost less."""
    import torch

    mats = [(torch.randn(k, m).T if transposed else torch.randn(m, k), torch.randn(k, n))
            for m, k, n, transposed in sac_gemm_list(obs, act, c)]
    for a, b in mats:
        torch.mm(a, b)
    start = time.process_time()
    for _ in range(repeats):
        for a, b in mats:
            torch.mm(a, b)
    return (time.process_time() - start) / repeats * 1e3


def worker(spec: dict) -> None:
    """One measurement in this process; prints its JSON result."""
    import torch

    for module in ("torch.utils.tensorboard", "tqdm"):  # imported before the timed call, as SB3's own modules are
        importlib.import_module(module)

    torch.set_num_threads(1)
    fields: dict[str, Any] = {k: tuple(v) if k.endswith("hidden") else v for k, v in spec["config"].items()
                              if k != "out_dir"}  # from JSON
    c = ThroughputConfig(**fields)
    if spec["impl"] == "gemm_floor":
        from mtpolicy_training.core.vector_envs import space_sizes

        print(json.dumps({"gemm_floor_cpu_ms": gemm_floor_cpu_ms(*space_sizes(our_vec_env(spec["env"])(1)), c)}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = run_ours(spec["algo"], spec["env"], c, Path(tmp)) if spec["impl"] == "ours" else \
            run_sb3(spec["algo"], spec["env"], c)
    steps = c.sac_steps if spec["algo"] == "sac" else c.ppo_steps
    print(json.dumps({"seconds": wall, "cpu_seconds": cpu, "steps_per_second": steps / wall,
                      "steps_per_cpu_second": steps / cpu}))


def measure(impl: str, algo: str, env: str, c: ThroughputConfig) -> dict:
    spec = {"impl": impl, "algo": algo, "env": env, "config": json.loads(json.dumps(asdict(c), default=str))}
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    r = subprocess.run([sys.executable, "-m", "benchmarks.throughput", "--worker", json.dumps(spec)],
                       capture_output=True, text=True, env={**os.environ, **threads}, check=False,
                       cwd=Path(__file__).resolve().parents[1])  # the checkout, where `benchmarks` imports from
    if r.returncode != 0:
        raise RuntimeError(f"{impl} {algo} {env} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def settings_text(algo: str, c: ThroughputConfig) -> str:
    if algo == "sac":
        return (f"hidden {c.sac_hidden}, batch {c.sac_batch_size}, {c.sac_num_envs} env(s), UTD 1, "
                f"{c.sac_steps} steps")
    return (f"hidden {c.ppo_hidden}, rollout {c.ppo_rollout}, minibatch {c.ppo_minibatch_size}, "
            f"{c.ppo_epochs} epochs, {c.ppo_num_envs} env(s), {c.ppo_steps} steps")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        worker(json.loads(argv[1]))
        return
    c = tyro.cli(ThroughputConfig, args=argv)
    command = "python -m benchmarks.throughput " + shlex.join(argv)
    import stable_baselines3
    import torch

    rows = []
    load_before = os.getloadavg()
    for algo in c.algos:
        for env in c.envs:
            pairs = []
            for r in range(c.repeats):
                order = ("ours", "sb3") if r % 2 == 0 else ("sb3", "ours")
                got = {impl: measure(impl, algo, env, c) for impl in order}
                pairs.append(got)
                print(f"{algo} {env} repeat {r}: ours {got['ours']['steps_per_second']:.1f} steps/s, "
                      f"sb3 {got['sb3']['steps_per_second']:.1f} steps/s, ratio "
                      f"{got['ours']['steps_per_second'] / got['sb3']['steps_per_second']:.2f}", flush=True)
            ratios = [p["ours"]["steps_per_second"] / p["sb3"]["steps_per_second"] for p in pairs]
            cpu_ratios = [p["ours"]["steps_per_cpu_second"] / p["sb3"]["steps_per_cpu_second"] for p in pairs]
            row = {"algo": algo, "env": env, "settings": settings_text(algo, c),
                   "ours_steps_per_second": statistics.median(p["ours"]["steps_per_second"] for p in pairs),
                   "sb3_steps_per_second": statistics.median(p["sb3"]["steps_per_second"] for p in pairs),
                   "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                   "cpu_ratio_median": statistics.median(cpu_ratios), "pairs": pairs}
            if algo == "sac":  # any SAC spends at least updates x GEMM floor: SB3's CPU time over that bounds the ratio
                floor = measure("gemm_floor", algo, env, c)["gemm_floor_cpu_ms"]
                updates = c.sac_steps - c.sac_batch_size  # learning starts after one batch
                sb3_ms = statistics.median(p["sb3"]["cpu_seconds"] for p in pairs) * 1e3 / updates
                ours_ms = statistics.median(p["ours"]["cpu_seconds"] for p in pairs) * 1e3 / updates
                row.update({"gemm_floor_cpu_ms_per_update": floor, "sb3_cpu_ms_per_update": sb3_ms,
                            "ours_cpu_ms_per_update": ours_ms, "ratio_bound_from_gemm_floor": sb3_ms / floor})
                print(f"sac {env}: CPU ms per update (run CPU time / updates) ours {ours_ms:.2f}, SB3 {sb3_ms:.2f}; "
                      f"GEMM floor {floor:.2f}, so ours / SB3 <= {sb3_ms / floor:.2f}", flush=True)
            rows.append(row)
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "load_average_before": load_before, "load_average_after": os.getloadavg(),
               "torch": torch.__version__, "stable_baselines3": stable_baselines3.__version__,
               "python": platform.python_version(), "torch_threads": 1}
    result = {"command": command, "config": json.loads(json.dumps(asdict(c), default=str)), "machine": machine,
              "rows": rows, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    c.out_dir.mkdir(parents=True, exist_ok=True)
    (c.out_dir / "results.json").write_text(strict_json(result, indent=2))
    table = [("| algo | env | settings | ours steps/s | SB3 steps/s | ours / SB3 (median, min-max) | "
              "ours / SB3 per CPU second |"), "|---|---|---|---|---|---|---|"]
    table += [f"| {r['algo'].upper()} | {r['env']} | {r['settings']} | {r['ours_steps_per_second']:.1f} | "
              f"{r['sb3_steps_per_second']:.1f} | **{r['ratio_median']:.2f}x** ({r['ratio_min']:.2f}-"
              f"{r['ratio_max']:.2f}) | {r['cpu_ratio_median']:.2f}x |" for r in rows]
    text = "\n".join(table)
    bounds = [f"- SAC {r['env']}: CPU ms per update (a run's CPU time over its updates) ours "
              f"{r['ours_cpu_ms_per_update']:.2f}, SB3 {r['sb3_cpu_ms_per_update']:.2f}; the bare matrix products "
              f"of one update take "
              f"{r['gemm_floor_cpu_ms_per_update']:.2f} ms, so at these settings no SAC can beat SB3 by more than "
              f"{r['ratio_bound_from_gemm_floor']:.2f}x" for r in rows if "gemm_floor_cpu_ms_per_update" in r]
    if bounds:
        text += ("\n\nSAC at an update-to-data ratio of 1 is bound by matrix products (``sac_gemm_list``):\n\n"
                 + "\n".join(bounds))
    (c.out_dir / "table.md").write_text(
        f"# Throughput: ours vs Stable-Baselines3 (env steps per second)\n\n{text}\n\n"
        f"Medians over {c.repeats} alternating pairs of runs, one torch thread each, measured {result['date']} on "
        f"{machine['cores']} cores (load average before {load_before[0]:.2f}, "
        f"after {machine['load_average_after'][0]:.2f}; "
        f"the machine was shared with other jobs, so compare the ratios, not the absolute rates). "
        f"torch {machine['torch']}, SB3 {machine['stable_baselines3']}.\n\nReproduce:\n\n    {command}\n")
    print(text)


if __name__ == "__main__":
    main()
