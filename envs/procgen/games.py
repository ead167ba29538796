"""Facts about the 16 Procgen games: names, distribution modes, score normalisation, and how
much of a level the uncentred first frame shows (what the content fingerprint can prove)."""

from __future__ import annotations

import numpy as np

from heldout.names import unknown_name_message

GAMES: tuple[str, ...] = (
    "bigfish",
    "bossfight",
    "caveflyer",
    "chaser",
    "climber",
    "coinrun",
    "dodgeball",
    "fruitbot",
    "heist",
    "jumper",
    "leaper",
    "maze",
    "miner",
    "ninja",
    "plunder",
    "starpilot",
)

DISTRIBUTION_MODES: tuple[str, ...] = ("easy", "hard")

EASY_RETURN_RANGE: dict[str, tuple[float, float]] = {
    "bigfish": (1.0, 40.0),
    "bossfight": (0.5, 13.0),
    "caveflyer": (3.5, 12.0),
    "chaser": (0.5, 13.0),
    "climber": (2.0, 12.6),
    "coinrun": (5.0, 10.0),
    "dodgeball": (1.5, 19.0),
    "fruitbot": (-1.5, 32.4),
    "heist": (3.5, 10.0),
    "jumper": (1.0, 10.0),
    "leaper": (1.5, 10.0),
    "maze": (5.0, 10.0),
    "miner": (1.5, 13.0),
    "ninja": (3.5, 10.0),
    "plunder": (4.5, 30.0),
    "starpilot": (2.5, 64.0),
}
"""(R_min, R_max) of the published easy-mode normalised score (Cobbe et al. 2020)."""

PARTIAL_FIRST_FRAME: dict[str, str] = {
    "bigfish": "the fish are spawned during play from the level's random stream",
    "bossfight": "the boss's rounds, health per round and attack modes are hidden parameters",
    "leaper": "the lane speeds are hidden and cars and logs keep spawning during play",
    "plunder": "the enemy ships are spawned during play and the lane speeds are hidden",
    "starpilot": "the enemy waves are generated at reset but enter the screen only later",
}
"""Games whose uncentred first frame does not show the whole level, and why (read from the
procgen 0.10.7 game sources). In the other 11 games everything a level places is created at
reset and drawn in the uncentred first frame (the whole world is scaled into 64x64)."""


def check_game(game: str) -> str:
    """``game`` if it is a Procgen game, else a ValueError naming close matches."""
    if game in GAMES:
        return game
    raise ValueError(unknown_name_message("Procgen game", game, GAMES, listed_as="Games"))


def check_distribution_mode(mode: str) -> str:
    """``mode`` if it is a supported distribution mode, else a ValueError saying which are."""
    if mode in DISTRIBUTION_MODES:
        return mode
    raise ValueError(
        f"unsupported Procgen distribution_mode {mode!r}; use one of {', '.join(map(repr, DISTRIBUTION_MODES))}"
    )


def fingerprint_proves_distinct(game: str) -> bool:
    """True where the uncentred first frame shows the whole level, so that test levels whose
    fingerprint differs from every training level's differ from them in content."""
    return check_game(game) not in PARTIAL_FIRST_FRAME


def normalise(game: str, returns: np.ndarray, distribution_mode: str = "easy") -> np.ndarray | None:
    """``(R - R_min) / (R_max - R_min)`` with the published easy-mode constants.

    Returns None for ``hard`` mode: its constants differ and are not reproduced here.
    """
    check_game(game)
    if check_distribution_mode(distribution_mode) != "easy":
        return None
    r_min, r_max = EASY_RETURN_RANGE[game]
    return (np.asarray(returns, dtype=np.float64) - r_min) / (r_max - r_min)
