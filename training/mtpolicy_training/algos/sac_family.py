"""The SAC family of the D-Grad paper as thin variants of ``SAC``: MTSAC, multi-head SAC, D-Grad(A), D-Grad(O).

Paper: "Multi-Task Reinforcement Learning without Interference" (D-Grad,
seeds/dgrad-deconflicting-gradients-sac.txt). Every variant is ``SAC`` with
per-task temperatures and task-specific replay; the variants differ in one
place each:

| method    | networks (actor and twin critics)                         | gradient step               |
|-----------|-----------------------------------------------------------|-----------------------------|
| mtsac     | MLP on [input, one_hot(task)]                             | SAC's (batch mean)          |
| mh-sac    | shared MLP trunk on the input, one output head per task   | SAC's                       |
| dgrad-a   | after each hidden layer x <- M(z) x + beta(z) (Eq. 1)     | SAC's                       |
| dgrad-o   | as mtsac                                                  | Algorithm 1 over per-task   |
|           |                                                           | losses, actor and critic    |

Observations given to the method end with the task one-hot z (the last
``n_tasks`` columns; ``TaskOneHotObservations`` appends it for task families, as
Meta-World's ``use_one_hot=True`` does); the networks split it off.

Simultaneous sets (planar8: one env, one reward per end effector), the
choice made here: a task is an end effector. Each replayed transition is
used once per task, as a sample of task i with task i's reward and one-hot
(``expand_simultaneous``), so the critic Q(s, a, z_i) is a per-task critic
(one-hot input, head or D-Grad(A) layers by method) and the batch is
task-major like a task family's. The actor is task-blind (one policy over all
joints, it never sees z): its per-task loss for task i is
``alpha log pi(a|s) - Q(s, a, z_i)`` (DiGrad's Eq. 12 without action
routing), so D-Grad(O) projects the actor's per-task gradients too; for mh-sac
and dgrad-a only the critic has heads / task layers. Task-specific replay is
pointless there (every transition belongs to every task): one buffer.

With ``actor="error-gain"`` (reach sets only; not in the paper) the actor's
pre-tanh mean is ``M_theta(s) z(s)`` (``core/holding.py``) and its log-std a
head of the same network: the deployed tanh(mean) is exactly zero at the goal,
the Gaussian's noise is the training's exploration only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn

from mtpolicy_training.algos.sac import SAC, SACConfig
from mtpolicy.kinematics import Kinematics
from mtpolicy.observation import ObservationLayout
from mtpolicy_training.core.holding import Actor, ErrorGain, holding_problems
from mtpolicy_training.core.networks import (ACTIVATIONS, EnsembleLinear, EnsembleMLP, Normalizer,
                                             SquashedGaussianActor, initialize_gain)
from mtpolicy_training.core.replay import Batch
from mtpolicy_training.envs.taskset import append_task_one_hot

Method = Literal["mtsac", "mh-sac", "dgrad-a", "dgrad-o"]
"""The D-Grad paper's SAC-family methods."""

FamilyMethod = Literal[Method, "picor"]
"""A method of the SAC-family trainer: one of ``Method`` or picor (``algos.picor.PiCorFamilyConfig``; SACFamily
refuses it)."""

PAPER_HIDDEN = {"dgrad-a": (160,) * 3, "mtsac": (160,) * 6, "mh-sac": (160,) * 6, "dgrad-o": (160,) * 6}
"""Sec. 5: D-Grad(A) 3 x 160; the others 6 x 160 "for about the same expressiveness"."""

Conditioning = Literal["one-hot", "heads", "dgrad-a", "blind"]
"""How a network sees the task: one-hot input, per-task heads, D-Grad(A)'s layers, or not at all."""

CONDITIONING: dict[str, Conditioning] = {"mtsac": "one-hot", "mh-sac": "heads", "dgrad-a": "dgrad-a",
                                         "dgrad-o": "one-hot"}
"""Method -> how its networks see the task."""


@dataclass
class SACFamilyConfig:
    """One method of the D-Grad paper's SAC family (Sec. 5) on the SAC core."""

    method: FamilyMethod = "dgrad-o"
    """mtsac (one-hot input), mh-sac (one head per task), dgrad-a (task layers M(z)x+b(z)), dgrad-o (projection);
    picor is ``PiCorFamilyConfig``'s (refused by ``validate`` here)."""
    sac: SACConfig = field(default_factory=lambda: SACConfig(per_task_alpha=True))
    """SAC settings (per-task temperature on by default: disentangled alpha)."""
    paper_hidden: bool = True
    """Use the paper's widths (dgrad-a 3 x 160, others 6 x 160) instead of ``sac.hidden``."""
    actor: Actor = "mlp"
    """Actor structure: mlp (the paper's) or error-gain (pre-tanh mean M_theta(s) z(s), exactly zero at the goal;
    ``core/holding.py``; reach sets only). Not in the paper."""
    gain_init: float | None = None
    """error-gain, dls-gain: start M(s) near ``gain_init`` times the Jacobian-transpose gain or the DLS law
    (``ErrorGain.constant_gain``; None: PyTorch's init)."""

    @property
    def hidden(self) -> tuple[int, ...]:
        return PAPER_HIDDEN[self.method] if self.paper_hidden else self.sac.hidden

    def validate(self) -> list[str]:
        bad = [f"sac.{k}" for k in self.sac.validate()]
        bad += holding_problems(self.actor, self.gain_init)
        return bad + ([f"method ({self.method!r} not in {', '.join(CONDITIONING)})"]
                      if self.method not in CONDITIONING else [])


def task_major(task: torch.Tensor, n_tasks: int) -> bool:
    """True when ``task`` is n_tasks equal contiguous groups 0, 0, ..., 1, 1, ... (task-specific replay's batches)."""
    b = task.shape[0]
    return b % n_tasks == 0 and torch.equal(task, torch.arange(n_tasks).repeat_interleave(b // n_tasks))


class DGradLayer(nn.Module):
    """D-Grad(A) layer, Eq. 1: x <- M(z) x + beta(z), per ensemble member.

    The paper's task network maps the one-hot z to M(z) and beta(z); any
    network of a one-hot is a lookup table, so M and beta are stored per task
    (a linear task network without bias). Chosen here (the paper does not
    say): identity M and zero beta at init, so the initial network is the
    plain MLP. Rows act on row vectors (x M), the same map transposed.
    """

    def __init__(self, members: int, n_tasks: int, width: int):
        super().__init__()
        self.n_tasks = n_tasks
        self.matrix = nn.Parameter(torch.eye(width).repeat(members, n_tasks, 1, 1))
        self.shift = nn.Parameter(torch.zeros(members, n_tasks, 1, width))

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """(E, B, n) -> (E, B, n); task-major batches take one batched matmul per task group."""
        e, b, n = x.shape
        if task_major(task, self.n_tasks):
            groups = x.reshape(e * self.n_tasks, b // self.n_tasks, n)
            out = torch.baddbmm(self.shift.reshape(-1, 1, n), groups, self.matrix.reshape(-1, n, n))
            return out.reshape(e, b, n)
        return (x.unsqueeze(-2) @ self.matrix[:, task]).squeeze(-2) + self.shift[:, task, 0]


class TaskConditionedMLP(nn.Module):
    """E MLPs of (E, B, in) conditioned on one-hot z (B, n_tasks): one-hot input, per-task heads, D-Grad(A) or blind."""

    def __init__(self, members: int, in_features: int, hidden: tuple[int, ...], out_features: int, n_tasks: int,
                 conditioning: Conditioning, activation: str):
        super().__init__()
        self.conditioning, self.n_tasks, self.out_features = conditioning, n_tasks, out_features
        if conditioning == "dgrad-a":
            act, widen = ACTIVATIONS[activation]
            layers, width = [], in_features
            for h in hidden:
                layers += [EnsembleLinear(members, width, h), act(), DGradLayer(members, n_tasks, h * widen)]
                width = h * widen
            self.layers = nn.ModuleList(layers + [EnsembleLinear(members, width, out_features, output=True)])
            return
        extra_in = n_tasks if conditioning == "one-hot" else 0
        heads = n_tasks if conditioning == "heads" else 1
        self.net = EnsembleMLP(members, in_features + extra_in, hidden, out_features * heads, activation)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.conditioning == "one-hot":
            return self.net(torch.cat([x, z.expand(x.shape[0], -1, -1)], dim=-1))
        if self.conditioning == "blind":
            return self.net(x)
        task = z.argmax(-1)
        if self.conditioning == "heads":
            out = self.net(x).unflatten(-1, (self.n_tasks, self.out_features))
            return out[:, torch.arange(x.shape[1]), task]
        for layer in self.layers:
            x = layer(x, task) if isinstance(layer, DGradLayer) else layer(x)
        return x


class TaskActor(SquashedGaussianActor):
    """SAC's squashed-Gaussian actor on observations that end with the task one-hot; with ``holding`` its mean is
    the error-gain form of the state part (``SquashedGaussianActor``)."""

    def __init__(self, normalizer: Normalizer, state_size: int, action_size: int, n_tasks: int,
                 hidden: tuple[int, ...], activation: str, conditioning: Conditioning, holding: ErrorGain | None = None,
                 gain_init: float | None = None, log_std_init: float | None = None):
        nn.Module.__init__(self)
        self.normalizer, self.action_size, self.n_tasks, self.holding = normalizer, action_size, n_tasks, holding
        self.net = TaskConditionedMLP(1, state_size, hidden, self.mean_outputs + action_size, n_tasks, conditioning,
                                      activation)
        initialize_gain(self.net, holding, gain_init)
        self.start_log_std(log_std_init)

    def distribution(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, z = obs[..., :-self.n_tasks], obs[..., -self.n_tasks:]
        return self.head(self.net(self.normalizer(s).unsqueeze(0), z).squeeze(0), s)


class TaskBlindPolicy(nn.Module):
    """A task-blind actor on plain observations (zero one-hot appended): what planar8 exports and runs."""

    def __init__(self, actor: TaskActor):
        super().__init__()
        self.actor = actor

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(torch.cat([obs, obs.new_zeros(obs.shape[0], self.actor.n_tasks)], dim=-1))


class TaskCritic(nn.Module):
    """Twin Q(s, a, z) as one fused ensemble: (2, B, 1) values for observations ending with the one-hot."""

    def __init__(self, normalizer: Normalizer, state_size: int, action_size: int, n_tasks: int,
                 hidden: tuple[int, ...], activation: str, conditioning: Conditioning, members: int = 2):
        super().__init__()
        self.normalizer, self.n_tasks, self.members = normalizer, n_tasks, members
        self.net = TaskConditionedMLP(members, state_size + action_size, hidden, 1, n_tasks, conditioning, activation)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        s, z = obs[..., :-self.n_tasks], obs[..., -self.n_tasks:]
        x = torch.cat([self.normalizer(s), action], dim=-1)
        return self.net(x.expand(self.members, -1, -1), z)


def deconflict_weights(gram: np.ndarray, order: list[list[int]]) -> np.ndarray:
    """Algorithm 1 of D-Grad on the Gram matrix (T, T, float64) of per-task gradients g: weights w (T,) with
    sum_i g_i^proj = w @ g.

    For each task i, g_i is projected, against each other task j in the
    order ``order[i]``, onto the normal plane of g_j when they conflict
    (g_i . g_j < 0): g_i <- g_i - (g_i . g_j / |g_j|^2) g_j, with the original
    g_j. Each g_i^proj is a combination of the g_j, so the projections need
    only the Gram matrix (numpy: the loop is ~T^2 scalar steps).
    """
    weights = np.zeros(gram.shape[0])
    columns = gram.T.copy()  # columns[j] is gram[:, j]
    for i, others in enumerate(order):
        coef = np.zeros_like(weights)
        coef[i] = 1.0
        for j in others:
            dot = coef @ columns[j]
            if dot < 0:
                coef[j] -= dot / gram[j, j]
        weights += coef
    return weights


def surgery_diagnostics(gram: torch.Tensor, weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """What Algorithm 1 did to one step, from the Gram matrix (T, T) of the per-task gradients g and the weights
    w of ``deconflict_weights``: the fraction of task pairs that conflict (g_i . g_j < 0), and the length ratio
    |sum_i g_i^proj| / |sum_i g_i| and cosine of the projected step to SAC's (both 1 without conflicts)."""
    n = gram.shape[0]
    ones = torch.ones(n, dtype=gram.dtype)
    projected, plain = weights @ gram @ weights, ones @ gram @ ones
    return {"conflicting_pairs": (gram[~torch.eye(n, dtype=torch.bool)] < 0).to(gram.dtype).mean(),
            "step_norm_ratio": (projected / plain).sqrt(),
            "step_cosine": weights @ gram @ ones / (projected * plain).sqrt()}


SURGERY_METRICS = tuple(f"{network}_{k}" for network in ("actor", "critic")
                        for k in ("conflicting_pairs", "step_norm_ratio", "step_cosine"))
"""D-Grad(O)'s update metrics: ``surgery_diagnostics`` of its last actor and critic steps."""


class TaskGradients:
    """Per-task gradients of a task-major batch from ONE backward pass, for D-Grad(O).

    Samples do not interact in these networks, so in the backward pass of
    the summed per-task losses the gradient at a layer's output, restricted
    to task t's rows, is the gradient of task t's loss. A linear layer's
    per-task weight gradient is then x_t^T delta_t over task t's rows (x: the
    layer input and output, recorded by a forward hook; delta: the gradient
    at that output), its bias gradient sum(delta_t); a D-Grad(A) layer's M(z_t)
    and beta(z_t) are used by task t only. The backward pass stops at the
    linear layers' outputs: their batch weight gradients, which the per-task
    products replace, are never formed. Same result as T backward passes, at
    the cost of one.
    """

    def __init__(self, networks: list[nn.Module]):
        self.records: dict[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        """Linear layer -> (input, output) of each differentiable forward since ``clear``."""
        self.owner: dict[torch.Tensor, tuple[nn.Module, str]] = {
            p: (layer, name) for net in networks for layer in net.modules()
            for name, p in layer.named_parameters(recurse=False)}
        for net in networks:
            for layer in net.modules():
                if isinstance(layer, EnsembleLinear):
                    layer.register_forward_hook(self._record)

    def _record(self, layer: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if torch.is_grad_enabled() and output.requires_grad:
            self.records.setdefault(layer, []).append((inputs[0], output))

    def per_task_blocks(self, loss: torch.Tensor, params: list[torch.Tensor], n_tasks: int) -> list[torch.Tensor]:
        """Gradients of each task's share of ``loss`` (a sum over task-major equal groups), by parameter and
        ensemble member, as computed (no copy): for each (E, ...) parameter of ``params``, an (E, T, numel / E)
        tensor whose [e, t] is member e's part of task t's gradient."""
        owners = [self.owner[p] for p in params]
        layers = dict.fromkeys(layer for layer, _ in owners if not isinstance(layer, DGradLayer))
        forwards = [(layer, x, out) for layer in layers for x, out in self.records.get(layer, [])]
        direct = [p for p, (layer, _) in zip(params, owners) if isinstance(layer, DGradLayer)]
        grads = torch.autograd.grad(loss, [out for *_, out in forwards] + direct, allow_unused=True)
        with torch.no_grad():  # the products are data, not part of any graph
            direct_grads = dict(zip(map(id, direct), grads[len(forwards):]))
            sums: dict[tuple[nn.Module, str], torch.Tensor] = {}
            for (layer, x, _), delta in zip(forwards, grads):
                if delta is None:
                    continue
                x, delta = x.float(), delta.float()  # recorded in bfloat16 under a bfloat16 autocast
                if delta.dim() == 2:
                    x, delta = x.unsqueeze(0), delta.unsqueeze(0)
                e, o = delta.shape[0], delta.shape[-1]
                groups = delta.reshape(e * n_tasks, -1, o)  # (E T, b, out), a view: task-major rows
                weight = torch.bmm(x.reshape(e * n_tasks, -1, x.shape[-1]).transpose(1, 2), groups)
                for name, block in (("weight", weight), ("bias", groups.sum(1))):
                    block = block.reshape(e, n_tasks, -1)
                    sums[layer, name] = sums[layer, name] + block if (layer, name) in sums else block
            blocks = []
            for p, (layer, name) in zip(params, owners):
                if isinstance(layer, DGradLayer):  # (E, T, ...): only task t's slice in task t's gradient
                    g = direct_grads[id(p)]
                    g = torch.zeros_like(p) if g is None else g
                    mask = torch.eye(n_tasks, dtype=g.dtype).reshape(n_tasks, 1, n_tasks, *[1] * (g.dim() - 2))
                    blocks.append((mask * g).transpose(0, 1).reshape(g.shape[0], n_tasks, -1))
                else:
                    blocks.append(sums[layer, name] if (layer, name) in sums
                                  else p.new_zeros(p.shape[0], n_tasks, p[0].numel()))
            return blocks


class SACFamily(SAC):
    """SAC with per-task conditioning (``config.method``) over ``n_tasks`` tasks; observations end with the one-hot.

    ``simultaneous``: every transition holds all tasks, its rewards (B, n_tasks)
    (planar8); else rewards are (B, 1) and ``Batch.task`` names the task.
    """

    actor: TaskActor

    def __init__(self, config: SACFamilyConfig, state_size: int, action_size: int, n_tasks: int,
                 simultaneous: bool = False, obs_mean: np.ndarray | None = None, obs_std: np.ndarray | None = None,
                 seed: int = 0, layout: ObservationLayout | None = None, kin: Kinematics | None = None):
        """``layout``: the reach observations' (without the one-hot), which the gain actors need; ``kin``: the reach
        robot's kinematics, which ``actor="dls-gain"`` needs."""
        if bad := config.validate():
            raise ValueError("invalid SACFamilyConfig value(s): " + ", ".join(bad))
        self.family, self.simultaneous = config, simultaneous
        self.holding = ErrorGain.of(config.actor, layout, action_size, kin)
        self.n_rewards = n_tasks if simultaneous else 1
        self.order_rng = np.random.default_rng(seed)
        super().__init__(config.sac, state_size, action_size, n_tasks, obs_mean, obs_std)
        if config.method == "dgrad-o":
            self.task_gradients = TaskGradients([self.actor, self.critic])
        self.surgery_metrics: dict[str, torch.Tensor] = {}
        """D-Grad(O): ``SURGERY_METRICS`` once it has stepped."""

    def make_networks(self, normalizer: Normalizer, state_size: int,
                      action_size: int) -> tuple[TaskActor, TaskCritic]:
        c, conditioning = self.family, CONDITIONING[self.family.method]
        actor_conditioning: Conditioning = "blind" if self.simultaneous else conditioning
        return (TaskActor(normalizer, state_size, action_size, self.n_tasks, c.hidden, c.sac.activation,
                          actor_conditioning, self.holding, c.gain_init, c.sac.log_std_init),
                TaskCritic(normalizer, state_size, action_size, self.n_tasks, c.hidden, c.sac.activation,
                           conditioning))

    @property
    def policy(self) -> nn.Module:
        """The deterministic actor on the env's observations (planar8: without one-hot), for export."""
        return TaskBlindPolicy(self.actor) if self.simultaneous else self.actor

    @torch.no_grad()
    def act(self, obs: np.ndarray, noise_std: float) -> np.ndarray:
        if self.simultaneous:
            obs = np.concatenate([obs, np.zeros((obs.shape[0], self.n_tasks), obs.dtype)], axis=-1)
        return super().act(obs, noise_std)

    def expand_simultaneous(self, batch: Batch) -> Batch:
        """Each transition once per task i: task i's reward column and one-hot, task-major (see module doc)."""
        t, b = self.n_tasks, batch.obs.shape[0]
        task = torch.arange(t).repeat_interleave(b)

        def with_task(obs: torch.Tensor) -> torch.Tensor:
            return append_task_one_hot(obs.repeat(t, 1), task, t)
        return Batch(obs=with_task(batch.obs), action=batch.action.repeat(t, 1),
                     rewards=batch.rewards.T.reshape(-1, 1), next_obs=with_task(batch.next_obs),
                     terminated=batch.terminated.repeat(t), truncated=batch.truncated.repeat(t), task=task)

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        if self.family.method == "dgrad-o":
            self.task_gradients.records.clear()
        return super().update(self.expand_simultaneous(batch) if self.simultaneous else batch) | self.surgery_metrics

    def apply_gradients(self, losses: torch.Tensor, task: torch.Tensor, params: list[torch.Tensor],
                        optimizer: torch.optim.Optimizer) -> torch.Tensor:
        """D-Grad(O) on actor and critic: per-task mean losses, their gradients deconflicted (Algorithm 1).

        The per-task gradients come from one backward pass (``TaskGradients``).
        The step is sum_i g_i^proj / T: Algorithm 1 applies the sum;
        dividing by the number of tasks makes it equal SAC's batch-mean
        gradient when no pair conflicts (with equal per-task sampling), and
        Adam does not see a constant scale. The temperature step is SAC's.
        Under a bfloat16 autocast the per-task products and Algorithm 1 stay in float32.
        """
        if self.family.method != "dgrad-o" or optimizer is self.alpha_opt:
            return super().apply_gradients(losses, task, params, optimizer)
        if not task_major(task, self.n_tasks):
            raise ValueError("D-Grad(O) needs task-major batches with every task equally often (TaskReplayBuffer)")
        n = self.n_tasks
        with torch.autocast("cpu", enabled=False):
            blocks = self.task_gradients.per_task_blocks(losses.sum() * (n / losses.shape[0]), params, n)
            order = [[j for j in self.order_rng.permutation(n) if j != i] for i in range(n)]
            gram = torch.zeros(n, n, dtype=blocks[0].dtype)
            for block in blocks:  # per parameter and member: the (T, P) matrix is never assembled
                for member in block:
                    gram.addmm_(member, member.T)
            weights = torch.from_numpy(deconflict_weights(gram.double().numpy(), order)).to(gram.dtype)
            network = "actor" if optimizer is self.actor_opt else "critic"
            self.surgery_metrics |= {f"{network}_{k}": v for k, v in surgery_diagnostics(gram, weights).items()}
            for p, block in zip(params, blocks):
                p.grad = torch.matmul(weights, block).div_(n).view_as(p)
        optimizer.step()
        return (losses.mean()).detach()

    def state_dict(self) -> dict:
        return super().state_dict() | {"order_rng": self.order_rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.order_rng.bit_generator.state = state["order_rng"]
