"""The sampler glue in the trainer's loop, on real (tiny) stable-baselines3 PPO runs over a toy
LevelVecEnv.

Expected scores and loss masks are rebuilt here independently of the glue: from copies of the
rollout buffer, the order in which the env loaded levels into slots, and the order in which the
sampler drew them.
"""

import pickle

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecNormalize

from heldout import level_samplers
from heldout.envs.base import LevelDraw, LevelSet, LevelSpace, LevelVecEnv
from heldout.trainer.build import Run
from heldout.trainer.config import TrainConfig
from heldout.trainer.loop import train_loop
from heldout.trainer.sampler_glue import SamplerGlue, find_level_vec_env, image_grid

N_LEVELS = 6
N_ENVS = 3
N_STEPS = 5


class ToySpace(LevelSpace):
    family = "toy"

    def render(self, level):
        img = np.zeros((6, 6, 3), np.uint8)
        img[..., level % 3] = 30 * (level + 1)
        return img


class ToyVecEnv(LevelVecEnv):
    """Level k lasts min(k + 2, 5) steps; levels >= 4 end by a time limit (truncation).
    Reward 1 on the last step if the action equals k % 2."""

    render_mode = None

    def __init__(self, num_envs=N_ENVS, space=None, seed=0, levels=tuple(range(N_LEVELS))):
        super().__init__(
            num_envs,
            gym.spaces.Box(0, 1, (N_LEVELS + 1,), np.float32),
            gym.spaces.Discrete(2),
            LevelSet("train", levels=levels),
            space or ToySpace(),
            seed,
        )
        self._t = np.zeros(num_envs, np.int64)
        self.loads: list[tuple[int, int]] = []  # (slot, level) in load order
        self.load_steps: list[int] = []  # how many env steps had run at each load
        self.steps = 0

    def _obs(self, levels, t):
        obs = np.zeros((len(levels), N_LEVELS + 1), np.float32)
        obs[np.arange(len(levels)), levels] = 1
        obs[:, -1] = t / 10
        return obs

    def _load_levels(self, slots, levels):
        self.loads.extend(zip(slots.tolist(), levels))
        self.load_steps.extend([self.steps] * len(slots))
        self._t[slots] = 0
        return self._obs(levels, self._t[slots])

    def _raw_step(self, actions):
        self.steps += 1
        self._t += 1
        lv = np.array(self.levels)
        ended = self._t >= np.minimum(lv + 2, 5)
        truncated = ended & (lv >= 4)
        rewards = np.where(ended, (np.asarray(actions) == lv % 2).astype(float), 0.0)
        return self._obs(lv, self._t), rewards, ended & ~truncated, truncated


class RecordingPPO(PPO):
    """Plain PPO that records the loss masks it is given (it does not apply them)."""

    def set_loss_mask(self, mask):
        self.__dict__.setdefault("masks", []).append(np.array(mask, copy=True))


class Capture(BaseCallback):
    """Copies the rollout buffer at every rollout end (a user's callback, as the loop passes it on)."""

    def __init__(self):
        super().__init__()
        self.rollouts = []

    def _on_step(self):
        return True

    def _on_rollout_end(self):
        b = self.model.rollout_buffer
        self.rollouts.append(
            {"starts": b.episode_starts.copy(), "adv": b.advantages.copy(), "last_dones": np.array(self.locals["dones"])}
        )


def spy(sampler):
    """Record every draw (level, replayed) and update (level, score) of ``sampler``."""
    draws, updates = [], []
    sample, update = sampler.sample_with_replay_flag, sampler.update

    def spy_sample():
        level, replayed = sample()
        draws.append((level, replayed))
        return level, replayed

    def spy_update(level, score, *, max_return=None):
        updates.append((level, score))
        update(level, score, max_return=max_return)

    sampler.sample_with_replay_flag, sampler.update = spy_sample, spy_update
    return draws, updates


def toy_model(env, model_cls=RecordingPPO):
    return model_cls("MlpPolicy", env, n_steps=N_STEPS, batch_size=N_STEPS * N_ENVS, n_epochs=1, seed=0,
                     policy_kwargs={"net_arch": [8]})


def toy_run(model, glue, rollouts):
    """A run of ``rollouts`` rollouts with no evaluation, probe or checkpoint."""
    cfg = TrainConfig()
    cfg.steps, cfg.checkpoint_interval = rollouts * N_STEPS * N_ENVS, 0
    return Run(cfg, model, glue)


def run(sampler_name="plr", *, steps=8, reset_first=False, model_cls=RecordingPPO, wrap=True, logger_dir=None,
        space=None, sampler_params=None, glue_params=None):
    env = ToyVecEnv(space=space)
    venv = VecNormalize(env, norm_obs=False) if wrap else env
    sampler = level_samplers.make(sampler_name, range(N_LEVELS), seed=0, **(sampler_params or {}))
    draws, updates = spy(sampler)
    capture = Capture()
    model = toy_model(venv, model_cls)
    if logger_dir is not None:
        model.set_logger(configure(str(logger_dir), ["tensorboard"]))
    if reset_first:
        venv.reset()  # the slots start on levels the sampler did not choose
    glue = SamplerGlue(sampler, model, **(glue_params or {}))
    train_loop(toy_run(model, glue, steps), callback=capture)
    return dict(env=env, model=model, sampler=sampler, glue=glue, rollouts=capture.rollouts, draws=draws,
                updates=updates)


def episodes_per_slot(r, skip_loads=0):
    """Per slot, the (level, replayed) of each episode in order, from the env's loads and the draws."""
    loads = r["env"].loads[skip_loads:]
    assert [lv for _, lv in loads] == [lv for lv, _ in r["draws"]]  # every episode's level was drawn
    per_slot = {e: [] for e in range(N_ENVS)}
    for (slot, level), (_, replayed) in zip(loads, r["draws"]):
        per_slot[slot].append((level, replayed))
    return per_slot


def expected_value_l1_updates(r, per_slot):
    """(level, mean |A| over the whole episode) for every finished episode, in the order they ended."""
    starts = np.concatenate([ro["starts"] for ro in r["rollouts"]])
    adv = np.concatenate([ro["adv"] for ro in r["rollouts"]]).astype(np.float64)
    total = starts.shape[0]
    finished = []
    for e in range(N_ENVS):
        cuts = [*np.flatnonzero(starts[:, e]).tolist(), total]
        assert cuts[0] == 0
        for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
            if b == total and not r["rollouts"][-1]["last_dones"][e]:
                continue  # still running
            finished.append((b, e, per_slot[e][k][0], float(np.abs(adv[a:b, e]).mean())))
    return [(lv, score) for _, _, lv, score in sorted(finished)]


def test_find_level_vec_env():
    env = ToyVecEnv()
    assert find_level_vec_env(VecNormalize(VecNormalize(env))) is env
    with pytest.raises(TypeError, match="needs a heldout.envs.LevelVecEnv"):
        find_level_vec_env(object())


def test_plr_gets_one_step_weighted_score_per_episode():
    r = run("plr")
    per_slot = episodes_per_slot(r)
    # the glue installed the sampler before the loop's reset: every load was drawn, once
    assert len(r["env"].loads) == len(r["draws"])
    expected = expected_value_l1_updates(r, per_slot)
    assert len(expected) > 10
    # several episodes crossed a rollout boundary (5-step rollouts, episodes of 2..5 steps)
    assert any(ro["starts"][0].min() == 0 for ro in r["rollouts"][1:])
    got = r["updates"]
    assert [lv for lv, _ in got] == [lv for lv, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-5)
    assert r["sampler"].num_seen == len({lv for lv, _ in got})


def test_an_env_reset_before_the_glue_is_reset_onto_sampled_levels():
    r = run("plr", reset_first=True, steps=4)
    # the env was reset (uniform levels) before the glue existed; the loop's fresh start resets
    # it again, so that every slot's first episode is a sampled level
    per_slot = episodes_per_slot(r, skip_loads=N_ENVS)
    expected = expected_value_l1_updates(r, per_slot)
    got = r["updates"]
    assert [lv for lv, _ in got] == [lv for lv, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-5)


def test_robust_plr_loss_mask_marks_exactly_the_new_levels_steps():
    r = run("robust_plr", steps=10)
    per_slot = episodes_per_slot(r)
    masks = r["model"].masks
    assert len(masks) == len(r["rollouts"]) == 10
    starts = np.concatenate([ro["starts"] for ro in r["rollouts"]])
    episode_index = np.cumsum(starts, axis=0).astype(int) - 1
    expected = np.array([[per_slot[e][episode_index[t, e]][1] for e in range(N_ENVS)] for t in range(len(starts))])
    got = np.concatenate(masks)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected.astype(np.float32))
    assert 0 < got.mean() < 1  # both replayed and new episodes occurred
    # new levels are still scored: every finished episode updates the sampler
    assert [lv for lv, _ in r["updates"]] == [lv for lv, _ in expected_value_l1_updates(r, per_slot)]


def test_robust_plr_needs_a_model_with_a_loss_mask():
    with pytest.raises(TypeError, match="has no set_loss_mask"):  # refused when the glue is built
        run("robust_plr", steps=1, model_cls=PPO)


def test_robust_plr_runs_with_heldout_ppo():
    from heldout.agents.ppo import HeldoutPPO

    r = run("robust_plr", steps=4, model_cls=HeldoutPPO, wrap=False)
    assert r["glue"].last_loss_mask is not None
    assert r["model"].pending_loss_mask is None  # the update consumed the mask
    assert r["sampler"].num_seen > 0


class CompareProbs(BaseCallback):
    """At rollout end, the glue's chunked pass next to a one-observation-at-a-time one."""

    def __init__(self, glue):
        super().__init__()
        self.glue = glue
        self.pairs = []

    def _on_step(self):
        return True

    def _on_rollout_end(self):
        policy, buffer = self.model.policy, self.model.rollout_buffer
        per_step = [
            [policy.get_distribution(policy.obs_to_tensor(buffer.observations[t, e])[0]).distribution.probs.detach().numpy()[0]
             for e in range(N_ENVS)]
            for t in range(N_STEPS)
        ]
        self.pairs.append((self.glue._action_probabilities(self.model), np.array(per_step)))


def test_distribution_scores_use_one_batched_pass():
    sampler = level_samplers.make("plr", range(N_LEVELS), score="policy_entropy")
    draws, updates = spy(sampler)
    model = toy_model(ToyVecEnv(), PPO)
    glue = SamplerGlue(sampler, model, score_batch_size=4)  # 15 observations in 4 chunks
    compare = CompareProbs(glue)
    train_loop(toy_run(model, glue, 3), callback=compare)
    assert len(compare.pairs) == 3
    for batched, per_step in compare.pairs:
        assert batched.shape == (N_STEPS, N_ENVS, 2)
        np.testing.assert_allclose(batched, per_step, rtol=1e-5)
    scores = [s for _, s in updates]
    assert scores and all(0.0 <= s <= 1.0 for s in scores)


def test_glue_state_dict_resumes_exactly():
    straight = run("plr", steps=8)

    env = ToyVecEnv()
    model = toy_model(VecNormalize(env, norm_obs=False))
    first = level_samplers.make("plr", range(N_LEVELS), seed=0)
    draws, updates = spy(first)
    glue = SamplerGlue(first, model)
    train_loop(toy_run(model, glue, 4))
    state = pickle.loads(pickle.dumps(glue.state_dict()))
    assert state["scorer"]["partials"]  # some episodes are carried over the break

    resumed = level_samplers.make("plr", range(N_LEVELS), seed=123)
    draws2, updates2 = spy(resumed)
    glue2 = SamplerGlue(resumed, model)  # the resumed sampler becomes the env's level source
    glue2.load_state_dict(state)
    train_loop(toy_run(model, glue2, 8), resume=True)

    assert draws + draws2 == straight["draws"]
    assert updates + updates2 == straight["updates"]
    assert resumed.level_scores() == straight["sampler"].level_scores()


def test_resuming_in_a_fresh_env_scores_cut_episodes_and_resets_onto_sampled_levels():
    # One level (3-step episodes, 5-step rollouts): a fresh env's levels always equal the saved ones.
    def setup(state=None):
        env = ToyVecEnv(levels=(1,))
        sampler = level_samplers.make("plr", [1], seed=0)
        draws, updates = spy(sampler)
        model = toy_model(env)
        glue = SamplerGlue(sampler, model)
        if state is not None:
            glue.load_state_dict(state)
        return env, glue, model, draws, updates

    _, glue, model, _, _ = setup()
    train_loop(toy_run(model, glue, 2))
    state = pickle.loads(pickle.dumps(glue.state_dict()))
    carried = state["scorer"]["partials"]
    assert carried  # 10 steps of 3-step episodes: every slot is one step into an episode

    env, glue, model, draws, updates = setup(state)
    train_loop(toy_run(model, glue, 1))  # a fresh start in a fresh env
    # the loop reset the new env once, onto sampled levels: every load was drawn from the sampler
    assert [lv for _, lv in env.loads] == [lv for lv, _ in draws]
    assert env.load_steps[: N_ENVS + 1] == [0] * N_ENVS + [3]  # one reset before the first step
    # the cut episodes were scored as they were, not merged into the new episodes nor dropped
    flushed = updates[: len(carried)]
    expected = [(p["level"], p["score_sum"] / p["steps"]) for _, p in sorted(carried.items())]
    assert [lv for lv, _ in flushed] == [lv for lv, _ in expected]
    assert [sc for _, sc in flushed] == pytest.approx([sc for _, sc in expected])


def test_tensorboard_gets_scalars_histogram_and_level_images(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    r = run("plr", steps=4, logger_dir=tmp_path, glue_params={"image_interval": 1, "num_images": 4})
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    for name in ("sampling_entropy", "num_seen", "replay_fraction", "score_mean", "score_max", "episodes_scored"):
        assert f"level_sampler/{name}" in tags["scalars"]
    assert "level_sampler/scores" in tags["histograms"]
    assert "level_sampler/top_levels" in tags["images"]
    seen = [e.value for e in acc.Scalars("level_sampler/num_seen")]
    assert seen[-1] == r["sampler"].num_seen
    top = r["glue"].top_levels()
    assert 0 < len(top) <= 4
    probs = r["sampler"].probabilities()
    assert [probs[lv] for lv in top] == sorted((probs[lv] for lv in top), reverse=True)
    grid = image_grid([ToySpace().render(lv) for lv in top])
    last = acc.Images("level_sampler/top_levels")[-1]
    assert (last.height, last.width) == grid.shape[:2]


def test_levels_that_cannot_be_rendered_just_skip_the_image(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    class Unrenderable(LevelSpace):
        family = "toy"

    run("plr", steps=2, logger_dir=tmp_path, space=Unrenderable(), glue_params={"image_interval": 1})
    acc = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    acc.Reload()
    assert acc.Tags()["images"] == []
    assert "level_sampler/num_seen" in acc.Tags()["scalars"]


def test_image_grid_layout():
    frames = [np.full((2, 3, 3), 10 * (i + 1), np.uint8) for i in range(3)]
    grid = image_grid(frames, pad=1)
    # 2 columns x 2 rows of 2x3 tiles with 1-pixel gaps
    assert grid.shape == (2 * 2 + 3, 2 * 3 + 3, 3)
    assert (grid[1:3, 1:4] == 10).all() and (grid[1:3, 5:8] == 20).all() and (grid[4:6, 1:4] == 30).all()
    assert (grid[4:6, 5:8] == 0).all()


def test_bad_glue_arguments():
    sampler = level_samplers.make("plr", range(3))
    model = toy_model(ToyVecEnv())
    with pytest.raises(ValueError, match="log_interval must be an integer >= 1"):
        SamplerGlue(sampler, model, log_interval=0)
    with pytest.raises(TypeError, match="sampler must be a heldout LevelSampler"):
        SamplerGlue(object(), model)


def test_max_mc_records_the_env_s_achieved_return_not_the_bootstrapped_reward():
    # Without reward normalisation an achieved return here is exactly 0 or 1; the buffer's last
    # reward of levels 4 and 5 (ended by the time limit) also holds sb3's bootstrap gamma * V.
    recorded = []
    sampler = level_samplers.make("plr", range(N_LEVELS), seed=0, score="max_mc")
    update = sampler.update

    def spy_update(level, score, *, max_return=None):
        recorded.append((level, max_return))
        update(level, score, max_return=max_return)

    sampler.update = spy_update
    model = toy_model(ToyVecEnv())
    train_loop(toy_run(model, SamplerGlue(sampler, model), 8))
    complete = [(lv, r) for lv, r in recorded if r is not None]
    assert any(lv >= 4 for lv, _ in complete), "no time-limited episode was scored"
    assert {r for _, r in complete} <= {0.0, 1.0}
    for level in range(N_LEVELS):
        best = max((r for lv, r in complete if lv == level), default=None)
        assert sampler.max_return(level) == best


def test_the_env_reports_each_step_s_level_and_replay_flag():
    env = ToyVecEnv(num_envs=2, levels=(1,))  # 3-step episodes
    marks = iter([True, False, False, True])
    env.set_level_source(lambda slot: LevelDraw(1, next(marks)))
    env.reset()
    assert env.replayed.tolist() == [True, False]
    for _ in range(2):
        env.step_async(np.zeros(2, np.int64))
        _, _, dones, infos = env.step_wait()
    assert not dones.any() and [(i["level"], i["replayed"]) for i in infos] == [(1, True), (1, False)]
    env.step_async(np.zeros(2, np.int64))
    _, _, dones, infos = env.step_wait()  # the episodes end; the infos still describe them
    assert dones.all() and [i["replayed"] for i in infos] == [True, False]
    assert env.replayed.tolist() == [False, True]  # the next episodes' draws
    env._get_sim_state, env._set_sim_state = (lambda: None), (lambda sim: None)
    saved = env.get_state()
    env.set_levels([1], [1])  # a level put in by hand is no replay
    assert env.replayed.tolist() == [False, False]
    env.set_state(saved)
    assert env.replayed.tolist() == [False, True]
    env.set_level_source(lambda slot: 1)  # nor is a plain level from the source
    env.reset()
    assert env.replayed.tolist() == [False, False]


class CountCalls(BaseCallback):
    def __init__(self):
        super().__init__()
        self.calls = {}

    def _count(self, name):
        self.calls[name] = self.calls.get(name, 0) + 1

    def _on_training_start(self):
        self._count("training_start")
        self.total = self.locals["total_timesteps"]

    def _on_rollout_start(self):
        self._count("rollout_start")

    def _on_step(self):
        self._count("step")
        return True

    def _on_rollout_end(self):
        self._count("rollout_end")

    def _on_training_end(self):
        self._count("training_end")


def test_a_user_s_callbacks_get_the_calls_learn_makes():
    sampler = level_samplers.make("plr", range(N_LEVELS), seed=0)
    model = toy_model(ToyVecEnv())
    first, second = CountCalls(), CountCalls()
    train_loop(toy_run(model, SamplerGlue(sampler, model), 3), callback=[first, second])
    for cb in (first, second):
        assert cb.calls == {"training_start": 1, "rollout_start": 3, "step": 3 * N_STEPS, "rollout_end": 3,
                            "training_end": 1}
        assert cb.total == 3 * N_STEPS * N_ENVS and cb.model is model


def test_a_callback_that_returns_false_stops_the_loop():
    class StopAtOnce(BaseCallback):
        def _on_step(self):
            return False

    sampler = level_samplers.make("plr", range(N_LEVELS), seed=0)
    model = toy_model(ToyVecEnv())
    train_loop(toy_run(model, SamplerGlue(sampler, model), 3), callback=StopAtOnce())
    assert model.num_timesteps == N_ENVS  # one step, no update
    assert not getattr(model, "masks", None) and model._n_updates == 0
