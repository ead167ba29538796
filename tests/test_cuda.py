"""``--device cuda`` end to end for every online agent and PAIRED (runs only where CUDA is present;
the offline agents' GPU path is covered by their own device handling, not here)."""

from __future__ import annotations

import json

import pytest
import torch

from heldout.cli import main
from tests.test_bonuses import TINY
from tests.test_paired_train import PAIRED_TINY
from tests.test_train import load_checkpoint

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
PLAIN, BONUS = TINY[: TINY.index("--bonus.embedding_dim")], TINY[TINY.index("--bonus.embedding_dim") :]


@pytest.mark.parametrize("args", [
    ["--agent", "ppo"], ["--agent", "ppo_lstm", "--network.lstm_hidden_size", "8"], ["--agent", "rad"],
    ["--agent", "drac"], ["--agent", "ucb_drac"], ["--agent", "ppo", "--bonus", "product", "--bonus.episodic_part", "e3b", *BONUS],
    ["--agent", "ppo", "--network.precision", "bf16"],
])  # fmt: skip
def test_a_run_trains_on_the_gpu_and_resumes(tmp_path, args):
    run = tmp_path / "run"
    assert main(["train", *PLAIN, *args, "--device", "cuda", "--steps", "256", "--run-dir", str(run)]) == 0
    assert main(["train", "--resume", str(run), "--steps", "384", "--no-progress"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["steps"] == 384 and report["config"]["device"] == "cuda"
    assert load_checkpoint(run)["num_timesteps"] == 384


def test_paired_trains_on_the_gpu(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *PAIRED_TINY, "--device", "cuda", "--steps", "768", "--run-dir", str(run)]) == 0
    assert json.loads((run / "report.json").read_text())["config"]["device"] == "cuda"
