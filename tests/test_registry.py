"""The environment registry: names, errors."""

import pytest

from heldout import envs


def test_unknown_name_lists_close_matches_and_available_names():
    with pytest.raises(KeyError) as err:
        envs.get("no-such-env")
    assert "unknown environment 'no-such-env'" in str(err.value)
    assert "Available:" in str(err.value)
