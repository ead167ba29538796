"""The networks' arithmetic: ``network.precision`` (fp32, the default, or bf16) and
``network.compile`` (eager, the default, or torch.compile).

With ``bf16`` the policy's heavy modules (its feature extractors and LSTMs) run under
``torch.autocast`` in bfloat16: convolutions, matrix products and LSTM layers take bfloat16
inputs and accumulate in float32, everything else stays float32. Their outputs are cast back to
float32, so the heads, the action distribution, the losses, the optimiser and the parameters
(and so the checkpoints) are those of an fp32 run. On CPUs with AVX-512 BF16 (and on GPUs) the
update runs about twice as fast; the results differ from fp32 by bfloat16's rounding (8 bits of
mantissa), so an fp32 run and a bf16 run of one seed are not bit-identical (docs/fidelity.md).

With ``compile`` the feature extractors run through ``torch.compile`` (inductor) in place
(``nn.Module.compile``: same parameters, same state-dict keys, so checkpoints are unchanged). Its
fused kernels round differently from the eager ones, so it is an option too.
"""

from __future__ import annotations

from typing import Any

import torch as th
from torch import nn

from heldout.agents.config import PRECISIONS

HEAVY_MODULES = ("features_extractor", "pi_features_extractor", "vf_features_extractor", "lstm_actor", "lstm_critic")
"""Attributes of a policy that hold its heavy modules (sb3's ActorCriticPolicy, sb3-contrib's recurrent one)."""


class AutocastForward:
    """A module's ``forward`` under bfloat16 autocast, with floating outputs cast back to float32."""

    def __init__(self, module: nn.Module, device_type: str) -> None:
        self.module, self.forward, self.device_type = module, type(module).forward, device_type

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with th.autocast(self.device_type, dtype=th.bfloat16):
            out = self.forward(self.module, *args, **kwargs)
        return as_float32(out)


def as_float32(value: Any) -> Any:
    """``value`` with every bfloat16 tensor in it (also in tuples and lists) cast to float32."""
    if isinstance(value, th.Tensor):
        return value.float() if value.dtype == th.bfloat16 else value
    if isinstance(value, (tuple, list)):
        return type(value)(as_float32(v) for v in value)
    return value


def autocast_module(module: nn.Module, device_type: str) -> nn.Module:
    """Run ``module`` under bfloat16 autocast on ``device_type`` (``"cpu"``, ``"cuda"``) from now on;
    its parameters, state dict and class stay as they are. Applying it twice changes nothing."""
    if not isinstance(module.__dict__.get("forward"), AutocastForward):
        module.forward = AutocastForward(module, device_type)
    return module


def heavy_modules(policy: nn.Module, names: tuple[str, ...] = HEAVY_MODULES) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` for each of ``names`` that ``policy`` holds, a module shared by two names once."""
    found, seen = [], set()
    for name in names:
        module = getattr(policy, name, None)
        if isinstance(module, nn.Module) and id(module) not in seen:
            seen.add(id(module))
            found.append((name, module))
    return found


def set_precision(policy: nn.Module, precision: str, device: th.device | str) -> list[str]:
    """Apply ``precision`` to ``policy``'s heavy modules (:data:`HEAVY_MODULES`); the names of those
    it changed (none for fp32). ValueError for a precision other than :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise ValueError(f"bad value network.precision={precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return []
    device_type = th.device(device).type
    changed = heavy_modules(policy)
    for _, module in changed:
        autocast_module(module, device_type)
    return [name for name, _ in changed]


EXTRACTORS = HEAVY_MODULES[:3]
"""The heavy modules that ``network.compile`` compiles (the LSTMs stay eager: cuDNN / MKL kernels already)."""


def compile_extractors(policy: nn.Module) -> list[str]:
    """Compile ``policy``'s feature extractors in place with ``torch.compile``; the names compiled."""
    changed = heavy_modules(policy, EXTRACTORS)
    for _, module in changed:
        module.compile()
    return [name for name, _ in changed]
