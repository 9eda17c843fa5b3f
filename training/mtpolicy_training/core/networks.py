"""Actor and critic networks, built from ensemble layers so that n critics run as one.

An ``EnsembleMLP`` holds E independent MLPs as stacked weights and evaluates
them with one batched matmul per layer: input (E, B, in) -> (E, B, out). A
single network is the E = 1 case, so DiGrad's multi critic (one network per
task) costs about one network's Python overhead.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from mtpolicy_training.core.distributions import (LOG_STD_MAX, LOG_STD_MIN, gaussian_entropy, gaussian_log_prob,
                                                  squashed_gaussian)
from mtpolicy_training.core.holding import INIT_WEIGHT_SCALE, ErrorGain


class CReLU(nn.Module):
    """Concatenated ReLU, [relu(x), relu(-x)] (the DiGrad paper's hidden activation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.relu(x), torch.relu(-x)], dim=-1)


ACTIVATIONS = {"crelu": (CReLU, 2), "relu": (nn.ReLU, 1), "tanh": (nn.Tanh, 1)}
"""name -> (module, output width multiplier)."""

NUMPY_ACTIVATIONS: dict[type[nn.Module], Callable[[np.ndarray], np.ndarray]] = {
    CReLU: lambda x: np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)], axis=-1),
    nn.ReLU: lambda x: np.maximum(x, 0), nn.Tanh: np.tanh}
"""The same activations on numpy arrays (``EnsembleMLP.numpy_forward``)."""


class EnsembleLinear(nn.Module):
    """E independent affine maps: (E, B, in) -> (E, B, out), PyTorch's default init per member.

    A single member (E = 1) also takes a plain (B, in) batch: one addmm, which
    ONNX exports as one Gemm (the deployed actors use this path).

    An ``output`` layer computes in float32 even under a bfloat16 autocast
    (``LoopConfig.matmul_precision``): Q-values, means and log-stds keep full
    precision while the hidden products run in bfloat16.
    """

    def __init__(self, members: int, in_features: int, out_features: int, output: bool = False):
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features).uniform_(-bound, bound))
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.output and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return self.forward(x.float())
        if x.dim() == 2:
            return torch.addmm(self.bias[0], x, self.weight[0])
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Sequential):
    """E MLPs with hidden sizes ``hidden`` and the given activation, evaluated together."""

    def __init__(self, members: int, in_features: int, hidden: tuple[int, ...], out_features: int,
                 activation: str = "crelu"):
        act, widen = ACTIVATIONS[activation]
        layers, width = [], in_features
        for h in hidden:
            layers += [EnsembleLinear(members, width, h), act()]
            width = h * widen
        layers.append(EnsembleLinear(members, width, out_features, output=True))
        super().__init__(*layers)

    def numpy_forward(self) -> Callable[[np.ndarray], np.ndarray]:
        """This MLP as a numpy function (B, in) or (E, B, in) -> (E, B, out) on float32 arrays.

        It reads the parameters' memory (no copy), so in-place optimizer steps
        and ``load_state_dict`` show through. For per-step inference on a few
        observations, where torch's per-op overhead costs more than the math;
        equal to ``forward`` up to float rounding (tests/training/test_ppo.py).
        """
        steps = [(m.weight.detach().numpy(), m.bias.detach().numpy()) if isinstance(m, EnsembleLinear)
                 else NUMPY_ACTIVATIONS[type(m)] for m in self]

        def forward(x: np.ndarray) -> np.ndarray:
            for step in steps:
                x = np.matmul(x, step[0]) + step[1] if isinstance(step, tuple) else step(x)
            return x
        return forward


def flatten_parameters(params: list[nn.Parameter]) -> nn.Parameter:
    """One contiguous parameter holding ``params``, each of which becomes a view of it.

    The flat parameter's ``.grad`` is preallocated: fill it with
    ``torch.cat([g.reshape(-1) for g in grads], out=flat.grad)``. An optimizer
    over the flat parameter then steps every one of them in one kernel, and the
    global gradient norm is one reduction: for small networks, where per-tensor
    overhead costs more than the arithmetic.
    """
    flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        p.data = flat.data[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
    return flat


class Normalizer(nn.Module):
    """Fixed affine observation normalization (x - mean) / std, stored as buffers (exported)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: torch.Tensor | np.ndarray, std: torch.Tensor | np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def output_layer(net: nn.Module) -> EnsembleLinear:
    """The last ``EnsembleLinear`` of a network: its output layer."""
    return [m for m in net.modules() if isinstance(m, EnsembleLinear)][-1]


def initialize_gain(net: nn.Module, holding: ErrorGain | None, gain_init: float | None) -> None:
    """With ``holding`` and ``gain_init``: start the gain outputs of ``net`` near ``gain_init [0 | I | 0]``
    (``ErrorGain.initialize``)."""
    if holding is not None and gain_init is not None:
        layer = output_layer(net)
        holding.initialize(layer.weight, layer.bias, gain_init)


class DeterministicActor(nn.Module):
    """mu(s) = tanh(f(s)) in [-1, 1]: f the MLP of the normalized observation, or with ``holding`` the error-gain
    form f = M_theta(s) z(s) (``core/holding.py``), exactly zero at the goal."""

    def __init__(self, normalizer: Normalizer, obs_size: int, action_size: int, hidden: tuple[int, ...],
                 activation: str, holding: ErrorGain | None = None, gain_init: float | None = None):
        super().__init__()
        self.normalizer, self.holding = normalizer, holding
        self.net = EnsembleMLP(1, obs_size, hidden, action_size if holding is None else holding.outputs, activation)
        initialize_gain(self.net, holding, gain_init)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.net(self.normalizer(obs))
        return torch.tanh(out if self.holding is None else self.holding(out, obs))


class MultiTaskCritic(nn.Module):
    """Q_i(s, a_i) for n tasks, as one network with n heads or n networks with one head.

    ``action_masks`` (E, action_size) zero the actions a network does not see:
    the chain mask per task for one network per task (E = n, so Q_i depends on
    a_i only), all ones for the single shared network (E = 1, which sees the
    compound action a and has one head per task). ``twins`` = 2 keeps two
    independent copies of the whole critic (clipped double Q).
    """

    action_masks: torch.Tensor

    def __init__(self, normalizer: Normalizer, obs_size: int, action_masks: torch.Tensor, n_tasks: int,
                 hidden: tuple[int, ...], activation: str, twins: int = 1):
        super().__init__()
        self.normalizer = normalizer
        nets = action_masks.shape[0]
        if nets not in (1, n_tasks):
            raise ValueError(f"{nets} critic networks for {n_tasks} tasks")
        self.register_buffer("action_masks", action_masks.float().unsqueeze(1))  # (E, 1, A)
        self.n_tasks, self.twins, self.nets = n_tasks, twins, nets
        self.net = EnsembleMLP(twins * nets, obs_size + action_masks.shape[1], hidden,
                               n_tasks if nets == 1 else 1, activation)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(twins, B, n_tasks) values. ``action`` is (B, A), or (n_tasks, B, A): one copy per task.

        With per-task copies Q_i is read from copy i: this is how the actor's
        gradient is routed per task (Eq. 9-12).
        """
        s = self.normalizer(obs)
        batch = s.shape[0]
        copies = 1 if action.dim() == 2 else action.shape[0]
        if self.nets == 1:
            a = action.reshape(copies * batch, -1)
            x = torch.cat([s.repeat(copies, 1), a], dim=-1).expand(self.twins, -1, -1)
            q = self.net(x).reshape(self.twins, copies, batch, self.n_tasks)
            return q[:, 0] if copies == 1 else torch.diagonal(q, dim1=1, dim2=3)
        a = action.expand(self.n_tasks, batch, action.shape[-1]) * self.action_masks
        x = torch.cat([s.expand(self.n_tasks, -1, -1), a], dim=-1)
        q = self.net(x.repeat(self.twins, 1, 1)).reshape(self.twins, self.n_tasks, batch)
        return q.transpose(1, 2)


class SquashedGaussianActor(nn.Module):
    """SAC policy: normalized observation -> mean and clamped log-std of a Gaussian, squashed by tanh.

    One network outputs the mean (A) and the log-std (A); with ``holding`` its
    mean outputs are the gains M_theta(s) and the mean is M_theta(s) z(s)
    (``core/holding.py``), so the deployed tanh(mean) is exactly zero at the goal.
    """

    def __init__(self, normalizer: Normalizer, obs_size: int, action_size: int, hidden: tuple[int, ...],
                 activation: str, holding: ErrorGain | None = None, gain_init: float | None = None,
                 log_std_init: float | None = None):
        super().__init__()
        self.normalizer, self.holding = normalizer, holding
        self.action_size = action_size
        self.net: nn.Module = EnsembleMLP(1, obs_size, hidden, self.mean_outputs + action_size, activation)
        initialize_gain(self.net, holding, gain_init)
        self.start_log_std(log_std_init)

    @property
    def mean_outputs(self) -> int:
        """Network outputs of the mean: A, or the entries of M with ``holding``."""
        return self.action_size if self.holding is None else self.holding.outputs

    @torch.no_grad()
    def start_log_std(self, value: float | None) -> None:
        """With ``value``: the log-std outputs start near it (their bias; their weights scaled by
        ``INIT_WEIGHT_SCALE``), so that the first exploration is as wide as asked, not PyTorch's std ~1."""
        if value is not None:
            layer = output_layer(self.net)
            layer.weight[..., self.mean_outputs:] *= INIT_WEIGHT_SCALE
            layer.bias[..., self.mean_outputs:] = value

    def distribution(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_std) of the pre-squash Gaussian, each (B, A)."""
        return self.head(self.net(self.normalizer(obs)), obs)

    def head(self, out: torch.Tensor, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, clamped log_std) from the network's outputs (B, mean_outputs + A) and the raw observations."""
        mean, log_std = out.split((self.mean_outputs, self.action_size), dim=-1)
        if self.holding is not None:
            mean = self.holding(mean, obs)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized action and its log-probability for standard-normal ``noise`` (B, A)."""
        return squashed_gaussian(*self.distribution(obs), noise)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic action tanh(mean): what is evaluated and exported."""
        return torch.tanh(self.distribution(obs)[0])


class TwinCritic(nn.Module):
    """``members`` independent Q(s, a) networks (clipped double Q: 2) as one fused ensemble."""

    def __init__(self, normalizer: Normalizer, obs_size: int, action_size: int, hidden: tuple[int, ...],
                 activation: str, members: int = 2, outputs: int = 1):
        super().__init__()
        self.normalizer = normalizer
        self.members = members
        self.net = EnsembleMLP(members, obs_size + action_size, hidden, outputs, activation)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(members, B, outputs) values."""
        x = torch.cat([self.normalizer(obs), action], dim=-1)
        return self.net(x.expand(self.members, -1, -1))


class RunningNormalizer(Normalizer):
    """Observation normalization by running mean and variance over everything seen (parallel Welford merge)."""

    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, size: int, eps: float = 1e-8):
        super().__init__(torch.zeros(size), torch.ones(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.tensor(eps, dtype=torch.float64))
        self.eps = eps

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge the statistics of a batch ``x`` (n, size) into the running ones."""
        n = x.shape[0]
        mean, var = x.mean(0), x.var(0, unbiased=False)
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * float(n / total)
        self.var.copy_((self.var * float(self.count) + var * n + delta.square() * float(self.count * n / total))
                       / float(total))
        self.count.fill_(float(total))
        self.std.copy_((self.var + self.eps).sqrt())


class GaussianPolicy(nn.Module):
    """Policy with a Gaussian of state-independent log-std, and a separate value network (PPO, A2C).

    Policy and value are two ``hidden`` MLPs fused as one 2-member ensemble
    (the value uses the first output of its member). Orthogonal init with
    gains sqrt(2) (hidden), 0.01 (policy mean) and 1 (value), as in the PPO
    reference code. With ``holding`` the policy member outputs the gains
    M_theta(s) and the mean is M_theta(s) z(s) (``core/holding.py``): exactly
    zero at the goal.
    """

    def __init__(self, normalizer: Normalizer, obs_size: int, action_size: int, hidden: tuple[int, ...],
                 activation: str = "tanh", log_std_init: float = 0.0, holding: ErrorGain | None = None,
                 gain_init: float | None = None):
        super().__init__()
        self.normalizer, self.holding = normalizer, holding
        self.net = EnsembleMLP(2, obs_size, hidden, action_size if holding is None else holding.outputs, activation)
        self.log_std = nn.Parameter(torch.full((action_size,), log_std_init))
        linears = [m for m in self.net if isinstance(m, EnsembleLinear)]
        with torch.no_grad():
            for layer in linears:
                gains = (0.01, 1.0) if layer is linears[-1] else (math.sqrt(2), math.sqrt(2))
                for member, gain in enumerate(gains):
                    nn.init.orthogonal_(layer.weight[member].T, gain)
                layer.bias.zero_()
            linears[-1].weight[1, :, 1:] = 0.0  # unused value outputs
            if holding is not None and gain_init is not None:  # the policy member only
                holding.initialize(linears[-1].weight[:1], linears[-1].bias[:1], gain_init)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean (B, A), value (B,))."""
        out = self.net(self.normalizer(obs).unsqueeze(0).expand(2, -1, -1))
        return out[0] if self.holding is None else self.holding(out[0], obs), out[1, :, 0]

    def numpy_forward(self) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """``forward`` as a numpy function of float32 observations (B, obs), for rollouts (see EnsembleMLP)."""
        mean, std, net = self.normalizer.mean.numpy(), self.normalizer.std.numpy(), self.net.numpy_forward()
        holding = self.holding

        def forward(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            out = net((obs - mean) / std)
            return out[0] if holding is None else holding.numpy_forward(out[0], obs), out[1, :, 0]
        return forward

    def log_prob(self, mean: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(B,) log N(action; mean, exp(log_std)^2), summed over action dimensions."""
        return gaussian_log_prob(mean, self.log_std, action)

    def entropy(self) -> torch.Tensor:
        """Entropy of the (state-independent) Gaussian, a scalar."""
        return gaussian_entropy(self.log_std)
