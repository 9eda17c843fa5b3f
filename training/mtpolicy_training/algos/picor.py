"""PiCor: policy optimization on a sampled task, then policy correction over all tasks, on the SAC family's MTSAC.

Paper: Bai et al., "PiCor: Multi-Task Deep Reinforcement Learning with Policy
Correction" (AAAI 2023, seeds/picor-policy-correction.txt). ``PiCor`` is
``SACFamily`` with method mtsac (actor and twin critic on [state, one_hot(z)],
one temperature alpha_z per task, task-specific replay) whose ``update`` runs
Algorithm 1's two phases on a task-major batch (the same number of rows of
every task, from ``TaskReplayBuffer``, or planar8's expanded batch):

1. Policy optimization (Eq. 6-7): every ``k`` updates a task z is drawn
   uniformly (p(T) uniform, Sec. "Experimental Settings") from a seeded
   generator saved in ``state_dict``. SAC's soft Q and actor steps run on
   task z's rows only: exactly what ``SACFamily`` (mtsac) does when given that
   slice. The result is pi'_t. Every task's temperature steps on its own
   states (below); with ``every_task_temperature`` and the correction off,
   PiCor is MTSAC's update on the selected task (Table 2, Ada X / Cor X).
2. Policy correction (Eq. 10), from phi = phi'_t:
   ``L(phi) = KL(pi_phi || pi'_t) + lambda / 2 c~(phi)^2``,
   ``c~ = (c (1 - gamma) - sum_z w_z E_{s~D_z, a~pi_phi}[A^{pi_t}(s, a)])^+``,
   ``w = softmax(alpha / tau)`` (Eq. 9; uniform with ``adaptive`` off).

Choices where the paper is vague (it gives no K, lambda, c, tau, step count;
docs/picor.md measures each):

* d^{pi_t} is approximated by replay states: E_{s~D_z} is the mean over
  ``correction_states_per_task`` of the batch's rows of task z (every
  task's buffer slice, not only z's).
* A^{pi_t}(s, a) = Q(s, a, z) - E_{a'~pi_t}[Q(s, a', z)] with Q the minimum
  of the twin critics after the optimization phase's critic step (their
  targets came from pi_t's actions, so they estimate pi_t's soft Q; the
  advantage itself carries no entropy term unless ``soft_advantage``).
  a ~ pi_phi and a' ~ pi_t are reparameterized squashed-Gaussian samples with
  the SAME noise (common random numbers, one sample per state): A is exactly
  0 at phi = phi_t, and the estimate of E[A] has far less variance than with
  independent samples.
* The KL is the closed form between the pre-squash diagonal Gaussians
  (N(mu, sigma) of pi_phi and of pi'_t, averaged over all batch states).
  tanh is a bijection, so it equals the KL of the squashed policies exactly.
  Eq. 8 writes KL(pi'_t || pi), Eq. 10 KL(pi_phi || pi'_t); Eq. 10 is used.
* L >= 0 and L(phi'_t) = 0 when c~(phi'_t) = 0: then phi'_t is already the
  minimizer and the phase takes no step (no optimizer call, so no Adam
  momentum moves the actor: the correction is exactly inactive). Otherwise
  ``correction_steps`` steps on L from phi'_t, by an optimizer of its own:
  Adam without momentum (betas (0, 0.999): each update's L is a new problem,
  and momentum would carry the last correction's direction into it). At
  phi'_t the KL's gradient is zero, so the first step is driven by the
  constraint alone; the KL pulls back from the second on. The constraint's
  samples (noise, states) stay fixed across steps. lambda = 1.
* c = -0.01, in units of discounted return: it wants rescaling with the
  rewards.
* Iterations and mini-batches: the shared loop steps every task's env on
  every vector step, as for the baselines (equal samples per task), and a
  vector step is one iteration of Algorithm 1 with one gradient step, as
  MTSAC takes one per vector step. Its mini-batch from D_z is as large as
  MTSAC's whole batch (``train sac-family`` samples batch_per_task x n_tasks
  rows of every task for picor), so both methods take the same steps on the
  same number of rows, and differ in which rows: one task's or all tasks'.
  Algorithm 1 read as a gradient step after every env step of one task is
  ``--loop.updates-per-round`` n_tasks with ``--batch-per-task`` 1/n_tasks as
  large (the authors' released code steps so too).
* Temperatures: Algorithm 1 lists no temperature step. Here every task's
  alpha_z takes SAC's step (Eq. 18) at every update, on its own states (the
  correction's, with a ~ pi_t), as MTSAC's do (``every_task_temperature``;
  off, alpha_z steps only when z is drawn).
* The optimization phase shares SAC's Adam states (the critic's and actor's
  moments carry over between the drawn tasks, as in MTSAC's update on a
  one-task batch).
* The authors' released code differs from the paper (a PPO-clip surrogate
  with GAE from a separate value network, softmax(alpha) unscaled, 10
  epochs); this module follows Eq. 9-10 as printed. tau = 1 as in that code.

Simultaneous sets (planar8): a task is an end effector (see ``sac_family``):
the optimization phase fits Q(s, a, z) on z's reward and the task-blind actor
on it; the correction weighs every end effector's advantage at the same
states. The actor stays task-blind, so ``policy`` exports as ``SACFamily``'s.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from mtpolicy.kinematics import Kinematics
from mtpolicy.observation import ObservationLayout
from mtpolicy_training.algos.sac import SAC
from mtpolicy_training.algos.sac_family import (
    FamilyMethod,
    SACFamily,
    SACFamilyConfig,
    task_major,
)
from mtpolicy_training.core.distributions import gaussian_kl, squashed_gaussian
from mtpolicy_training.core.replay import Batch

PICOR_HIDDEN = (512, 512)
"""Sec. "Experimental Settings": two hidden layers of 512 for every method of the comparison."""


@dataclass
class PiCorConfig:
    """PiCor's own settings (Algorithm 1, Eq. 9-10); networks and SAC settings are the SAC family's."""

    k: int = 1
    """Updates between task draws (Algorithm 1's K; the paper gives none: 1 draws a task every update)."""
    lam: float = 1.0
    """lambda of Eq. 10: weight of the squared constraint violation against the KL."""
    c: float = -0.01
    """c of Eq. 8/10 ("a negative number approximate to 0"): allowed drop of the weighted discounted return."""
    tau: float = 1.0
    """Softmax temperature of Eq. 9, w = softmax(alpha / tau) (the authors' code: 1)."""
    adaptive: bool = True
    """Ada: weights from the temperatures (Eq. 9); off: uniform weights 1 / N."""
    correction: bool = True
    """Cor: run the policy correction phase; off: only the optimization phase (MTSAC on the sampled task)."""
    correction_steps: int = 3
    """Gradient steps on L(phi) per update when the constraint is violated (approximate minimization)."""
    correction_lr: float = 3e-4
    """Learning rate of the correction steps (Adam without momentum, an optimizer of its own)."""
    every_task_temperature: bool = True
    """Step every task's temperature alpha_z (SAC's Eq. 18) at every update, on its own states (the correction's
    ``correction_states_per_task`` of each task, actions from pi_t); off: only the drawn task's, on its rows, as
    part of the optimization phase (then each alpha_z steps once in n_tasks updates)."""
    soft_advantage: bool = False
    """Eq. 10's advantage as the maximum-entropy one SAC optimizes: E_{a~pi_phi}[Q(s, a) - alpha_z log
    pi_phi(a|s)] - E_{a'~pi_t}[Q(s, a') - alpha_z log pi_t(a'|s)] (soft Q minus soft V); off: Q's alone, which
    narrows the policy wherever that raises E[Q] (docs/picor.md)."""
    correction_states_per_task: int = 32
    """States of each task in the correction's expectations E_{s~D_z} (the first rows of each task's block of
    the batch; 0: every row). A correction evaluates n_tasks x this many states: 32 keeps the check of every
    update at about a tenth of a SAC step (MT10: 320 states against the optimization phase's 1280 rows)."""

    def validate(self) -> list[str]:
        bad = [k for k in ("k", "correction_steps") if getattr(self, k) < 1]
        bad += ["correction_states_per_task"] if self.correction_states_per_task < 0 else []
        bad += [k for k in ("lam", "tau", "correction_lr") if not getattr(self, k) > 0]
        bad += ["c (must be <= 0)"] if self.c > 0 else []
        return bad


@dataclass
class PiCorFamilyConfig(SACFamilyConfig):
    """A SAC-family method, or ``picor``: MTSAC networks with PiCor's update (settings in ``picor``)."""

    method: FamilyMethod = "dgrad-o"
    """mtsac, mh-sac, dgrad-a, dgrad-o (see SACFamilyConfig) or picor (MTSAC networks, PiCor's update)."""
    picor: PiCorConfig = field(default_factory=PiCorConfig)
    """PiCor's settings (used when method is picor)."""

    @property
    def hidden(self) -> tuple[int, ...]:
        if self.method != "picor":
            return super().hidden
        return PICOR_HIDDEN if self.paper_hidden else self.sac.hidden

    def validate(self) -> list[str]:
        return super().validate() if self.method != "picor" else picor_problems(self.family(), self.picor)

    def family(self) -> SACFamilyConfig:
        """The mtsac config PiCor's networks are built from (the widths resolved)."""
        return SACFamilyConfig(method="mtsac", sac=dataclasses.replace(self.sac, hidden=self.hidden),
                               paper_hidden=False, actor=self.actor, gain_init=self.gain_init)


def picor_problems(config: SACFamilyConfig, picor: PiCorConfig) -> list[str]:
    """The invalid settings of PiCor on ``config`` (mtsac networks, one temperature per task), by field name."""
    bad = config.validate() + [f"picor.{k}" for k in picor.validate()]
    bad += [] if config.method == "mtsac" else ["method (PiCor runs on mtsac networks)"]
    return bad + ([] if config.sac.per_task_alpha else ["sac.per_task_alpha (PiCor needs one alpha per task)"])


def policy_width(log_std: torch.Tensor) -> torch.Tensor:
    """sum_i log sigma_i, mean over states: the pre-squash Gaussian's entropy up to a constant."""
    return log_std.sum(dim=-1).mean()


class PiCor(SACFamily):
    """PiCor (see the module doc) over ``n_tasks`` tasks; ``config`` must be an mtsac ``SACFamilyConfig``."""

    def __init__(self, config: SACFamilyConfig, picor: PiCorConfig, state_size: int, action_size: int,
                 n_tasks: int, simultaneous: bool = False, obs_mean: np.ndarray | None = None,
                 obs_std: np.ndarray | None = None, seed: int = 0, layout: ObservationLayout | None = None,
                 kin: Kinematics | None = None):
        if bad := picor_problems(config, picor):
            raise ValueError("invalid PiCor config value(s): " + ", ".join(bad))
        super().__init__(config, state_size, action_size, n_tasks, simultaneous, obs_mean, obs_std, seed, layout, kin)
        self.picor = picor
        self.task_rng = np.random.default_rng([seed, 1])
        """Draws the task of the optimization phase (its own stream: the projection order's is seed alone)."""
        self.task = 0
        """Task of the current optimization phase (redrawn when ``updates`` is a multiple of k)."""
        self.correction_opt = torch.optim.Adam(self._actor_params, lr=picor.correction_lr, betas=(0.0, 0.999),
                                               fused=True)

    def task_weights(self) -> torch.Tensor:
        """Eq. 9: w = softmax(alpha / tau) over the per-task temperatures (N,), detached; uniform without Ada."""
        if not self.picor.adaptive:
            return torch.full((self.n_tasks,), 1.0 / self.n_tasks)
        return torch.softmax(self.log_alpha.detach().exp() / self.picor.tau, dim=0)

    def task_rows(self, batch: Batch, task: int) -> Batch:
        """Task ``task``'s rows of a task-major batch (its share of the task-specific replay)."""
        per = batch.obs.shape[0] // self.n_tasks
        return batch.rows(slice(task * per, (task + 1) * per))

    def correction_rows(self, batch: Batch) -> Batch:
        """The first ``correction_states_per_task`` rows of every task's block of a task-major batch (task-major
        again; the rows are uniform draws from each task's replay, so any of them are a sample of D_z)."""
        per, keep = batch.obs.shape[0] // self.n_tasks, self.picor.correction_states_per_task
        if keep == 0 or keep >= per:
            return batch
        return batch.rows((torch.arange(self.n_tasks)[:, None] * per + torch.arange(keep)).reshape(-1))

    def min_q(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """min_j Q_j(s, a, z) (B,), z from the observation's one-hot."""
        return self.critic(obs, action).min(dim=0).values[..., 0]

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Algorithm 1, lines 3-16: draw z every k updates, optimize on z's rows (Eq. 6-7), correct (Eq. 10)."""
        full = self.expand_simultaneous(batch) if self.simultaneous else batch
        if not task_major(full.task, self.n_tasks):
            raise ValueError("PiCor needs task-major batches with every task equally often (TaskReplayBuffer)")
        if self.updates % self.picor.k == 0:
            self.task = int(self.task_rng.integers(self.n_tasks))
        states = self.correction_rows(full)
        with torch.no_grad():
            prior = self.actor.distribution(states.obs)  # pi_t at every task's states
        metrics = SAC.update(self, self.task_rows(full, self.task))  # pi'_t (SACFamily.update would re-expand)
        metrics["task"] = torch.tensor(float(self.task))
        if self.picor.every_task_temperature:  # Eq. 18 on a ~ pi_t at every task's states
            metrics["alpha_loss"] = SAC.temperature_step(
                self, squashed_gaussian(*prior, torch.randn_like(prior[0]))[1], states.task)
        if self.picor.correction:
            metrics |= self.correct(states, prior)
        return metrics

    def temperature_step(self, log_prob: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """SAC's temperature step inside the optimization phase: on the drawn task's rows, or none (0) when
        ``update`` steps every task's temperature on its own states."""
        if self.picor.every_task_temperature:
            return torch.zeros(())
        return SAC.temperature_step(self, log_prob, task)

    def correct(self, batch: Batch, prior: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Policy correction, Eq. 10, from phi'_t (the current actor); ``prior``: pi_t's (mean, log_std) at the states.

        Returns the weighted advantage and c~ at phi'_t, the largest weight, E[A]
        on the sampled task's states and on the others' (mean over the other
        tasks), whether steps were taken, and after them the KL to pi'_t, c~,
        and how far the correction moved the policy's action: the largest
        change of tanh(mu) over the action's coordinates, mean over the states
        (in the env's action units, [-1, 1]). Also how the optimization step
        and the correction changed the policy's width: the change of
        sum_i log sigma_i (the pre-squash Gaussian's entropy up to a constant),
        mean over the states.
        """
        p, n = self.picor, self.n_tasks
        weights = self.task_weights()
        bound = p.c * (1.0 - self.config.gamma)
        noise = torch.randn_like(prior[0])
        alpha = self.alpha(batch.task).detach() if p.soft_advantage else None

        def value(mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
            """Q(s, a) - alpha_z log pi(a|s) (soft) or Q(s, a), a ~ pi = N(mean, exp(log_std)) squashed, on the
            fixed noise: for pi = pi_t its expectation is V^{pi_t} (Q: the critics of pi_t)."""
            action, log_prob = squashed_gaussian(mean, log_std, noise)
            q = self.min_q(batch.obs, action)
            return q - alpha * log_prob if alpha is not None else q  # alpha: soft_advantage

        with torch.no_grad():
            baseline = value(*prior)

        def violation(mean: torch.Tensor, log_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            """(c~, sum_z w_z E_z[A], E_z[A] per task) for pi_phi = N(mean, exp(log_std)) squashed."""
            advantage = value(mean, log_std) - baseline
            per_task = advantage.view(n, -1).mean(dim=1)
            weighted = weights @ per_task
            return torch.relu(bound - weighted), weighted, per_task

        mean, log_std = self.actor.distribution(batch.obs)  # phi = phi'_t
        gap, weighted, per_task = violation(mean, log_std)
        middle = (mean.detach(), log_std.detach())
        per_task = per_task.detach()
        out = {"weighted_advantage": weighted.detach(), "constraint_gap": gap.detach(), "weight_max": weights.max(),
               "advantage_sampled_task": per_task[self.task],
               "advantage_other_tasks": (per_task.sum() - per_task[self.task]) / max(n - 1, 1),
               "log_std_change_optimization": policy_width(middle[1]) - policy_width(prior[1])}
        if gap.item() == 0.0:  # the constraint holds: phi'_t minimizes L, no step
            return out | {"correction_active": torch.tensor(0.0), "correction_kl": torch.tensor(0.0),
                          "correction_action_change": torch.tensor(0.0), "constraint_gap_after": gap.detach(),
                          "log_std_change_correction": torch.tensor(0.0)}
        for step in range(p.correction_steps):
            if step:
                mean, log_std = self.actor.distribution(batch.obs)
                gap = violation(mean, log_std)[0]
            kl = gaussian_kl(mean, log_std, *middle).mean()  # KL(pi_phi || pi'_t), closed form per state
            self.apply_gradients((kl + 0.5 * p.lam * gap.square()).reshape(1), batch.task[:1], self._actor_params,
                                 self.correction_opt)
        with torch.no_grad():
            mean, log_std = self.actor.distribution(batch.obs)
            return out | {"correction_active": torch.tensor(1.0),
                          "correction_kl": gaussian_kl(mean, log_std, *middle).mean(),
                          "correction_action_change": (mean.tanh() - middle[0].tanh()).abs().amax(dim=-1).mean(),
                          "constraint_gap_after": violation(mean, log_std)[0],
                          "log_std_change_correction": policy_width(log_std) - policy_width(middle[1])}

    def state_dict(self) -> dict:
        return super().state_dict() | {"task_rng": self.task_rng.bit_generator.state, "task": self.task,
                                       "correction_opt": self.correction_opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.task_rng.bit_generator.state = state["task_rng"]
        self.task = state["task"]
        self.correction_opt.load_state_dict(state["correction_opt"])
