"""User files written on other systems (a byte-order mark, CRLF or CR line ends) read as written."""

import pytest

from heldout import envs
from heldout.trainer import config

LEVELS = "#####\n#>..#\n#.#G#\n#####\n\n#####\n#.>.#\n#G..#\n#####\n"


def windows(text: str) -> bytes:
    """``text`` as a Windows editor saves it: UTF-8 with a byte-order mark, CRLF line ends."""
    return b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()


@pytest.mark.parametrize("encode", [windows, lambda t: t.replace("\n", "\r").encode()], ids=["bom-crlf", "cr"])
def test_a_level_file_from_another_system_reads_as_the_same_levels(tmp_path, encode):
    space = envs.get("maze").level_space()
    unix, other = tmp_path / "unix.txt", tmp_path / "other.txt"
    unix.write_text(LEVELS)
    other.write_bytes(encode(LEVELS))
    levels = space.read_levels(unix).levels
    assert len(levels) == 2 and space.read_levels(other).levels == levels


def test_a_yaml_config_with_a_bom_and_crlf_reads_its_settings(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_bytes(windows("steps: 4096\nppo:\n  lr: 0.001\n"))
    assert config.load_yaml(path) == {"steps": 4096, "ppo": {"lr": 0.001}}


def test_a_real_format_error_still_names_its_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(windows("steps: 4096\nppo: [1, 2\n"))
    with pytest.raises(ValueError, match=r"not valid YAML \(line 3, column 1"):
        config.load_yaml(path)
    levels = tmp_path / "bad.txt"
    levels.write_bytes(windows("#####\n#>..#\n#.#G\n#####\n"))  # row 3 one cell short
    with pytest.raises(ValueError, match="level 1: line 3: row has 4 characters but line 1 has 5"):
        envs.get("maze").level_space().read_levels(levels)  # the mark is not counted as a character


def test_a_level_file_past_the_size_limit_is_refused_from_its_size_before_any_read(tmp_path, monkeypatch):
    from pathlib import Path

    from heldout.envs.maze.space import MazeLevelSpace

    space = MazeLevelSpace()
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.truncate(space.max_file_bytes + 1)  # sparse: 32 MB that take no disk
    read = []
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or b"")
    with pytest.raises(ValueError) as err:
        space.read_levels(big)
    assert read == [] and f"{str(big)!r} is 32.0 MB (32,000,001 bytes), more than the 32,000,000 a level file may hold" in str(err.value)
    # one byte less is read (and then parsed: zeros are no maze)
    with open(big, "r+b") as f:
        f.truncate(space.max_file_bytes)
    with pytest.raises(ValueError, match="holds no levels|level 1"):
        space.read_levels(big)
    assert read == [big]
