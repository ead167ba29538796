"""Hyperbolic policy and value heads with S-RYM (Cetin et al. 2023, "Hyperbolic Deep Reinforcement Learning").

``network.geometry: hyperbolic`` replaces the linear policy and value heads of the IMPALA and maze
networks (after the LSTM for ``ppo_lstm``):

* :class:`ToPoincareBall`: the Euclidean features are clipped to norm ``clip_norm``, divided by
  ``sqrt(dim)`` (S-RYM's rescaling) and mapped onto the Poincare ball of curvature ``-c`` by the
  exponential map at the origin, projected strictly inside the ball;
* :class:`PoincareMLR`: hyperbolic multinomial logistic regression (Ganea et al. 2018): one
  logit per hyperplane of the ball, ``n_actions`` planes for the policy's logits, one for the value;
* :func:`spectral_normalise`: S-RYM's other half, spectral normalisation of every convolution
  and linear layer of the feature extractor.

The manifold operations are geoopt's (``pip install 'heldout[hyperbolic]'``); the hyperplanes'
offsets are points of the ball (geoopt ``ManifoldParameter``), so the optimiser is geoopt's
``RiemannianAdam``, as in the published code. docs/fidelity.md, "Hyperbolic head", lists each
published value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from heldout.agents.lstm_policy import LSTMPolicy

LOGIT_SCALE = 0.5
"""The published layer's ``effective_softmax_rescale`` (with ``rescale_normal_params``)."""

NORMAL_INIT_MEAN = 0.01
"""The published 'small' init: normals ~ N(0.01 / sqrt(in_features), 1) (``nn.init.normal_``'s
second positional argument is the mean; docs/fidelity.md)."""


def require_geoopt() -> Any:
    """The geoopt module, or a one-line ``ValueError`` saying how to install it."""
    try:
        import geoopt
    except ImportError:
        raise ValueError(
            "network.geometry hyperbolic needs geoopt, which is not installed: pip install 'heldout[hyperbolic]' "
            "(or set network.geometry euclidean)"
        ) from None
    return geoopt


@dataclass(frozen=True)
class HyperbolicSettings:
    """What the hyperbolic heads read from :class:`~heldout.agents.NetworkConfig`."""

    curvature: float = 1.0
    clip_norm: float = 60.0
    srym: bool = True


class ToPoincareBall(nn.Module):
    """Euclidean vectors (N, dim) -> points of the Poincare ball (N, dim).

    ``x -> expmap0(min(1, clip_norm / |x|) x / s)`` with ``s = sqrt(dim)`` under S-RYM (else 1);
    ``expmap0(u) = tanh(sqrt(c) |u|) u / (sqrt(c) |u|)``, then projected to norm at most
    ``(1 - eps) / sqrt(c)`` (geoopt: eps 4e-3 in float32), so every output is inside the ball.
    """

    def __init__(self, ball: nn.Module, dim: int, clip_norm: float, rescale: bool) -> None:
        super().__init__()
        self.ball = ball
        self.clip_norm = float(clip_norm)
        self.scale = 1.0 / math.sqrt(dim) if rescale else 1.0

    def forward(self, x: th.Tensor) -> th.Tensor:
        # |x| as m * |x / m|, m = max |x_i|: squaring first would overflow float32 from |x_i| ~ 1e19
        # (|x| = inf would send the point to the origin instead of the boundary).
        peak = x.detach().abs().amax(dim=-1, keepdim=True).clamp_min(1e-30)
        norm = (peak * (x / peak).norm(dim=-1, keepdim=True)).clamp_min(1e-15)
        x = x * th.clamp(self.clip_norm / norm, max=1.0)
        return self.ball.expmap0(x * self.scale, project=True)


class PoincareMLR(nn.Module):
    """Hyperbolic multinomial logistic regression on the Poincare ball: (N, dim) -> (N, planes).

    Plane ``k`` has an offset ``p_k`` (a point of the ball) and a normal ``n_k``. With
    ``z = (-p_k) (+)_c x`` (Mobius addition) its logit is the published layer's
    ``0.5 * lambda_p * d_c(x, H_k) * |a_k|``, ``a_k = n_k (1 - c |p_k|^2)``, ``lambda_p = 2 / (1 - c |p_k|^2)``:

        |n_k| / sqrt(c) * asinh(2 sqrt(c) <z, n_k> / ((1 - c |z|^2) |n_k|))

    geoopt's ``dist2plane`` computes the signed distance ``d_c``; offsets start at the origin.
    """

    def __init__(self, ball: nn.Module, in_features: int, planes: int) -> None:
        super().__init__()
        geoopt = require_geoopt()
        self.ball = ball
        self.in_features, self.planes = int(in_features), int(planes)
        self.normals = nn.Parameter(th.empty(planes, in_features))
        self.offsets = geoopt.ManifoldParameter(th.zeros(planes, in_features), manifold=ball)
        with th.no_grad():
            self.normals.normal_(mean=NORMAL_INIT_MEAN / math.sqrt(in_features), std=1.0)

    def forward(self, x: th.Tensor) -> th.Tensor:
        c = self.ball.c
        conformal = 1.0 - c * self.offsets.pow(2).sum(dim=-1)  # 2 / lambda_p, one per plane
        a = self.normals * conformal.unsqueeze(-1)
        distance = self.ball.dist2plane(x.unsqueeze(-2), p=self.offsets, a=a, signed=True, scaled=True, dim=-1)
        return LOGIT_SCALE * distance * 2.0 / conformal

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, planes={self.planes}"


def spectral_normalise(module: nn.Module) -> int:
    """Spectral normalisation (torch's parametrization, one power iteration per training forward)
    on the weight of every ``Conv2d`` and ``Linear`` in ``module``; returns how many it wrapped."""
    layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for layer in layers:
        spectral_norm(layer)
    return len(layers)


def heads_settings(curvature: float, clip_norm: float, srym: bool) -> dict[str, Any]:
    """The ``policy_kwargs`` entries of a hyperbolic policy: its settings and geoopt's RiemannianAdam."""
    geoopt = require_geoopt()
    return {
        "hyperbolic": HyperbolicSettings(float(curvature), float(clip_norm), bool(srym)),
        "optimizer_class": geoopt.optim.RiemannianAdam,
    }


class HyperbolicHeads:
    """A mixin before an sb3 actor-critic policy: hyperbolic MLR heads instead of linear ones.

    sb3's ``_build`` runs as usual (extractor, latent nets, its initialisation); then the action
    and value nets become ``ToPoincareBall -> PoincareMLR`` (one ball map shared by both), S-RYM
    spectrally normalises the feature extractor, and the optimiser is made again over the new
    parameters.
    """

    hyperbolic: HyperbolicSettings

    def __init__(self, *args: Any, hyperbolic: HyperbolicSettings, **kwargs: Any) -> None:
        self.hyperbolic = hyperbolic  # read by _build, which the policy's __init__ calls
        super().__init__(*args, **kwargs)
        # (on the final optimiser: sb3-contrib's recurrent policy makes its own after _build)
        self.optimizer.register_load_state_dict_post_hook(integer_steps)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)  # type: ignore[misc]
        if not isinstance(self.action_space, spaces.Discrete):
            raise ValueError(
                f"network.geometry hyperbolic gives discrete actions' logits; this env's actions are {self.action_space}"
            )
        geoopt = require_geoopt()
        settings = self.hyperbolic
        ball = geoopt.PoincareBall(c=settings.curvature)
        dim_pi, dim_vf = self.mlp_extractor.latent_dim_pi, self.mlp_extractor.latent_dim_vf
        self.action_net = nn.Sequential(
            ToPoincareBall(ball, dim_pi, settings.clip_norm, settings.srym),
            PoincareMLR(ball, dim_pi, int(self.action_space.n)),
        )
        self.value_net = nn.Sequential(
            ToPoincareBall(ball, dim_vf, settings.clip_norm, settings.srym), PoincareMLR(ball, dim_vf, 1)
        )
        if settings.srym:
            spectral_normalise(self.features_extractor)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)


def integer_steps(optimizer: th.optim.Optimizer) -> None:
    """Give each parameter's ``step`` back the Python int that geoopt's RiemannianAdam counts in.

    torch's ``Optimizer.load_state_dict`` turns every ``step`` into a float32 tensor; RiemannianAdam's
    bias corrections ``1 - beta ** step`` would then be float32 instead of float64, so a resumed run
    would drift from the run it continues (tests/test_hyperbolic.py checks it resumes bit-identically).
    """
    for state in optimizer.state.values():
        if isinstance(state.get("step"), th.Tensor):
            state["step"] = int(state["step"].item())


class HyperbolicActorCriticPolicy(HyperbolicHeads, ActorCriticPolicy):
    """sb3's ``ActorCriticPolicy`` with hyperbolic heads (``ppo``, ``rad``, ``drac``, ``ucb_drac``)."""


class HyperbolicLSTMPolicy(HyperbolicHeads, LSTMPolicy):
    """:class:`~heldout.agents.lstm_policy.LSTMPolicy` with hyperbolic heads on the LSTM's output
    (``ppo_lstm``): the LSTM's tanh output is bounded, so S-RYM normalises only the extractor."""
