"""RAD, DrAC and UCB-DrAC: the regulariser by hand, where its gradient flows, equivalences with
PPO, the UCB bandit on a hand-computed reward sequence, agent state, and bad settings."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from heldout import agents, envs
from heldout.agents import AugmentConfig, DrACConfig, NetworkConfig, PPOConfig, UCBConfig
from heldout.agents import augmentations as A
from heldout.agents.drac import policy_kl
from heldout.agents.ucb import UCBBandit

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N_ENVS, N_STEPS = 2, 16
TINY = NetworkConfig(network="impala", impala_channels=(4, 8, 8), features_dim=16)


class StripeEnv(gym.Env):
    """12x12 RGB noise with a bright row or column; reward 1 for saying which; 3-5 steps."""

    observation_space = gym.spaces.Box(0, 255, (12, 12, 3), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.length = 0, int(self.np_random.integers(3, 6))
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        self.kind = int(self.np_random.integers(2))
        frame = self.np_random.integers(0, 60, self.observation_space.shape, dtype=np.uint8)
        at = int(self.np_random.integers(12))
        if self.kind:
            frame[:, at] = 250
        else:
            frame[at] = 250
        return frame

    def step(self, action):
        self.t += 1
        reward = float(int(action) == self.kind)
        return self._obs(), reward, False, self.t >= self.length, {}


def make(name="ppo", seed=0, **settings):
    ppo = PPOConfig(n_steps=N_STEPS, n_minibatches=4, n_epochs=2, normalize_reward=False)
    venv = DummyVecEnv([lambda: Monitor(StripeEnv())] * N_ENVS)  # Monitor: episode returns in infos
    return agents.make(name, venv, ppo=ppo, network=TINY, seed=seed, device="cpu", **settings)


def params(model) -> list[th.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


def collect(model) -> None:
    _, callback = model._setup_learn(model.n_steps * model.n_envs, None)
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)


def first_batch(model):
    """A minibatch of a fresh rollout, with a policy head far from sb3's near-uniform init (so KL > 0)."""
    with th.no_grad():
        weight = model.policy.action_net.weight
        weight.copy_(th.randn(weight.shape, generator=th.Generator().manual_seed(0)))
    collect(model)
    return next(iter(model.minibatches()))


def grads(model) -> list[th.Tensor]:
    out = [th.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.policy.parameters()]
    model.policy.zero_grad(set_to_none=True)
    return out


# -- equivalences -----------------------------------------------------------------------------------
def test_identity_rad_and_zero_alpha_drac_learn_exactly_as_ppo():
    identity = AugmentConfig("crop", {"crop": {"pad": 0}})
    settings = {
        "ppo": {},
        "rad": {"augment": identity},
        "drac": {"augment": AugmentConfig("crop"), "drac": DrACConfig(alpha=0.0)},
        "rad_crop": {"augment": AugmentConfig("crop")},
    }
    runs = {}
    for name, kw in settings.items():  # each built (which seeds the global RNGs) and trained in turn
        runs[name] = make(name.split("_")[0], **kw)
        runs[name].learn(2 * N_STEPS * N_ENVS)
    reference = params(runs["ppo"])
    for name in ("rad", "drac"):  # the augmentation stream never touches the RNG that acting uses
        assert all(th.equal(a, b) for a, b in zip(reference, params(runs[name]))), name
    assert not all(th.equal(a, b) for a, b in zip(reference, params(runs["rad_crop"])))


def test_rad_augments_only_the_loss_observations():
    model = make("rad", augment=AugmentConfig("crop"))
    batch = first_batch(model)
    seen = model.loss_observations(batch)
    assert seen.shape == batch.observations.shape and seen.dtype == batch.observations.dtype
    assert not th.equal(seen, batch.observations)
    assert not th.equal(model.loss_observations(batch), seen)  # a fresh draw per minibatch


# -- the DrAC regulariser ---------------------------------------------------------------------------
def test_drac_regulariser_is_zero_for_the_identity_augmentation():
    model = make("drac", augment=AugmentConfig("crop", {"crop": {"pad": 0}}),
                 drac=DrACConfig(alpha=1.0, policy_term="kl"))  # fmt: skip
    batch = first_batch(model)
    loss = model.compute_loss(batch, 0.2, 0.2)
    assert set(loss.extra) == {"drac_policy", "drac_value"}
    assert abs(loss.extra["drac_policy"]) < 1e-7 and abs(loss.extra["drac_value"]) < 1e-10


@pytest.mark.parametrize("fraction, policy_term", [(1.0, "sample"), (0.5, "sample"), (1.0, "kl")])
def test_drac_loss_is_the_ppo_loss_plus_alpha_times_the_regulariser(fraction, policy_term):
    drac = DrACConfig(alpha=0.5, fraction=fraction, policy_term=policy_term)
    model = make("drac", augment=AugmentConfig("crop"), drac=drac)
    batch = first_batch(model)
    state = model.augment_generator.get_state()
    loss = model.compute_loss(batch, 0.2, 0.2)
    ppo_part = loss.policy_loss + model.ent_coef * loss.entropy_loss + model.vf_coef * loss.value_loss
    assert loss.total.item() == pytest.approx(ppo_part.item() + loss.extra["drac_policy"] + loss.extra["drac_value"])
    # by hand (auto-drac drac.py 86-103): the same augmented draw; policy term -mean log q(a') with a' ~ p
    # (one uniform per sample, inverse CDF), or KL(p || q); value term 0.5 * mean (V(aug x) - V(x))^2
    model.augment_generator.set_state(state)
    count = int(len(batch.observations) * fraction)  # the regulariser's share of the minibatch: its first samples
    with th.no_grad():
        actions = batch.actions[:count].long().flatten()
        v_raw, _, _, d_raw, _ = model.evaluate(batch.observations[:count], actions)
        v_aug, _, _, d_aug, _ = model.evaluate(model.augment(batch.observations[:count]), actions)
        assert d_raw is not d_aug  # each forward pass keeps its own distribution
        p, q = d_raw.distribution.probs, d_aug.distribution.probs
        if policy_term == "kl":
            g_pi = (p * (p.log() - q.log())).sum(1).mean().item()
        else:
            u = th.rand(count, generator=model.augment_generator)
            drawn = th.searchsorted(p.cumsum(1), u[:, None]).flatten().clamp(max=1)
            g_pi = -q[th.arange(count), drawn].log().mean().item()
        gap = (v_aug - v_raw).pow(2).mean().item()
    assert loss.extra["drac_policy"] == pytest.approx(0.5 * g_pi, rel=1e-4)
    assert loss.extra["drac_value"] == pytest.approx(0.5 * 0.5 * gap, rel=1e-4)  # alpha * 0.5 * mean gap^2
    assert g_pi > 0 and gap > 0


def test_drac_value_coefficient_one_is_the_earlier_form():
    model = make("drac", augment=AugmentConfig("crop"), drac=DrACConfig(alpha=1.0, value_coef=1.0))
    batch = first_batch(model)
    state = model.augment_generator.get_state()
    full = model.compute_loss(batch, 0.2, 0.2).extra["drac_value"]
    model.augment_generator.set_state(state)
    model.drac_config = DrACConfig(alpha=1.0)  # the published 0.5
    assert model.compute_loss(batch, 0.2, 0.2).extra["drac_value"] == pytest.approx(0.5 * full, rel=1e-6)


def test_drac_gradient_reaches_parameters_only_through_the_augmented_branch():
    model = make("drac", augment=AugmentConfig("crop"), drac=DrACConfig(alpha=1.0, policy_term="kl"))
    batch = first_batch(model)
    actions = batch.actions.long().flatten()
    loss = model.compute_loss(batch, 0.2, 0.2)
    model.policy.zero_grad(set_to_none=True)
    state = model.augment_generator.get_state()
    sum(model.extra_loss(batch, loss).values()).backward(retain_graph=True)
    through_hook = grads(model)

    def regulariser(raw_grad: bool) -> list[th.Tensor]:
        model.augment_generator.set_state(state)
        with th.set_grad_enabled(raw_grad):
            v_raw, _, _, d_raw, _ = model.evaluate(batch.observations, actions)
        v_aug, _, _, d_aug, _ = model.evaluate(model.augment(batch.observations), actions)
        p, log_p, log_q = d_raw.distribution.probs, d_raw.distribution.logits, d_aug.distribution.logits
        ((p * (log_p - log_q)).sum(1).mean() + 0.5 * (v_aug - v_raw).pow(2).mean()).backward()
        return grads(model)

    augmented_only, both = regulariser(False), regulariser(True)
    assert all(th.allclose(a, b, atol=1e-7) for a, b in zip(through_hook, augmented_only))
    assert not all(th.allclose(a, b, atol=1e-7) for a, b in zip(through_hook, both))
    assert any(float(g.abs().sum()) > 0 for g in through_hook)


def test_policy_kl_of_diagonal_normals():
    from stable_baselines3.common.distributions import DiagGaussianDistribution

    raw, aug = DiagGaussianDistribution(2), DiagGaussianDistribution(2)
    raw.proba_distribution(th.tensor([[0.0, 1.0]]), th.log(th.tensor([1.0, 2.0])))
    aug.proba_distribution(th.tensor([[1.0, 1.0]]), th.log(th.tensor([1.0, 1.0])))
    # KL(N(0,1)||N(1,1)) = 0.5; KL(N(1,4)||N(1,1)) = 0.5 * (4 - 1 - ln 4)
    assert policy_kl(raw, aug).item() == pytest.approx(0.5 + 0.5 * (3 - math.log(4)))


# -- UCB --------------------------------------------------------------------------------------------
def test_ucb_choices_on_a_hand_computed_reward_sequence():
    bandit = UCBBandit(3, c=1.0, window=2)
    choices = []
    for reward in (1.0, 0.0, 0.0, 2.0, -1.0):
        choices.append(bandit.choose())
        bandit.reward(choices[-1], reward)
    choices.append(bandit.choose())
    # N=1: all 0, arm 0 | N=2: 1 + sqrt(ln2/2) = 1.589 > sqrt(ln2) = 0.833 | N=3: 0.5 + 0.605 > 1.048
    # N=4: Q0 = mean(0, 0) (the 1 left the window) + 0.589 < 1.177 -> arm 1 | N=5: 2 + 0.897 -> arm 1
    # N=6: arm 0 0.669, arm 1 0.5 + 0.773 = 1.273, arm 2 sqrt(ln 6) = 1.339 -> arm 2
    assert choices == [0, 0, 0, 1, 1, 2]
    assert bandit.q_values() == [0.0, 0.5, 0.0] and bandit.pulls == [3, 2, 0]
    assert bandit.scores() == pytest.approx([math.sqrt(math.log(6) / 4), 0.5 + math.sqrt(math.log(6) / 3),
                                             math.sqrt(math.log(6))])  # fmt: skip
    copy = UCBBandit(3, c=1.0, window=2)
    copy.load_state_dict(bandit.state_dict())
    assert copy.scores() == bandit.scores()
    with pytest.raises(ValueError, match="does not fit"):
        UCBBandit(2, c=1.0, window=2).load_state_dict(bandit.state_dict())


class EpisodeReturns(BaseCallback):
    """The returns of the episodes that end in each rollout."""

    def __init__(self) -> None:
        super().__init__()
        self.rollouts: list[list[float]] = []

    def _on_rollout_start(self) -> None:
        self.rollouts.append([])

    def _on_step(self) -> bool:
        self.rollouts[-1] += [info["episode"]["r"] for info in self.locals["infos"] if "episode" in info]
        return True


def published_ucb(rewards: list[float], arms: int = 8, c: float = 0.1, window: int = 10) -> list[int]:
    """auto-drac ucb_drac.py 52-77 as written there: counts and N start at 1, argmax (lowest index
    on ties), Q = mean of a deque of the last `window` rewards."""
    from collections import deque

    total, counts, q = 1, [1.0] * arms, [0.0] * arms
    windows = [deque(maxlen=window) for _ in range(arms)]
    chosen = []
    for r in rewards:
        scores = [q[i] + c * math.sqrt(math.log(total) / counts[i]) for i in range(arms)]
        arm = max(range(arms), key=lambda i: (scores[i], -i))
        chosen.append(arm)
        total, counts[arm] = total + 1, counts[arm] + 1
        windows[arm].append(r)
        q[arm] = sum(windows[arm]) / len(windows[arm])
    return chosen


def rollout_return_targets(updates: int, win: float) -> list[float]:
    """Rewards built the published way: per update, the mean GAE return target (gamma 0.999, lambda
    0.95, values 0) of a rollout of 16 envs x 32 steps of sparse rewards (`win` in 1 step of 40)."""
    rng = np.random.default_rng(3)
    out = []
    for _ in range(updates):
        rewards = (rng.random((32, 16)) < 1 / 40) * win
        gae, returns = np.zeros(16), np.zeros((32, 16))
        for t in reversed(range(32)):
            gae = rewards[t] + 0.999 * 0.95 * gae
            returns[t] = gae
        out.append(float(returns.mean()))
    return out


def test_ucb_tries_every_arm_on_rewards_the_size_of_its_bonus_and_one_on_raw_returns():
    # c = 0.1: an untried arm's bonus is 0.1 sqrt(ln N) (0.23 at N = 200). Return targets of that size
    # (a win worth 0.3: mean ~0.08) let every arm in; coinrun's raw scale (10 a win: mean ~2.6) never does.
    # (Whether a real run's normalised return targets are that small is what the measured run shows.)
    small, raw = rollout_return_targets(200, 0.3), rollout_return_targets(200, 10.0)
    for rewards in (small, raw):
        bandit, chosen = UCBBandit(8, c=0.1, window=10), []
        for r in rewards:
            chosen.append(bandit.choose())
            bandit.reward(chosen[-1], r)
        assert chosen == published_ucb(rewards)
    assert set(published_ucb(small)) == set(range(8))
    assert set(published_ucb(raw)) == {0}


def test_ucb_drac_rewards_each_arm_with_the_mean_return_target_of_the_next_rollout():
    ucb = UCBConfig(c=0.1, window=10, augmentations=("crop", "grayscale", "cutout"))
    model = make("ucb_drac", ucb=ucb)
    targets = ReturnTargets()
    model.learn(3 * N_STEPS * N_ENVS, callback=targets)
    rewarded = [r for arm in model.bandit.rewards for r in arm]
    assert sum(model.bandit.pulls) == 2  # every update after the first rewards the arm before it
    assert sorted(rewarded) == pytest.approx(sorted(targets.means[1:]))
    assert model.logger.name_to_value["ucb/reward"] in rewarded


class ReturnTargets(BaseCallback):
    """The mean return target (GAE return) of each rollout's buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.means: list[float] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        returns = self.model.rollout_buffer.returns
        self.means.append(float(returns.sum() / returns.size))


def test_ucb_drac_rewards_each_arm_with_the_next_rollout_and_logs_it():
    ucb = UCBConfig(c=0.1, window=10, augmentations=("crop", "grayscale", "cutout"), reward="episodes")
    model = make("ucb_drac", ucb=ucb)
    returns = EpisodeReturns()
    model.learn(3 * N_STEPS * N_ENVS, callback=returns)
    assert model.arms() == ["crop", "grayscale", "cutout"]
    # update 1 chose arm 0 (all scores 0); rollout 2 rewarded it; update 2 chose again; rollout 3 rewarded that
    assert model.bandit.pulls[0] >= 1 and sum(model.bandit.pulls) == 2
    rewarded = [r for arm in model.bandit.rewards for r in arm]
    assert sorted(rewarded) == sorted(float(np.mean(r)) for r in returns.rollouts[1:])
    logged = model.logger.name_to_value  # the last update's records (sb3 dumps them with the next rollout)
    assert logged["ucb/chosen"] == model.pending_arm
    assert {f"ucb/{k}/{n}" for k in ("q", "count") for n in model.arms()} <= set(logged)
    assert {"train/drac_policy", "train/drac_value"} <= set(logged)


def test_agent_state_is_plain_data_and_restores_the_stream():
    ucb = UCBConfig(augmentations=("crop", "cutout"))
    a = make("ucb_drac", ucb=ucb)
    a.learn(2 * N_STEPS * N_ENVS)
    state = a.agent_state_dict()

    def plain(v) -> bool:
        if isinstance(v, dict):
            return all(isinstance(k, str) and plain(x) for k, x in v.items())
        if isinstance(v, list):
            return all(plain(x) for x in v)
        return v is None or isinstance(v, (int, float, str, th.Tensor))

    assert plain(state) and state["augment_generator"].dtype == th.uint8
    b = make("ucb_drac", seed=7, ucb=ucb)
    b.load_agent_state_dict(state)
    assert b.bandit.state_dict() == a.bandit.state_dict() and b.augmentation == a.augmentation
    x = th.zeros((4, 12, 12, 3))
    assert th.equal(a.augment(x + 100), b.augment(x + 100))
    assert agents.HeldoutPPO.agent_state_dict(a) == {}  # plain PPO keeps nothing extra


# -- settings and refusals --------------------------------------------------------------------------
def test_sections_and_foreign_settings():
    assert agents.sections("ppo") == ()
    assert agents.sections("rad") == ("augment",)
    assert agents.sections("ucb_drac") == ("augment", "drac", "ucb")
    with pytest.raises(TypeError, match="agent 'ppo' reads no settings 'augment'"):
        make("ppo", augment=AugmentConfig())


def test_maze_observations_accept_only_grid_augmentations():
    maze = envs.make_vec("maze", 2, "train", num_train_levels=5)
    ppo = PPOConfig(n_steps=8, n_minibatches=2, normalize_reward=False)
    with pytest.raises(ValueError, match="'flip' is not valid on maze.*valid there: crop, cutout, dropout, translate"):
        agents.make("drac", maze, ppo=ppo, network=NetworkConfig(), seed=0, augment=AugmentConfig("flip"))
    with pytest.raises(ValueError, match="'grayscale' is not valid on maze.*codes, not colours"):
        agents.make("ucb_drac", maze, ppo=ppo, network=NetworkConfig(), seed=0,
                    ucb=UCBConfig(augmentations=("cutout", "grayscale")))  # fmt: skip
    model = agents.make("ucb_drac", maze, ppo=ppo, network=NetworkConfig(), seed=0)
    assert model.arms() == A.valid_on_grids()
    pixels = make("ucb_drac")
    assert pixels.arms() == list(A.PUBLISHED)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: AugmentConfig("nope"), "augment.name: unknown augmentation 'nope'"),
        (lambda: AugmentConfig("crop", {"crop": {"pad": -1}}), "pad must be an integer >= 0"),
        (lambda: AugmentConfig("crop", {"cutuot": {}}), "Did you mean 'cutout'"),
        (lambda: DrACConfig(alpha=-0.1), r"drac.alpha must be a number in \[0, inf\)"),
        (lambda: DrACConfig(fraction=0.0), r"drac.fraction must be a number in \(0, 1\]"),
        (lambda: UCBConfig(window=0), "ucb.window must be an integer >= 1"),
        (lambda: UCBConfig(c=float("nan")), "ucb.c"),
        (lambda: UCBConfig(augmentations=("crop", "crop")), "names an augmentation twice"),
        (lambda: UCBConfig(reward="wins"), "ucb.reward must be one of returns | episodes, got 'wins'"),
        (lambda: DrACConfig(policy_term="js"), "drac.policy_term must be one of sample | kl"),
        (lambda: DrACConfig(value_coef=-1), r"drac.value_coef must be a number in \[0, inf\)"),
    ],
)
def test_bad_settings_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()
