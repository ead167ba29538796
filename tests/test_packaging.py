"""A regular (non-editable) install carries the whole package and nothing else."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import heldout, heldout.envs, heldout.agents, heldout.level_samplers, heldout.train
print(heldout.__file__)
print(len(heldout.envs.names()), len(heldout.envs.level_set("maze", "named")))
"""


def test_pip_install_without_editable_mode(tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), str(ROOT)],
        check=True,
        capture_output=True,
    )
    assert not (site / "heldout" / "tests").exists() and not (site / "heldout" / "bench").exists()
    assert (site / "bin" / "heldout").exists()
    out = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        check=True, capture_output=True, text=True,
    ).stdout.split()
    assert out[0] == str(site / "heldout" / "__init__.py")
    from importlib.util import find_spec

    from heldout.envs import minigrid_families, minihack_families

    # listed only where their packages are installed
    minigrid = len(minigrid_families.FAMILIES) if find_spec("minigrid") else 0
    minihack = len(minihack_families.FAMILIES) if find_spec("minihack") and find_spec("nle") else 0
    assert int(out[1]) == 17 + minigrid + minihack and int(out[2]) == 5  # 16 Procgen games + maze; 5 named mazes


def test_foundations_are_bounded_below_their_next_major_and_installed_versions_fit():
    import configparser
    from importlib import metadata

    from packaging.requirements import Requirement

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = [ln.strip() for ln in cfg["options"]["install_requires"].splitlines()]
    reqs = {r.name: r for r in (Requirement(ln) for ln in lines if ln and not ln.startswith("#"))}
    for name, next_major in (("stable-baselines3", "3"), ("gymnasium", "2")):
        spec = reqs[name].specifier
        assert f"<{next_major}" in {str(s) for s in spec}, f"{name} needs an upper bound <{next_major}"
        assert spec.contains(metadata.version(name)), f"installed {name} is outside {spec}"
