"""ppo_lstm: sb3-contrib's update reproduced, the loss mask on sequences, hidden states in
rollouts, evaluation and checkpoints, the maze direction input."""

import numpy as np
import pytest
import torch as th
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.callbacks import BaseCallback

from heldout import agents, envs, evaluation
from heldout.agents import HeldoutRecurrentPPO, NetworkConfig, PPOConfig
from heldout.agents.lstm_policy import LSTMPolicy, MazeDirectionNet, episode_outputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N_ENVS, N_STEPS, HIDDEN = 4, 32, 16
MAZE = envs.get("maze")
LEVELS = MAZE.level_set("train", num_train_levels=6)
SMALL = dict(features_dim=24, maze_channels=(4,), lstm_hidden_size=HIDDEN)


def ppo_cfg(**kw) -> PPOConfig:
    base = dict(n_steps=N_STEPS, n_minibatches=4, n_epochs=2, gamma=0.9, normalize_reward=False)
    return PPOConfig(**{**base, **kw})


def build(seed=0, ppo=None, separate_lstms=False, cls=None, max_steps=12, **net) -> HeldoutRecurrentPPO:
    """A ppo_lstm on 4 small mazes (12-step time limit: several episodes per rollout)."""
    venv = MAZE.make_vec(N_ENVS, LEVELS, seed=seed, max_steps=max_steps)
    model = agents.make("ppo_lstm", venv, ppo=ppo or ppo_cfg(), network=NetworkConfig(**{**SMALL, **net}),
                        seed=seed, device="cpu")
    if separate_lstms or cls is not None:  # sb3-contrib's default: one LSTM for the policy, one for the value
        kwargs = {**model.policy_kwargs, "shared_lstm": False, "enable_critic_lstm": True}
        model = (cls or HeldoutRecurrentPPO)(
            LSTMPolicy, model.env, policy_kwargs=kwargs, seed=seed, device="cpu",
            **(ppo or ppo_cfg()).sb3_kwargs(N_ENVS),
        )  # fmt: skip
    return model


def params(model) -> list[th.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


def same(a, b) -> bool:
    return len(a) == len(b) and all(th.equal(x, y) for x, y in zip(a, b))


def collect(model) -> None:
    _, callback = model._setup_learn(model.n_steps * model.n_envs, None)
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)


class MaskAtRolloutEnd(BaseCallback):
    def __init__(self, make_mask) -> None:
        super().__init__()
        self.make_mask = make_mask
        self.values: list[np.ndarray] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.values.append(np.asarray(self.locals["values"]).reshape(-1).copy())
        mask = self.make_mask(self.model)
        if mask is not None:
            self.model.set_loss_mask(mask)


# -- sb3-contrib equivalence ----------------------------------------------------------------------
def test_unmasked_and_ones_mask_updates_are_the_same_update():
    steps = 3 * N_STEPS * N_ENVS
    ones = build(seed=3, separate_lstms=True)
    ones.learn(steps, callback=MaskAtRolloutEnd(lambda m: np.ones((m.n_steps, m.n_envs))))
    plain = build(seed=3, separate_lstms=True)
    plain.learn(steps)
    assert same(params(ones), params(plain))
    assert not same(params(plain), params(build(seed=3, separate_lstms=True)))  # it learned
    assert ones.logger.name_to_value["train/masked_fraction"] == 0.0


@pytest.mark.parametrize("separate_lstms", [False, True])
def test_the_row_update_has_sb3_contribs_gradient(separate_lstms, monkeypatch):
    # One minibatch: sb3-contrib's padded sequences and heldout's whole rows hold the same steps,
    # so loss and gradient agree up to the order of float sums. sb3-contrib rolls the buffer by a
    # random offset and starts the piece after it from the stored state, which truncates
    # backpropagation there (rows run whole): an offset of 0 makes the two the same computation.
    monkeypatch.setattr(np.random, "randint", lambda *args, **kwargs: 0)
    model = build(seed=3, ppo=ppo_cfg(n_minibatches=1), separate_lstms=separate_lstms)
    collect(model)
    arrays = snapshot(model.rollout_buffer)

    def gradient(batch) -> tuple[float, list[th.Tensor]]:
        model.policy.optimizer.zero_grad()
        loss = model.compute_loss(batch, 0.2, 0.2).total
        loss.backward()
        return loss.item(), [p.grad.detach().clone() for p in model.policy.parameters()]

    (rows,) = list(model.minibatches())
    ours = gradient(rows)
    restore(model.rollout_buffer, arrays)
    (padded,) = list(model.rollout_buffer.get(N_STEPS * N_ENVS))
    assert padded.observations.shape[0] > rows.observations.shape[0] == N_STEPS * N_ENVS  # theirs is padded
    theirs = gradient(padded)
    assert ours[0] == pytest.approx(theirs[0], rel=1e-5)
    for a, b in zip(ours[1], theirs[1]):
        assert th.allclose(a, b, atol=1e-6, rtol=1e-4)


def test_whole_row_minibatches_match_sb3_contribs_padded_sequences_step_for_step():
    model = build(seed=4, ppo=ppo_cfg(n_minibatches=2))
    collect(model)
    arrays = snapshot(model.rollout_buffer)
    np.random.seed(0)
    rows = [b for b in model.minibatches()]
    assert len(rows) == 2 and all(b.observations.shape[0] == 2 * N_STEPS for b in rows)  # no padding
    ours, theirs = [], []
    with th.no_grad():
        for batch in rows:
            values, log_prob, *_ = model.policy.evaluate_sequences(
                batch.observations, batch.actions.long().flatten(), batch.lstm_states, batch.episode_starts)
            ours += zip(batch.old_log_prob.tolist(), batch.old_values.tolist(), log_prob.tolist(), values.flatten().tolist())
        restore(model.rollout_buffer, arrays)
        for batch in model.rollout_buffer.get(N_STEPS * N_ENVS):  # sb3-contrib: cut at episode starts, padded
            values, log_prob, *_ = model.policy.evaluate_sequences(
                batch.observations, batch.actions.long().flatten(), batch.lstm_states, batch.episode_starts)
            real = batch.mask > 0
            theirs += zip(batch.old_log_prob[real].tolist(), batch.old_values[real].tolist(),
                          log_prob[real].tolist(), values.flatten()[real].tolist())
    # every step once, both ways (sorted by the rollout's own log-probability and value), and both
    # equal what the rollout computed with the same parameters
    assert len(ours) == len(theirs) == N_STEPS * N_ENVS
    for mine, contrib in zip(sorted(ours), sorted(theirs)):
        assert mine == pytest.approx(contrib, abs=1e-5)
        assert mine[2:] == pytest.approx(mine[:2], abs=1e-5)


def test_rows_must_divide_into_minibatches():
    with pytest.raises(ValueError, match="multiple of ppo.n_minibatches"):
        build(ppo=ppo_cfg(n_minibatches=8))  # 16-sample minibatches: half a row


def test_whole_sequence_lstm_calls_equal_the_step_by_step_loop():
    lstm = th.nn.LSTM(5, 7)
    n_seq, length = 3, 6
    features = th.randn(n_seq * length, 5)
    states = (th.randn(1, n_seq, 7), th.randn(1, n_seq, 7))
    starts = th.zeros(n_seq, length)
    starts[1, 0] = 1.0  # sequences start at an episode start or mid-episode, as sb3-contrib cuts them
    fast, (h, c) = LSTMPolicy._process_sequence(features, states, starts.flatten(), lstm)
    loop, (h2, c2) = RecurrentActorCriticPolicy._process_sequence(features, states, starts.flatten(), lstm)
    assert th.allclose(fast, loop, atol=1e-6) and th.allclose(h, h2, atol=1e-6) and th.allclose(c, c2, atol=1e-6)
    starts[2, 3] = 1.0  # a reset inside a sequence: the loop itself
    fast, _ = LSTMPolicy._process_sequence(features, states, starts.flatten(), lstm)
    loop, _ = RecurrentActorCriticPolicy._process_sequence(features, states, starts.flatten(), lstm)
    assert th.equal(fast, loop)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_episode_outputs_equal_the_step_by_step_loop_with_gradients(seed):
    gen = th.Generator().manual_seed(seed)
    lstm = th.nn.LSTM(5, 7)
    n_seq, length = 4, 40
    features = th.randn(n_seq * length, 5, generator=gen, requires_grad=True)
    states = (th.randn(1, n_seq, 7, generator=gen), th.randn(1, n_seq, 7, generator=gen))
    starts = (th.rand(n_seq, length, generator=gen) < 0.15).float()  # pieces of many lengths
    starts[0, 0], starts[1, 0] = 1.0, 0.0  # a row that starts an episode, one that continues one
    ours = episode_outputs(features, states, starts, lstm)
    loop, _ = RecurrentActorCriticPolicy._process_sequence(features, states, starts.flatten(), lstm)
    assert th.allclose(ours, loop, atol=1e-6)
    weights = th.randn(loop.shape, generator=gen)
    g_ours = th.autograd.grad((ours * weights).sum(), [features, *lstm.parameters()], retain_graph=True)
    g_loop = th.autograd.grad((loop * weights).sum(), [features, *lstm.parameters()])
    for a, b in zip(g_ours, g_loop):
        assert th.allclose(a, b, atol=1e-5)
    # an episode start cuts the gradient: a row's steps from a reset on do not depend on earlier steps
    t = int(th.nonzero(starts[2, 1:])[0]) + 1
    after = th.autograd.grad(ours.view(n_seq, length, 7)[2, t:].sum(), features)[0].view(n_seq, length, 5)
    assert th.equal(after[2, :t], th.zeros(t, 5)) and after[2, t:].abs().sum() > 0


# -- the loss mask --------------------------------------------------------------------------------
BUFFER_FIELDS = ("observations", "actions", "values", "log_probs", "advantages", "returns", "episode_starts",
                 "hidden_states_pi", "cell_states_pi", "hidden_states_vf", "cell_states_vf")


def snapshot(buffer) -> dict[str, np.ndarray]:
    return {name: getattr(buffer, name).copy() for name in BUFFER_FIELDS}


def restore(buffer, arrays) -> None:
    """Put the rollout back as collected (an update reshapes the buffer's arrays in place)."""
    for name, arr in arrays.items():
        setattr(buffer, name, arr.copy())
    buffer.generator_ready = False


def minibatch_grads(model, arrays, mask):
    restore(model.rollout_buffer, arrays)
    model.rollout_buffer.set_keep(mask)
    np.random.seed(7)
    batches = list(model.minibatches())
    grads = []
    for batch in batches:
        model.policy.optimizer.zero_grad()
        model.compute_loss(batch, 0.2, 0.2).total.backward()
        grads.append([p.grad.detach().clone() for p in model.policy.parameters()])
    return grads, batches


def test_masked_steps_give_exactly_zero_gradient_and_sequences_stay_whole():
    model = build(ppo=ppo_cfg(n_minibatches=2))
    collect(model)
    buf = model.rollout_buffer
    mask = np.ones((N_STEPS, N_ENVS))
    mask[3:20, 0] = 0  # the middle of slot 0's steps: later steps still see them through the LSTM
    mask[::3, 2] = 0
    clean = snapshot(buf)
    garbage = {k: v.copy() for k, v in clean.items()}
    off = ~mask.astype(bool)
    rng = np.random.default_rng(0)
    garbage["actions"][off] = rng.integers(0, 3, garbage["actions"][off].shape)
    for name in ("values", "log_probs", "advantages", "returns"):
        garbage[name][off] = rng.normal(0, 1000, garbage[name][off].shape)

    with_mask, batches = minibatch_grads(model, clean, mask)
    with_garbage, _ = minibatch_grads(model, garbage, mask)
    assert len(batches) == 2 and all(b is not None for b in batches)
    for a, b in zip(with_mask, with_garbage):
        assert same(a, b)  # bitwise: nothing of a masked step's own loss terms reaches the gradient
    without_mask, unmasked_batches = minibatch_grads(model, clean, None)
    assert not same(with_mask[0], without_mask[0])
    # sequences stay whole: the same padded steps go through the LSTM, only the loss mask differs
    for masked, full in zip(batches, unmasked_batches):
        assert th.equal(masked.observations, full.observations) and th.equal(masked.episode_starts, full.episode_starts)
    assert sum(int((b.mask > 0).sum()) for b in batches) == mask.sum()
    assert sum(int((b.mask > 0).sum()) for b in unmasked_batches) == mask.size


def test_masked_update_ignores_masked_experience_and_a_fully_masked_one_changes_nothing():
    mask = np.ones((N_STEPS, N_ENVS))
    mask[:, 1] = 0
    mask[:10, 3] = 0
    models = [build(seed=5) for _ in range(2)]
    collect(models[0])
    collect(models[1])  # sets up its buffer; the data is replaced by models[0]'s
    rollout = snapshot(models[0].rollout_buffer)
    off = ~mask.astype(bool)
    rng = np.random.default_rng(1)
    for name in ("advantages", "returns", "values", "log_probs"):
        rollout[name][off] = rng.normal(0, 100, off.sum())
    restore(models[1].rollout_buffer, rollout)
    for m in models:
        m.set_loss_mask(mask)
        np.random.seed(11)
        m.train()
    assert same(params(models[0]), params(models[1]))
    assert models[0].logger.name_to_value["train/masked_fraction"] == pytest.approx(42 / 128)
    assert models[0].pending_loss_mask is None and models[0].rollout_buffer.keep is None

    model = build(seed=6)
    collect(model)
    before = params(model)
    model.set_loss_mask(np.zeros((N_STEPS, N_ENVS)))
    model.train()  # Robust PLR's first rollouts: every level is new
    assert same(before, params(model))
    assert all(not model.policy.optimizer.state[p] for p in model.policy.parameters())


# -- hidden states ----------------------------------------------------------------------------------
def maze_obs(direction: int, goal: bool) -> np.ndarray:
    obs = np.zeros((5, 5, 3), np.uint8)
    obs[0, :, 0] = 1
    obs[1, 2, 1] = int(goal)
    obs[4, 2, 2] = 1 + direction
    return obs


def test_hidden_state_resets_at_an_episode_start():
    model = build(seed=1)
    policy = model.policy
    # a hand-made two-episode sequence: steps 0-2 are one episode, steps 3-5 the next
    obs = np.stack([maze_obs(d, g) for d, g in [(0, 1), (1, 0), (1, 1), (2, 0), (3, 1), (3, 0)]])
    starts = np.array([1, 0, 0, 1, 0, 0], dtype=np.float32)

    def step_by_step(observations, episode_starts, state):
        out = []
        for o, s in zip(observations, episode_starts):
            o_t = th.as_tensor(o[None])
            with th.no_grad():
                dist, state = policy.get_distribution(o_t, state, th.tensor([s]))
            out.append(dist.distribution.probs[0])
        return th.stack(out), state

    noise = (th.randn(1, 1, HIDDEN), th.randn(1, 1, HIDDEN))
    both, _ = step_by_step(obs, starts, noise)
    second_alone, _ = step_by_step(obs[3:], starts[3:], (th.zeros(1, 1, HIDDEN), th.zeros(1, 1, HIDDEN)))
    assert th.allclose(both[3:], second_alone, atol=1e-6)  # the second episode remembers nothing of the first
    carried, _ = step_by_step(obs, np.array([1, 0, 0, 0, 0, 0], np.float32), noise)
    assert not th.allclose(carried[3:], second_alone, atol=1e-4)  # without the start flag it would
    # the training path (one sequence, a reset inside) gives the same distributions
    with th.no_grad():
        _, _, _, dist, _ = policy.evaluate_sequences(
            th.as_tensor(obs), th.zeros(6), RNNStates(noise, noise), th.as_tensor(starts)
        )
    assert th.allclose(dist.distribution.probs, both, atol=1e-6)


class Spy:
    """Records what evaluation hands a recurrent model."""

    def __init__(self, model) -> None:
        self.model, self.calls = model, []

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        actions, new_state = self.model.predict(obs, state=state, episode_start=episode_start,
                                                deterministic=deterministic)
        self.calls.append((state, np.array(episode_start), new_state, obs.shape[0]))
        return actions, new_state


def test_evaluation_carries_hidden_states_and_resets_them_at_episode_starts():
    spy = Spy(build(seed=2))
    result = evaluation.run_episodes(spy, MAZE, LEVELS, 5, num_envs=2, seed=0, env_options={"max_steps": 12})
    assert np.isfinite(result.returns).all()
    first_state, first_starts, _, n = spy.calls[0]
    assert first_state is None and first_starts.tolist() == [True] * n
    for (_, _, returned, _), (given, starts, _, _) in zip(spy.calls, spy.calls[1:]):
        assert given is returned  # the state travels from one step to the next
    flags = np.stack([c[1] for c in spy.calls[1:]])
    assert flags.sum() >= 3  # 5 episodes in 2 slots: at least 3 start after another one ended


def test_hidden_states_checkpoint_round_trip():
    model = build(seed=4)
    model.learn(2 * N_STEPS * N_ENVS)
    state = model.agent_state_dict()
    assert set(state) == {"lstm_states"} and all(isinstance(t, th.Tensor) for t in state["lstm_states"]["pi"])
    assert state["lstm_states"]["pi"][0].shape == (1, N_ENVS, HIDDEN)
    assert th.count_nonzero(state["lstm_states"]["pi"][0]) > 0

    other = build(seed=9)
    other.load_agent_state_dict(state)
    for a, b in zip(other._last_lstm_states, model._last_lstm_states):
        assert all(th.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ValueError, match="no LSTM states"):
        other.load_agent_state_dict({})
    with pytest.raises(ValueError, match="shapes"):
        build(seed=9, lstm_hidden_size=8).load_agent_state_dict(state)



def test_callback_sees_the_bootstrap_values_at_rollout_end():
    model = build(seed=4)
    recorder = MaskAtRolloutEnd(lambda m: None)
    _, callback = model._setup_learn(N_STEPS * N_ENVS, recorder)
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, N_STEPS)
    buf, boot = model.rollout_buffer, recorder.values[-1]
    # GAE's last step: advantage = r + gamma * V_bootstrap * (1 - done) - V
    ongoing = 1.0 - model._last_episode_starts.astype(np.float32)
    expected = buf.rewards[-1] + model.gamma * boot * ongoing - buf.values[-1]
    np.testing.assert_allclose(buf.advantages[-1], expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(boot, buf.values[-1])  # not the last step's own values


def test_rollout_action_probabilities_are_the_rollouts_policy():
    model = build(seed=7)
    collect(model)
    probs = model.rollout_action_probabilities(batch_size=48)
    buf = model.rollout_buffer
    assert probs.shape == (N_STEPS, N_ENVS, 3)
    chosen = np.take_along_axis(probs, buf.actions.astype(np.int64), axis=2)[..., 0]
    np.testing.assert_allclose(np.log(chosen), buf.log_probs, atol=1e-5)


# -- the network ------------------------------------------------------------------------------------
def test_maze_direction_input_is_a_one_hot_beside_the_maze_features():
    model = build(seed=0)
    extractor = model.policy.features_extractor
    assert isinstance(extractor, MazeDirectionNet) and extractor.features_dim == 24 + 4
    assert model.policy.lstm_actor.input_size == 28 and model.policy.lstm_actor.hidden_size == HIDDEN
    assert model.policy.shared_lstm and model.policy.lstm_critic is None
    obs = th.as_tensor(np.stack([maze_obs(d, True) for d in range(4)])).float()
    assert th.equal(extractor.direction(obs), th.eye(4))
    assert th.equal(extractor.direction(th.zeros(1, 5, 5, 3)), th.zeros(1, 4))  # no agent in view
    full = MAZE.make_vec(2, LEVELS, seed=0, full_obs=True)
    chw = MazeDirectionNet(full.observation_space, 8, (4,))
    first = th.as_tensor(full.reset()).float()
    directions = [d for _, d, _ in full.agent_states()]
    assert chw.direction(first).argmax(1).tolist() == directions


def test_shared_lstm_is_trained_by_the_value_loss_too():
    model = build(seed=0)
    collect(model)
    np.random.seed(0)
    batch = next(iter(model.minibatches()))
    loss = model.compute_loss(batch, 0.2, None)
    model.policy.optimizer.zero_grad()
    loss.value_loss.backward()
    assert model.policy.lstm_actor.weight_hh_l0.grad.abs().sum() > 0


def test_procgen_gets_the_impala_cnn_under_the_lstm():
    if "procgen/coinrun" not in envs.names():
        pytest.skip("procgen is not registered")
    venv = envs.make_vec("procgen/coinrun", 2, seed=0)
    model = agents.make("ppo_lstm", venv, ppo=PPOConfig(n_steps=8, n_minibatches=2),
                        network=NetworkConfig(network="auto", impala_channels=(4, 8, 8), features_dim=16,
                                              lstm_hidden_size=8), seed=0, device="cpu")
    assert isinstance(model.policy.features_extractor, agents.ImpalaCNN)
    assert model.observation_space.shape == (64, 64, 3)
    model.learn(2 * 8 * 2)
    assert model.num_timesteps == 32
