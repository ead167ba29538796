"""Augmentations: shape, dtype and range kept, seeded determinism, identities, hand-checked
semantics, the registry, and CPU/GPU agreement (with CUDA only)."""

import itertools

import pytest
import torch as th
from torch.nn import functional as F

from heldout.agents import augmentations as A
from heldout.agents.augmentations import colour

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BUILT_IN = ["colour_jitter", "crop", "cutout", "cutout_colour", "dropout", "flip", "grayscale", "random_conv",
            "rotate", "translate"]  # fmt: skip
RANDOM = [n for n in BUILT_IN if n != "grayscale"]  # grayscale (p=1, as published) draws nothing that matters


def frames(dtype=th.uint8, n=6, side=16, seed=0) -> th.Tensor:
    g = th.Generator().manual_seed(seed)
    x = th.randint(0, 256, (n, side, side, 3), generator=g, dtype=th.uint8)
    return x if dtype == th.uint8 else x.to(dtype)


def gen(seed=1) -> th.Generator:
    return th.Generator().manual_seed(seed)


def test_registry_lists_the_built_in_augmentations():
    assert A.names() == BUILT_IN
    assert A.valid_on_grids() == ["crop", "cutout", "dropout", "translate"]
    assert set(A.PUBLISHED) <= set(A.names()) and len(A.PUBLISHED) == 8


@pytest.mark.parametrize("dtype", [th.uint8, th.float32])
@pytest.mark.parametrize("name", BUILT_IN)
def test_shape_dtype_range_and_seeded_determinism(name, dtype):
    x = frames(dtype)
    before = x.clone()
    global_rng = th.get_rng_state()
    a = A.get(name)(x, gen(1))
    assert a.shape == x.shape and a.dtype == dtype and a.is_contiguous()
    unclamped = name == "random_conv" and dtype != th.uint8  # published: float outputs unclamped
    if unclamped:
        a = a.clamp(0, 255)
    assert float(a.min()) >= 0 and float(a.max()) <= 255
    assert th.equal(x, before), "the input batch must not be modified"
    assert th.equal(th.get_rng_state(), global_rng), "augmentations must not touch torch's global RNG"
    assert th.equal(A.get(name)(x, gen(1)).clamp(0, 255) if unclamped else A.get(name)(x, gen(1)), a)
    if name in RANDOM:
        assert not th.equal(A.get(name)(x, gen(2)), a)
    if dtype == th.float32:  # the same values as the uint8 path, before rounding
        assert th.allclose(a.round(), A.get(name)(frames(th.uint8), gen(1)).float(), atol=1.0)


@pytest.mark.parametrize(
    "name, params",
    [("crop", {"pad": 0}), ("translate", {"max_shift": 0}), ("rotate", {"quarter_turns": [0]}), ("flip", {"p": 0.0}),
     ("cutout", {"min_frac": 0.0, "max_frac": 0.0}), ("cutout_colour", {"min_frac": 0.0, "max_frac": 0.0}),
     ("dropout", {"p": 0.0}), ("grayscale", {"p": 0.0}),
     ("colour_jitter", {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "hue": 0.0})],
)  # fmt: skip
def test_identity_settings(name, params):
    x = frames()
    assert th.equal(A.get(name)(x, gen(), **params), x)
    xf = frames(th.float32)
    assert th.allclose(A.get(name)(xf, gen(), **params), xf, atol=1e-3)


def _offsets_matching(out: th.Tensor, x: th.Tensor, pad: int, mode: str) -> list[tuple[int, int]]:
    """Every (dy, dx) whose pad-and-crop of ``x`` (one HWC image) equals ``out``."""
    chw = x.permute(2, 0, 1)[None].float()
    padded = F.pad(chw, (pad,) * 4, mode=mode)[0].permute(1, 2, 0)
    h, w = x.shape[:2]
    return [(dy, dx) for dy, dx in itertools.product(range(2 * pad + 1), repeat=2)
            if th.equal(padded[dy:dy + h, dx:dx + w], out.float())]  # fmt: skip


@pytest.mark.parametrize("name, mode", [("crop", "replicate"), ("translate", "constant")])
def test_crop_and_translate_are_pad_then_crop(name, mode):
    x = frames(n=8, side=7)
    out = A.get(name)(x, gen(), **({"pad": 2} if name == "crop" else {"max_shift": 2}))
    offsets = [_offsets_matching(o, i, 2, mode) for o, i in zip(out, x)]
    assert all(offsets), "every image must be a crop of its padded original"
    assert len({o[0] for o in offsets}) > 1, "offsets are drawn per image"


def test_default_shift_scales_with_the_side():
    assert A.get("crop").defaults == {"pad": None}
    x = frames(n=64, side=64)
    out = A.get("translate")(x, gen())
    zero_rows = [int((o == 0).all(-1).all(-1).sum()) for o in out]  # rows shifted in from outside
    assert max(zero_rows) == 12  # 12 px at 64 px, as published


def test_flip_rotate_pick_per_image():
    x = frames(n=32)
    flipped = A.get("flip")(x, gen())
    kinds = [0 if th.equal(f, i) else 1 if th.equal(f, i.flip(0)) else -1 for f, i in zip(flipped, x)]
    assert -1 not in kinds and 0 < sum(kinds) < 32  # upside down, with probability 1/2
    left_right = A.get("flip")(x, gen(), p=1.0, horizontal=True)
    assert th.equal(left_right, x.flip(2))
    rotated = A.get("rotate")(x, gen())
    turns = [next(k for k in range(4) if th.equal(r, th.rot90(i, k, dims=(0, 1)))) for r, i in zip(rotated, x)]
    assert set(turns) == {0, 1, 2, 3}
    only_half = A.get("rotate")(x, gen(), quarter_turns=[2])
    assert th.equal(only_half, x.flip(1).flip(2))
    with pytest.raises(ValueError, match="square"):
        A.get("rotate")(th.zeros(2, 4, 6, 3, dtype=th.uint8), gen())


def _box(hidden: th.Tensor) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the one solid box of True in an (H, W) mask."""
    rows, cols = hidden.any(1).nonzero().flatten(), hidden.any(0).nonzero().flatten()
    top, left, h, w = int(rows[0]), int(cols[0]), len(rows), len(cols)
    assert int(hidden.sum()) == h * w and int(rows[-1]) - top == h - 1 and int(cols[-1]) - left == w - 1
    return top, left, h, w


def test_cutout_boxes_lie_in_the_published_region():
    # auto-drac data_augs.py 59-69: sides h, w in 7..21; img[:, 12 + h : 12 + 2h, 24 + w : 24 + 2w] = 0,
    # cut at the right edge (columns end at 64): rows 19..53, columns 31..63
    x = th.full((400, 64, 64, 3), 200, dtype=th.uint8)
    for name in ("cutout", "cutout_colour"):
        out = A.get(name)(x, gen())
        sides = set()
        for img in out:
            top, left, h, w = _box((img != 200).any(-1) if name == "cutout_colour" else (img == 0).all(-1))
            side_h, side_w = top - 12, left - 24  # the drawn sides
            assert 7 <= side_h <= 21 and 7 <= side_w <= 21
            assert h == side_h and w == min(side_w, 64 - left)
            sides.add(side_h)
        assert sides == set(range(7, 22))  # every side drawn over 400 images
    anywhere = A.get("cutout")(x, gen(), placement="anywhere")
    tops = {_box((img == 0).all(-1))[0] for img in anywhere}
    assert min(tops) < 19  # the earlier form: anywhere in the image
    with pytest.raises(ValueError, match="placement must be one of published | anywhere"):
        A.get("cutout")(x[:1], gen(), placement="centre")


def test_grayscale_and_hsv_by_hand():
    x = th.tensor([[[[10, 20, 30]]]], dtype=th.uint8)
    assert A.get("grayscale")(x, gen()).flatten().tolist() == [18, 18, 18]  # 0.299*10 + 0.587*20 + 0.114*30
    rgb = th.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.5], [0.2, 0.4, 0.8]])
    hsv = colour.rgb_to_hsv(rgb.T).T  # the functions take channel planes first
    assert th.allclose(hsv[:3], th.tensor([[0.0, 1.0, 1.0], [1 / 3, 1.0, 1.0], [0.0, 0.0, 0.5]]))
    assert th.allclose(hsv[3], th.tensor([0.6111111, 0.75, 0.8]))  # h = (4 + (0.2-0.4)/0.6) / 6
    assert th.allclose(colour.hsv_to_rgb(hsv.T).T, rgb, atol=1e-6)
    round_trip = th.rand(3, 1000, generator=gen())
    assert th.allclose(colour.hsv_to_rgb(colour.rgb_to_hsv(round_trip)), round_trip, atol=1e-5)


def test_colour_jitter_published_hue_range_and_random_order():
    # pure red (hue 0, S = V = 1): only the hue moves; published shift U(-0.5, 0.5) * 255/360 of a turn
    red = th.zeros((2000, 1, 1, 3))
    red[..., 0] = 255.0
    out = A.get("colour_jitter")(red, gen(), brightness=0.0, contrast=0.0, saturation=0.0)
    hue = colour.rgb_to_hsv(out.reshape(-1, 3).T / 255)[0]
    turn = th.where(hue > 0.5, hue - 1, hue)  # signed shift
    limit = 0.5 * 255 / 360
    assert float(turn.abs().max()) <= limit + 1e-4 and float(turn.abs().max()) > 0.95 * limit
    assert abs(float(turn.mean())) < 0.02  # uniform, centred
    old = A.get("colour_jitter")(red, gen(), brightness=0.0, contrast=0.0, saturation=0.0, recipe="torchvision")
    old_hue = colour.rgb_to_hsv(old.reshape(-1, 3).T / 255)[0]
    assert float(th.where(old_hue > 0.5, old_hue - 1, old_hue).abs().max()) > 0.45  # the full +-0.5 turn
    # order: contrast (each channel blended with its own mean) before or after the HSV steps, one coin per
    # batch. With brightness 1.4 clamping V first, contrast afterwards sees other means: the two orders differ.
    x = frames(n=1, side=8).float()
    results = {tuple(A.get("colour_jitter")(x, gen(seed), hue=0.0, saturation=0.0).flatten().tolist())
               for seed in range(12)}  # fmt: skip
    assert len(results) > 1
    with pytest.raises(ValueError, match="recipe must be one of published | torchvision"):
        A.get("colour_jitter")(x, gen(), recipe="kornia")


def test_colour_jitter_factors_stay_in_range():
    x = th.full((200, 4, 4, 3), 100, dtype=th.uint8)
    bright = A.get("colour_jitter")(x, gen(), contrast=0.0, saturation=0.0, hue=0.0)
    assert {int(v) for v in bright[:, 0, 0, 0]} <= set(range(60, 141))  # 100 * [0.6, 1.4]
    assert float(bright.float().std()) > 5


def test_random_conv_is_one_xavier_conv_per_image():
    x = frames(n=4, side=8)
    out = A.get("random_conv")(x, gen(5))
    g = gen(5)
    weight = th.randn((4 * 3, 3, 3, 3), generator=g) * (1 / 27) ** 0.5
    for i in range(4):
        ref = F.conv2d(x[i : i + 1].permute(0, 3, 1, 2).float(), weight[3 * i : 3 * i + 3], padding=1)
        expected = ref.clamp(0, 255).round().permute(0, 2, 3, 1)[0]
        assert th.allclose(out[i].float(), expected, atol=1.0)


def test_random_conv_float_outputs_are_unclamped_and_go_negative():
    # published (data_augs.py 248-270): Xavier-normal 3x3 conv per image, output used as it is
    x = frames(th.float32, n=4, side=8)
    out = A.get("random_conv")(x, gen(5))
    weight = th.randn((4 * 3, 3, 3, 3), generator=gen(5)) * (1 / 27) ** 0.5
    for i in range(4):
        ref = F.conv2d(x[i : i + 1].permute(0, 3, 1, 2), weight[3 * i : 3 * i + 3], padding=1)
        assert th.allclose(out[i], ref.permute(0, 2, 3, 1)[0], atol=1e-3)
    assert float(out.min()) < 0
    clamped = A.get("random_conv")(x, gen(5), clamp=True)
    assert float(clamped.min()) >= 0 and float(clamped.max()) <= 255


def test_grid_augmentations_keep_codes():
    g = gen()
    grid = th.zeros((50, 5, 5, 3), dtype=th.uint8)
    grid[..., 0] = th.randint(0, 2, (50, 5, 5), generator=g).to(th.uint8)
    grid[:, 0, 2, 1] = 1
    grid[:, 4, 2, 2] = th.randint(1, 5, (50,), generator=g).to(th.uint8)
    for name in A.valid_on_grids():
        out = A.get(name)(grid, gen())
        assert set(out[..., :2].unique().tolist()) <= {0, 1} and set(out[..., 2].unique().tolist()) <= set(range(5))
        assert not th.equal(out, grid)


def test_register_your_own_and_the_errors():
    def invert(x: th.Tensor, generator: th.Generator, *, top: int = 255) -> th.Tensor:
        return (top - x.float()).to(x.dtype)

    try:
        entry = A.register("invert_test", invert)
        assert "invert_test" in A.names() and entry.defaults == {"top": 255}
        assert th.equal(A.get("invert_test")(frames(), gen()), 255 - frames())
        with pytest.raises(ValueError, match="already registered"):
            A.register("invert_test", lambda x, g: x)
        with pytest.raises(ValueError, match="not registered as valid on symbolic grids"):
            A.check_on_grids(["invert_test"])
    finally:
        A.registry._AUGMENTATIONS.pop("invert_test", None)
    with pytest.raises(KeyError, match="Did you mean 'crop'"):
        A.get("corp")
    with pytest.raises(ValueError, match="has no setting 'pdd'; its settings: pad"):
        A.check_params("crop", {"pdd": 3})
    with pytest.raises(ValueError, match="bad settings for augmentation 'cutout'.*max_frac"):
        A.check_params("cutout", {"max_frac": 2})
    with pytest.raises(ValueError, match="'flip' is not valid on maze.*turn left.*valid there: crop, cutout, dropout"):
        A.check_on_grids(["cutout", "flip"])
    with pytest.raises(ValueError, match="RGB"):
        A.get("grayscale")(th.zeros(2, 5, 5, 1, dtype=th.uint8), gen())
    with pytest.raises(ValueError, match="uint8 or float"):
        A.get("crop")(th.zeros(2, 5, 5, 3, dtype=th.int64), gen())


@pytest.mark.skipif(not th.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [th.uint8, th.float32])
@pytest.mark.parametrize("name", BUILT_IN)
def test_cpu_and_gpu_agree(name, dtype):
    x = frames(dtype, n=16, side=64)
    cpu = A.get(name)(x, gen(3))
    gpu = A.get(name)(x.cuda(), gen(3))
    assert gpu.device.type == "cuda" and gpu.dtype == dtype
    close = th.isclose(cpu.float(), gpu.cpu().float(), atol=1e-3 if dtype == th.float32 else 1.0)
    assert float(close.float().mean()) > 0.999  # rounding of a few float results may differ by one level
