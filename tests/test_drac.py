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
    model = make("drac", augment=AugmentConfig("crop", {"crop": {"pad": 0}}), drac=DrACConfig(alpha=1.0))
    batch = first_batch(model)
    loss = model.compute_loss(batch, 0.2, 0.2)
    assert set(loss.extra) == {"drac_policy", "drac_value"}
    assert abs(loss.extra["drac_policy"]) < 1e-7 and abs(loss.extra["drac_value"]) < 1e-10


@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_drac_loss_is_the_ppo_loss_plus_alpha_times_the_regulariser(fraction):
    model = make("drac", augment=AugmentConfig("crop"), drac=DrACConfig(alpha=0.5, fraction=fraction))
    batch = first_batch(model)
    state = model.augment_generator.get_state()
    loss = model.compute_loss(batch, 0.2, 0.2)
    ppo_part = loss.policy_loss + model.ent_coef * loss.entropy_loss + model.vf_coef * loss.value_loss
    assert loss.total.item() == pytest.approx(ppo_part.item() + loss.extra["drac_policy"] + loss.extra["drac_value"])
    # by hand: the same augmented draw, the KL of two categoricals and a squared value gap
    model.augment_generator.set_state(state)
    count = int(len(batch.observations) * fraction)  # the regulariser's share of the minibatch: its first samples
    with th.no_grad():
        actions = batch.actions[:count].long().flatten()
        v_raw, _, _, d_raw, _ = model.evaluate(batch.observations[:count], actions)
        v_aug, _, _, d_aug, _ = model.evaluate(model.augment(batch.observations[:count]), actions)
        assert d_raw is not d_aug  # each forward pass keeps its own distribution
        p, q = d_raw.distribution.probs, d_aug.distribution.probs
        kl = (p * (p.log() - q.log())).sum(1).mean().item()
        gap = (v_aug - v_raw).pow(2).mean().item()
    assert loss.extra["drac_policy"] == pytest.approx(0.5 * kl, rel=1e-4)
    assert loss.extra["drac_value"] == pytest.approx(0.5 * gap, rel=1e-4)
    assert kl > 0 and gap > 0


def test_drac_gradient_reaches_parameters_only_through_the_augmented_branch():
    model = make("drac", augment=AugmentConfig("crop"), drac=DrACConfig(alpha=1.0))
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
        ((p * (log_p - log_q)).sum(1).mean() + (v_aug - v_raw).pow(2).mean()).backward()
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


def test_ucb_drac_rewards_each_arm_with_the_next_rollout_and_logs_it():
    ucb = UCBConfig(c=0.1, window=10, augmentations=("crop", "grayscale", "cutout"))
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
    ],
)
def test_bad_settings_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()
