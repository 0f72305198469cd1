"""The inner-mouth latent denoiser (model/mouth_fill.py, runtime/mouth_fill.py): a real forward pass and
save/load round trip on the tiny config, its training objective, and, on the bundled portrait, that
`mouth_fill: diffusion` changes pixels only inside the opened mouth's inner lips plus the feathered
margin."""
from __future__ import annotations

import pathlib

import cv2
import numpy as np
import pytest
import torch

from avatar_service.face.mesh import INNER_LIP, inter_ocular
from avatar_service.face.mouth_crop import MouthCrop, MouthCropConfig, inner_mask
from avatar_service.model.mouth_fill import MouthFillConfig, MouthFillModel

ASTRONAUT = pathlib.Path(__file__).resolve().parents[1] / "avatar_service" / "assets" / "astronaut.png"


def _tiny(seed: int = 0) -> MouthFillModel:
    torch.manual_seed(seed)
    return MouthFillModel(MouthFillConfig.tiny()).eval()


def _inputs(model: MouthFillModel, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    c, h, w = model.config.networks.latent_shape
    px = model.config.crop.px
    crop = torch.rand((2, 3, px, px), generator=g) * 2 - 1
    lips = 0.3 + 0.4 * torch.rand((2, 40, 2), generator=g)
    return crop, lips, torch.randn((2, c, h, w), generator=g)


def test_tiny_forward_pass_and_save_load_round_trip(tmp_path):
    model = _tiny()
    crop, lips, noise = _inputs(model)
    with torch.no_grad():
        z = model.encode(crop)
        out = model.decode(model.sample(z, z.flip(0), lips, noise))
    assert out.shape == crop.shape and torch.isfinite(out).all()
    # fp32 save: bit-exact, config included
    model.save_pretrained(tmp_path / "fp32", dtype=None)
    back = MouthFillModel.from_pretrained(tmp_path / "fp32")
    assert back.config == model.config
    with torch.no_grad():
        again = back.decode(back.sample(back.encode(crop), z.flip(0), lips, noise))
    assert torch.equal(out, again)
    # the shipped format is fp16 (half the file), loaded back into fp32 modules: close, not exact
    model.save_pretrained(tmp_path / "fp16")
    half = MouthFillModel.from_pretrained(tmp_path / "fp16")
    assert next(half.parameters()).dtype == torch.float32
    with torch.no_grad():
        close = half.decode(half.sample(half.encode(crop), z.flip(0), lips, noise))
    assert (close - out).abs().max() < 0.05


def test_onnx_graphs_draw_what_torch_draws(tmp_path):
    pytest.importorskip("onnxruntime")
    from avatar_service.runtime.export import export_fill_onnx
    from avatar_service.runtime.mouth_fill import FillNetworks

    # the graphs store fp16 weights (cast back to fp32 inside), as the shipped safetensors do
    model = MouthFillModel.from_pretrained(_tiny().save_pretrained(tmp_path / "fill"))
    crop, lips, noise = _inputs(model)
    torch_nets, onnx_nets = FillNetworks(model), FillNetworks(model, export_fill_onnx(model, tmp_path / "onnx"))
    assert onnx_nets.sessions is not None
    for i in range(2):  # the graphs are exported for one crop at a time, as the renderer runs them
        z_t, z_o = torch_nets.encode(crop[i:i + 1]), onnx_nets.encode(crop[i:i + 1])
        a = torch_nets.decode(torch_nets.sample(z_t, z_t, lips[i:i + 1], noise[i:i + 1]))
        b = onnx_nets.decode(onnx_nets.sample(z_o, z_o, lips[i:i + 1], noise[i:i + 1]))
        assert (a - b).abs().max() < 1e-3


def test_geometry_changes_the_sample():
    model = _tiny()
    crop, lips, noise = _inputs(model)
    with torch.no_grad():
        z = model.encode(crop)
        a = model.sample(z, z, lips, noise)
        b = model.sample(z, z, lips + torch.tensor([0.0, 0.08]), noise)  # the lips moved down
    assert not torch.allclose(a, b)


def test_training_objective_weights_the_inner_mouth():
    from avatar_service.training.mouth_fill import MouthFillObjective

    model = _tiny()
    obj = MouthFillObjective(model, max_t=600)
    c, h, w = model.config.networks.latent_shape
    g = torch.Generator().manual_seed(2)
    z_real, z_warp, z_ref = (torch.randn((4, c, h, w), generator=g) for _ in range(3))
    lips = 0.3 + 0.4 * torch.rand((4, 40, 2), generator=g)
    inner = torch.zeros((4, 1, h, w))
    inner[..., h // 2 - 1:h // 2 + 1, w // 4:3 * w // 4] = 1.0
    torch.manual_seed(0)
    loss, logs = obj(z_real, z_warp, z_ref, lips, 0.2 + 4 * inner)
    loss.backward()
    assert torch.isfinite(loss) and set(logs) == {"loss", "mse"}
    assert model.denoiser.unet.conv_in.weight.grad.abs().sum() > 0
    assert model.geometry.net[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.autoencoder.parameters())  # frozen: the generator's own


def test_mouth_crop_is_a_similarity_about_the_inner_lips():
    rng = np.random.default_rng(0)
    mesh = rng.uniform(40, 200, (478, 3)).astype(np.float32)
    mesh[33, :2], mesh[263, :2] = (80, 90), (160, 100)  # a rolled head
    cfg = MouthCropConfig()
    crop = MouthCrop.of(mesh, cfg)
    centre = crop.points(mesh[list(INNER_LIP)].mean(0, keepdims=True))[0]
    assert np.allclose(centre, cfg.px / 2, atol=1e-6)
    eyes = crop.points(mesh[[33, 263]])
    assert abs(eyes[1, 1] - eyes[0, 1]) < 1e-6  # eye line level
    assert np.linalg.norm(eyes[1] - eyes[0]) == pytest.approx(cfg.px / cfg.side_iod, rel=1e-6)
    assert inter_ocular(mesh) > 0


def test_diffusion_fill_changes_pixels_only_inside_the_mouth_and_margin(tmp_path):
    pytest.importorskip("mediapipe", reason="the warp renderer measures faces with mediapipe's face mesh")
    from avatar_service.face.warp import WarpConfig
    from avatar_service.runtime.warp_renderer import MotionModel, WarpFace, measure_mesh

    img = cv2.imread(str(ASTRONAUT))[..., ::-1]
    portrait = np.ascontiguousarray(cv2.resize(img[10:202, 90:282], (256, 256), interpolation=cv2.INTER_CUBIC))
    mesh = measure_mesh(portrait)
    basis = MotionModel.default().basis
    # a random tiny fill model: its output is nonsense, which is the point (wherever it lands shows)
    folder = _tiny(seed=5).save_pretrained(tmp_path / "fill", dtype=None)
    plain = WarpFace(portrait, mesh, basis)
    diffusion = WarpFace(portrait, mesh, basis, WarpConfig(mouth_fill="diffusion", fill_model=str(folder)))
    opened = plain.closed + basis.open_direction * 0.3 - plain.coeffs  # 0.3 inter-ocular distances open
    target = plain.target(opened)
    assert plain.interior.strength(target) > 0  # the mouth opens wider than the portrait's own
    a = plain.render_delta(opened).frame
    b = diffusion.render_delta(opened).frame
    lips = target[list(INNER_LIP), :2]
    cfg = MouthCropConfig()
    allowed = inner_mask(lips, a.shape[:2], dilate_px=cfg.margin * inter_ocular(target) + 1.5) > 0
    changed = np.abs(a.astype(int) - b).max(axis=2) > 0
    assert changed.any() and changed[allowed].mean() > 0.3  # the interior is redrawn
    assert not changed[~allowed].any()  # and nothing outside the lips' hull and margin
    # a closed mouth is never redrawn
    closed = plain.closed - plain.coeffs
    assert np.array_equal(plain.render_delta(closed).frame, diffusion.render_delta(closed).frame)
