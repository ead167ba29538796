"""IMPALA CNN and maze network: architecture by hand, memory formats, the auto rule."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from heldout.agents import ImpalaCNN, MazeNet, select_network
from heldout.agents.networks import use_channels_last

PIXELS_HWC = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
PIXELS_CHW = gym.spaces.Box(0, 255, (3, 64, 64), np.uint8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def conv_params(cin: int, cout: int) -> int:
    return cin * cout * 3 * 3 + cout


def test_impala_parameter_count_by_hand():
    net = ImpalaCNN(PIXELS_HWC)
    # each stack: one conv into the stack's channels, then 2 residual blocks of 2 convs each
    stacks = (conv_params(3, 16) + 4 * conv_params(16, 16)) + (conv_params(16, 32) + 4 * conv_params(32, 32)) + (
        conv_params(32, 32) + 4 * conv_params(32, 32)
    )
    assert stacks == 9728 + 41632 + 46240
    linear = 32 * 8 * 8 * 256 + 256  # 64 -> 32 -> 16 -> 8 after three stride-2 pools
    assert sum(p.numel() for p in net.parameters()) == stacks + linear == 622_144
    assert net.flat_dim == 2048 and net.features_dim == 256


def test_impala_stage_shapes():
    net = ImpalaCNN(PIXELS_HWC).eval()
    x = net.to_nchw(th.rand(2, 64, 64, 3))
    shapes = []
    for stack in net.stacks:
        x = stack(x)
        shapes.append(tuple(x.shape))
    assert shapes == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 32, 8, 8)]
    assert net(th.rand(5, 64, 64, 3)).shape == (5, 256)
    # odd sides round up in the padded stride-2 pool: 15 -> 8 -> 4 -> 2
    odd = ImpalaCNN(gym.spaces.Box(0, 255, (15, 15, 3), np.uint8), features_dim=7, channels=(4, 4, 4))
    assert odd.flat_dim == 4 * 2 * 2 and odd(th.rand(3, 15, 15, 3)).shape == (3, 7)
    # the output is a ReLU
    assert (net(th.rand(5, 64, 64, 3)) >= 0).all()


def test_hwc_input_is_a_channels_last_view_without_copy():
    net = ImpalaCNN(PIXELS_HWC, channels_last=True)
    frames = th.rand(4, 64, 64, 3)
    x = net.to_nchw(frames)
    assert x.shape == (4, 3, 64, 64)
    assert x.is_contiguous(memory_format=th.channels_last)
    assert x.data_ptr() == frames.data_ptr()


def test_channels_last_matches_contiguous_nchw():
    th.manual_seed(0)
    fast = ImpalaCNN(PIXELS_HWC, channels_last=True)
    plain = ImpalaCNN(PIXELS_CHW, channels_last=False)
    plain.load_state_dict(fast.state_dict())
    use_channels_last(fast)
    assert fast.stacks[0].conv.weight.is_contiguous(memory_format=th.channels_last)
    assert plain.stacks[0].conv.weight.is_contiguous()

    frames = th.rand(6, 64, 64, 3)
    out_fast = fast(frames)
    out_plain = plain(frames.permute(0, 3, 1, 2).contiguous())
    assert th.allclose(out_fast, out_plain, atol=1e-5, rtol=1e-4)
    assert not th.equal(out_fast, th.zeros_like(out_fast))

    # the backward pass agrees too
    out_fast.square().sum().backward()
    out_plain.square().sum().backward()
    for (name, a), (_, b) in zip(fast.named_parameters(), plain.named_parameters()):
        assert th.allclose(a.grad, b.grad, atol=1e-4, rtol=1e-3), name


def test_maze_planes_one_hot_direction_and_no_pixel_scaling():
    space = gym.spaces.Box(0, 255, (5, 5, 3), np.uint8)
    net = MazeNet(space)
    obs = np.zeros((1, 5, 5, 3), np.float32)
    obs[0, 0, :, 0] = 1  # a wall row
    obs[0, 1, 3, 1] = 1  # the goal
    obs[0, 4, 2, 2] = 3  # the agent, direction 2
    planes = net.planes(th.as_tensor(obs))
    assert planes.shape == (1, 7, 5, 5)
    assert planes[0, 0].sum() == 5 and planes[0, 0, 0].tolist() == [1] * 5
    assert planes[0, 1, 1, 3] == 1 and planes[0, 1].sum() == 1
    # code 0 (no agent) everywhere but the agent's cell, which holds code 3
    assert planes[0, 2].sum() == 24 and planes[0, 2, 4, 2] == 0
    assert planes[0, 2 + 3, 4, 2] == 1 and planes[0, 2 + 3].sum() == 1
    assert planes[0, 2:].sum(0).eq(1).all()  # exactly one code per cell


def test_maze_parameter_count_and_layouts():
    hwc = MazeNet(gym.spaces.Box(0, 255, (5, 5, 3), np.uint8), features_dim=256, channels=(16, 32))
    expected = conv_params(7, 16) + conv_params(16, 32) + 32 * 5 * 5 * 256 + 256
    assert sum(p.numel() for p in hwc.parameters()) == expected
    chw = MazeNet(gym.spaces.Box(0, 255, (3, 5, 5), np.uint8), features_dim=256, channels=(16, 32))
    chw.load_state_dict(hwc.state_dict())
    obs = th.randint(0, 2, (4, 5, 5, 3)).float()
    obs[..., 2] = th.randint(0, 5, (4, 5, 5)).float()
    assert th.allclose(hwc(obs), chw(obs.permute(0, 3, 1, 2)))
    # a full 15x15 grid works as well
    full = MazeNet(gym.spaces.Box(0, 255, (15, 15, 3), np.uint8))
    assert full(th.zeros(2, 15, 15, 3)).shape == (2, 256)
    with pytest.raises(ValueError, match="3 channels"):
        MazeNet(gym.spaces.Box(0, 255, (5, 5, 4), np.uint8))


def test_maze_net_tells_directions_apart():
    net = MazeNet(gym.spaces.Box(0, 255, (5, 5, 3), np.uint8))
    a = th.zeros(1, 5, 5, 3)
    b = a.clone()
    a[0, 2, 2, 2], b[0, 2, 2, 2] = 1, 2
    assert not th.allclose(net.planes(a), net.planes(b))
    assert not th.allclose(net(a), net(b))


@pytest.mark.parametrize(
    "shape, family, expected",
    [
        ((64, 64, 3), None, "impala"),
        ((3, 64, 64), None, "impala"),
        ((32, 40, 3), None, "impala"),
        ((5, 5, 3), None, "maze"),
        ((15, 15, 3), None, "maze"),
        ((31, 64, 3), None, "maze"),
        ((53, 53, 3), "maze", "maze"),  # a full-grid 51x51 maze: the family decides
        ((64, 64, 3), "procgen/coinrun", "impala"),
    ],
)
def test_auto_rule(shape, family, expected):
    assert select_network(gym.spaces.Box(0, 255, shape, np.uint8), family) == expected


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.Box(-1, 1, (4, 4), np.float32),
        gym.spaces.Box(0, 1, (64, 64, 3), np.float32),
        gym.spaces.Discrete(4),
    ],
)
def test_auto_rule_rejects_other_spaces(space):
    with pytest.raises(ValueError, match="set network to impala or maze"):
        select_network(space)
