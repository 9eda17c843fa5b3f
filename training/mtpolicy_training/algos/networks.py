"""Actor and critic networks, built from ensemble layers so that n critics run as one.

An ``EnsembleMLP`` holds E independent MLPs as stacked weights and evaluates
them with one batched matmul per layer: input (E, B, in) -> (E, B, out). A
single network is the E = 1 case, so DiGrad's multi critic (one network per
task) costs about one network's Python overhead.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class CReLU(nn.Module):
    """Concatenated ReLU, [relu(x), relu(-x)] (the DiGrad paper's hidden activation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.relu(x), torch.relu(-x)], dim=-1)


ACTIVATIONS = {"crelu": (CReLU, 2), "relu": (nn.ReLU, 1), "tanh": (nn.Tanh, 1)}
"""name -> (module, output width multiplier)."""


class EnsembleLinear(nn.Module):
    """E independent affine maps: (E, B, in) -> (E, B, out), PyTorch's default init per member."""

    def __init__(self, members: int, in_features: int, out_features: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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
        layers.append(EnsembleLinear(members, width, out_features))
        super().__init__(*layers)


class Normalizer(nn.Module):
    """Fixed affine observation normalization (x - mean) / std, stored as buffers (exported)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class DeterministicActor(nn.Module):
    """mu(s): normalized observation -> tanh-squashed action in [-1, 1]."""

    def __init__(self, normalizer: Normalizer, obs_size: int, action_size: int, hidden: tuple[int, ...],
                 activation: str):
        super().__init__()
        self.normalizer = normalizer
        self.net = EnsembleMLP(1, obs_size, hidden, action_size, activation)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(self.normalizer(obs).unsqueeze(0)).squeeze(0))


class MultiTaskCritic(nn.Module):
    """Q_i(s, a_i) for n tasks, as one network with n heads or n networks with one head.

    ``action_masks`` (E, action_size) zero the actions a network does not see:
    the chain mask per task for one network per task (E = n, so Q_i depends on
    a_i only), all ones for the single shared network (E = 1, which sees the
    compound action a and has one head per task). ``twins`` = 2 keeps two
    independent copies of the whole critic (clipped double Q).
    """

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
