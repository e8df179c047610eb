"""Files written by the reference `bpgenc` decode to exactly the pixels the reference `bpgdec` makes.

The vectors (../shared/testvectors/bpg) cover 4:2:0, 4:2:2, 4:4:4 and grey; BT.601, BT.709,
BT.2020, YCgCo and RGB; full and limited range; levels 1 and 8; q 22 to 37.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.codecs import get_codec, yuv


def _vectors(shared_dir: Path) -> list[Path]:
    folder = shared_dir / "testvectors" / "bpg"
    if not folder.is_dir():
        pytest.skip(f"BPG reference vectors not found in {folder}")
    found = sorted(folder.glob("v_*.bpg"))
    assert len(found) >= 25, f"expected the 25 reference vectors, found {len(found)}"
    return found


def _reference(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path.with_suffix(".bpgdec.png")).convert("RGB"))


def test_every_vector_decodes_bit_exactly(shared_dir: Path) -> None:
    bpg = get_codec("bpg")
    worst = {}
    for path in _vectors(shared_dir):
        out = bpg.decode(path.read_bytes())
        ref = _reference(path)
        assert out.shape == ref.shape, path.name
        worst[path.name] = int(np.abs(out.astype(np.int16) - ref).max())
    assert worst == dict.fromkeys(worst, 0)


def test_cli_decodes_vectors_bit_exactly(shared_dir: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("prepicm")
    picked = [p for p in _vectors(shared_dir) if "_420_q22" in p.name or "_422_q37" in p.name or "grey" in p.name]
    assert len(picked) == 5
    for path in picked:
        out = tmp_path / (path.stem + ".png")
        proc = subprocess.run([str(exe), "decode", str(path), "-o", str(out)], capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), _reference(path)), path.name


def test_a_two_tap_upsampler_would_fail(shared_dir: Path) -> None:
    """The vectors discriminate: bilinear chroma differs from bpgdec by several levels."""
    bpg = get_codec("bpg")
    path = next(p for p in _vectors(shared_dir) if p.name == "v_64x48_420_q22.bpg")
    header, planes = bpg.decode_planes(path.read_bytes())
    h, w = header.height, header.width

    def bilinear(c: np.ndarray) -> np.ndarray:
        up = np.repeat(np.repeat(c.astype(np.float32), 2, 0), 2, 1)[:h, :w]
        return np.clip(np.rint(up), 0, 255).astype(np.uint8)

    out = yuv.ycc_to_rgb(planes[0], bilinear(planes[1]), bilinear(planes[2]))
    assert np.abs(out.astype(np.int16) - _reference(path)).max() >= 4


@pytest.mark.parametrize(("color_space", "limited"), [(0, False), (0, True), (3, False), (4, True)])
def test_fixed_point_tables_match_the_formula(color_space: int, limited: bool) -> None:
    """The look-up tables equal bpgdec's per-pixel fixed-point expressions on every input."""
    kr, kb = yuv.YCBCR_SPACES[color_space]
    mult_c = float(255 << 22) / (224 if limited else 255)
    y_one = int(np.rint(float(255 << 22) / (219 if limited else 255)))
    off = (1 << 21) - (16 * y_one if limited else 0)
    c = [int(np.rint(f * mult_c)) for f in (2 * (1 - kr), 2 * kb * (1 - kb) / (1 - kb - kr),
                                             2 * kr * (1 - kr) / (1 - kb - kr), 2 * (1 - kb))]
    rng = np.random.default_rng(color_space)
    y, cb, cr = (rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(3))
    y[0, :3], cb[0, :3], cr[0, :3] = 255, (0, 255, 255), (255, 0, 255)  # the extremes
    out = yuv.ycc_to_rgb(y, cb, cr, color_space, limited).astype(np.int64)

    def c_expr(v: np.ndarray) -> np.ndarray:  # 32-bit wrap, arithmetic shift, clamp
        v = (v + (1 << 31)) % (1 << 32) - (1 << 31)
        return np.clip(v >> 22, 0, 255)

    yv, d, e = y.astype(np.int64) * y_one + off, cb.astype(np.int64) - 128, cr.astype(np.int64) - 128
    assert np.array_equal(out[..., 0], c_expr(yv + c[0] * e))
    assert np.array_equal(out[..., 1], c_expr(yv - c[1] * d - c[2] * e))
    assert np.array_equal(out[..., 2], c_expr(yv + c[3] * d))


def test_vvc_uses_the_same_upsampler(kodak_image: np.ndarray) -> None:
    vvc = get_codec("vvc")
    if vvc.unavailable_reason():
        pytest.skip(vvc.unavailable_reason())
    from shared.codecs.vvc import VvcCodec

    assert isinstance(vvc, VvcCodec)
    crop = np.ascontiguousarray(kodak_image[:37, :53])  # odd sizes: padded, size carried in an SEI
    data = vvc.encode(crop, 30)
    frame = vvc._decode_frame(data)
    y, cb, cr = (yuv.plane_array(p) for p in frame.planes)
    expected = yuv.yuv420_to_rgb(y[:37, :53], cb[:19, :27], cr[:19, :27])
    assert np.array_equal(vvc.decode(data), expected)
