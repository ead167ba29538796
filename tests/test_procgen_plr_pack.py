"""experiments/procgen_plr: the sweep file plans the PLR paper's protocol (no run starts)."""

from pathlib import Path

from heldout.experiments import spec

SWEEP = Path(__file__).resolve().parents[1] / "experiments" / "procgen_plr" / "sweep.yaml"
GAMES = {"bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball", "fruitbot", "heist",
         "jumper", "leaper", "maze", "miner", "ninja", "plunder", "starpilot"}  # fmt: skip


def test_the_sweep_file_plans_the_plr_papers_protocol():
    raw = spec.load(SWEEP)
    assert raw["seeds"] == 10
    runs = spec.plan({**raw, "seeds": [0, 9]}, str(SWEEP), SWEEP.parent)  # two seeds keep the check quick
    assert len(runs) == 16 * 4 * 2
    cells = {(r.cfg.env.name, r.cfg.agent, r.cfg.sampler.name) for r in runs}
    assert {name.split("/")[1] for name, _, _ in cells} == GAMES
    assert {(a, s) for _, a, s in cells} == {("ppo", "uniform"), ("ppo", "plr"), ("ucb_drac", "uniform"),
                                             ("ucb_drac", "plr")}  # fmt: skip
    assert {r.seed for r in runs} == {0, 9}
    for r in runs[::16]:
        cfg = r.cfg
        assert cfg.steps == 25_000_000 and cfg.env.num_envs == 64 and cfg.env.num_train_levels == 200
        assert cfg.env.options["distribution_mode"] == "easy" and cfg.env.test_levels[0] == "full"
        assert cfg.eval.final_episodes == 100
        assert (cfg.ppo.value_loss, cfg.ppo.n_steps, cfg.ppo.n_minibatches) == ("published", 256, 8)
