"""network.precision bf16: bfloat16 autocast of the heavy modules, float32 everywhere else."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from heldout import agents, envs
from heldout.agents import NetworkConfig, PPOConfig
from heldout.agents.precision import autocast_module, set_precision

from tests.test_train import MAZE_ONE_SET, whole_and_resumed


def linear(weight: float) -> nn.Linear:
    layer = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(weight)
    return layer


def test_autocast_rounds_inputs_to_bfloat16_and_returns_float32():
    # bfloat16 keeps 8 significant bits: 1 + 2^-10 rounds to 1, 1 + 2^-7 is exact.
    x = torch.tensor([[1 + 2**-10], [1 + 2**-7], [3.0]])
    assert linear(1.0)(x).flatten().tolist() == [1 + 2**-10, 1 + 2**-7, 3.0]
    layer = autocast_module(autocast_module(linear(1.0), "cpu"), "cpu")  # twice: still one autocast
    out = layer(x)
    assert out.dtype == torch.float32
    assert out.flatten().tolist() == [1.0, 1 + 2**-7, 3.0]
    assert layer.weight.dtype == torch.float32 and list(layer.state_dict()) == ["weight"]


def maze_agent(agent: str, precision: str):
    venv = envs.make_vec("maze", 2, "train", seed=0)
    return agents.make(agent, venv, ppo=PPOConfig(n_steps=16, n_minibatches=2, n_epochs=1),
                       network=NetworkConfig(precision=precision, lstm_hidden_size=16), seed=0, device="cpu")  # fmt: skip


def test_bf16_changes_the_extractor_arithmetic_only():
    fp32, bf16 = maze_agent("ppo", "fp32"), maze_agent("ppo", "bf16")
    a, b = fp32.policy.state_dict(), bf16.policy.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # same weights, same checkpoint keys
    obs = torch.as_tensor(fp32.env.reset(), dtype=torch.float32)
    fa, fb = fp32.policy.extract_features(obs), bf16.policy.extract_features(obs)
    assert fb.dtype == torch.float32 and not torch.equal(fa, fb)
    assert torch.allclose(fa, fb, rtol=0.05, atol=0.02)  # bfloat16 rounding, not another network
    actions = torch.zeros(len(obs), dtype=torch.long)
    values, log_prob, _ = bf16.policy.evaluate_actions(obs, actions)
    assert values.dtype == log_prob.dtype == torch.float32
    assert set_precision(fp32.policy, "fp32", "cpu") == []
    with pytest.raises(ValueError, match="network.precision"):
        NetworkConfig(precision="fp16")


def test_bf16_lstm_carries_float32_states():
    model = maze_agent("ppo_lstm", "bf16")
    out, (h, c) = model.policy.lstm_actor(torch.ones(3, 2, model.policy.lstm_actor.input_size))
    assert out.dtype == h.dtype == c.dtype == torch.float32
    model.learn(32)  # one rollout and update end to end


def test_bf16_run_continued_from_its_checkpoint_equals_the_whole_run(tmp_path):
    common = [*MAZE_ONE_SET, "--network.precision", "bf16", "--checkpoint_interval", "1", "--eval.interval", "0"]
    whole_and_resumed(tmp_path, common, 1536, 1024)


def test_compile_compiles_the_extractor_in_place_and_keeps_the_checkpoint_keys(monkeypatch):
    compiled = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, *a, **k: compiled.append(self))  # inductor takes ~1 min
    eager = maze_agent("ppo", "fp32")
    venv = envs.make_vec("maze", 2, "train", seed=0)
    model = agents.make("ppo", venv, ppo=PPOConfig(n_steps=16), network=NetworkConfig(compile=True), seed=0, device="cpu")
    assert compiled == [model.policy.features_extractor]  # shared by pi and vf: compiled once
    assert list(model.policy.state_dict()) == list(eager.policy.state_dict())
    assert compiled[0] is not eager.policy.features_extractor and not NetworkConfig().compile
    with pytest.raises(ValueError, match="network.compile"):
        NetworkConfig(compile="yes")
