"""The warp renderer's parts on a real portrait: the 3D mesh and its canonical frame, the motion basis,
the mesh warp (the person's own pixels, nothing outside the face changes), the mouth interior, and the
detail metric that sees blur."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("mediapipe", reason="the warp renderer measures faces with mediapipe's face mesh")

from avatar_service.evaluation import metrics  # noqa: E402
from avatar_service.face.mesh import (CHIN, INNER_LOWER, INNER_UPPER, NOSE_TIP, STABLE, Similarity, fit_similarity,  # noqa: E402
                                      mouth_opening)
from avatar_service.face.motion import MotionBasis, ridge  # noqa: E402
from avatar_service.face.warp import MeshWarp  # noqa: E402
from avatar_service.runtime.warp_renderer import WarpFace, bundled_face, measure_mesh  # noqa: E402



@pytest.fixture(scope="module")
def portrait():
    """The bundled portrait's face window at 256 px, as an avatar texture."""
    return bundled_face(256, cv2.INTER_CUBIC)


@pytest.fixture(scope="module")
def mesh(portrait):
    return measure_mesh(portrait)


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


def _jaw(mesh: np.ndarray, amount: float) -> np.ndarray:
    """Drop everything below the upper inner lip by `amount` x the lip-to-chin distance, fading upwards."""
    out = mesh.copy()
    top, chin = mesh[INNER_UPPER, 1], mesh[CHIN, 1]
    w = np.clip((mesh[:, 1] - top) / (chin - top), 0, 1)
    w[INNER_UPPER] = 0
    out[:, 1] += amount * (chin - top) * np.where(mesh[:, 1] > top, np.maximum(w, 0.35), 0)
    return out


def _pose(mesh: np.ndarray, rng) -> np.ndarray:
    sim = Similarity(float(rng.uniform(0.8, 1.2)), _rotation(*rng.uniform(-0.25, 0.25, 3)), rng.uniform(-20, 20, 3))
    return sim.apply(mesh)


def test_similarity_fit_recovers_a_known_pose(mesh):
    rng = np.random.default_rng(0)
    moved = _pose(mesh, rng)
    sim = fit_similarity(mesh, moved)
    assert np.abs(sim.apply(mesh) - moved).max() < 1e-3
    assert np.abs(sim.inverse().apply(moved) - mesh).max() < 1e-3


def test_motion_basis_reads_jaw_motion_and_ignores_head_pose(mesh, tmp_path):
    rng = np.random.default_rng(1)
    clips = []
    for _ in range(4):  # four "clips", each with its own head poses and jaw motion
        amounts = rng.uniform(0, 0.3, 40)
        clips.append(np.stack([_pose(_jaw(mesh, a), rng) for a in amounts]))
    basis = MotionBasis.fit(clips, n_components=3)
    assert NOSE_TIP not in basis.vertices and not set(STABLE) & set(basis.vertices)
    assert CHIN in basis.vertices and INNER_LOWER in basis.vertices
    # the same jaw under a different head pose reads the same; a different jaw reads differently
    a = basis.coefficients(_pose(_jaw(mesh, 0.2), rng))
    b = basis.coefficients(_pose(_jaw(mesh, 0.2), rng))
    c = basis.coefficients(_pose(_jaw(mesh, 0.0), rng))
    assert np.abs(a - b).max() < 0.05 * np.abs(a - c).max()
    # moving a face by a measured change lands on the measured face (head pose kept)
    target = basis.target_mesh(mesh, basis.coefficients(_jaw(mesh, 0.2)) - basis.coefficients(mesh))
    iod = np.linalg.norm(mesh[33, :2] - mesh[263, :2])
    assert np.abs(target[basis.vertices, :2] - _jaw(mesh, 0.2)[basis.vertices, :2]).max() < 0.02 * iod
    # an open mouth's closed estimate is less open than it
    assert basis.open_direction @ (basis.closed_coefficients(_jaw(mesh, 0.3)) - basis.coefficients(_jaw(mesh, 0.3))) < 0
    # ... and lands near the clips' closed mouths (their least open fifth: jaw ~0.03)
    closed = basis.closed_coefficients(_pose(_jaw(mesh, 0.3), rng))
    assert np.linalg.norm(closed - basis.coefficients(_jaw(mesh, 0.03))) < 0.3 * np.linalg.norm(
        closed - basis.coefficients(_jaw(mesh, 0.3)))
    basis.save_pretrained(tmp_path)
    again = MotionBasis.from_pretrained(tmp_path)
    assert np.array_equal(again.components, basis.components) and again.closed_opening == basis.closed_opening
    assert np.array_equal(again.closed_map, basis.closed_map)



def test_closed_map_is_shrunk_and_bases_saved_with_the_linear_map_still_load(mesh, tmp_path):
    rng = np.random.default_rng(2)
    x = np.hstack([rng.normal(size=(200, 3)), np.ones((200, 1))])
    y = x @ rng.normal(size=(4, 2))
    assert np.allclose(ridge(x, y, 0.0), np.linalg.lstsq(x, y, rcond=None)[0], atol=1e-8)
    flat = ridge(x, y, 1e6)  # all shrinkage: only the unshrunk constant column is left, at the mean
    assert np.abs(flat[:3]).max() < 1e-4 and np.allclose(flat[3], y.mean(0), atol=1e-3)
    clips = [np.stack([_pose(_jaw(mesh, a), rng) for a in rng.uniform(0, 0.3, 40)]) for _ in range(4)]
    basis = MotionBasis.fit(clips, n_components=3)
    assert basis.closed_map.shape == (2 * 3 + 3, 3)  # [c, opening, 1, opening^2, c * opening]
    # a basis saved with the linear map ([c, opening, 1]) estimates with it, as it did
    linear = rng.normal(size=(3 + 2, 3)).astype(np.float32)
    old = MotionBasis(**{**vars(basis), "closed_map": linear})
    old.save_pretrained(tmp_path)
    face = _pose(_jaw(mesh, 0.2), rng)
    row = np.concatenate([old.coefficients(face), [mouth_opening(face), 1.0]])
    assert np.allclose(MotionBasis.from_pretrained(tmp_path).closed_coefficients(face), row @ linear, atol=1e-5)


def test_mesh_warp_moves_the_mouth_and_nothing_outside_the_face(portrait, mesh):
    moving = np.flatnonzero(mesh[:468, 1] > mesh[NOSE_TIP, 1])
    warp = MeshWarp(portrait, mesh, moving)
    assert np.array_equal(warp.warp(mesh).frame, portrait)  # the identity target changes no pixel
    opened = _jaw(mesh, 0.25)
    res = warp.warp(opened)
    x, y, w, h = res.rect
    outside = np.ones(portrait.shape[:2], bool)
    outside[y:y + h, x:x + w] = False
    assert np.array_equal(res.frame[outside], portrait[outside])  # background, hair, clothes: same pixels
    # the face mesh sees the jaw dropped (mediapipe reports a chin's motion damped, to about half)
    seen = measure_mesh(res.frame)
    assert seen[CHIN, 1] - mesh[CHIN, 1] > 0.3 * (opened[CHIN, 1] - mesh[CHIN, 1]) > 1
    assert mouth_opening(seen) > mouth_opening(mesh) + 0.03


def test_warp_face_closes_and_opens_the_portraits_own_mouth(portrait, mesh):
    rng = np.random.default_rng(3)
    # the portrait smiles with its mouth open: its clips close it (negative jaw drop) as well as open it
    clips = [np.stack([_pose(_jaw(mesh, a), rng) for a in rng.uniform(-0.4, 0.3, 40)]) for _ in range(4)]
    basis = MotionBasis.fit(clips, n_components=2)
    face = WarpFace(portrait, mesh, basis)
    closed = measure_mesh(face.render(np.zeros(2)).frame)
    along = np.sign(basis.open_direction[0])  # component 0 is the jaw: push it the opening way
    opened = measure_mesh(face.render(np.array([3.0 * along, 0.0])).frame)
    assert mouth_opening(closed) < mouth_opening(mesh) < mouth_opening(opened)


def test_an_opening_smile_keeps_its_own_upper_teeth_above_a_dark_cavity(portrait, mesh):
    """The portrait smiles showing its upper teeth: opened by the warp, the teeth stay under the upper lip as the
    portrait's own pixels (not stretched, not a flat colour) and the new gap below them is dark."""
    from avatar_service.face.mesh import INNER_LIP
    from avatar_service.face.warp import MouthInterior

    interior = MouthInterior(portrait, mesh)
    assert interior.source_edges is not None and 0.6 <= interior.split <= 0.9  # its teeth read as upper teeth
    target = _jaw(mesh, 0.25)
    face = WarpFace(portrait, mesh, MotionBasis.fit([np.stack([_jaw(mesh, a) for a in np.linspace(-0.2, 0.3, 12)])] * 2, 1))
    out = face.render_target(target).frame.astype(np.float32)
    cols = np.arange(int(mesh[INNER_UPPER, 0]) - 3, int(mesh[INNER_UPPER, 0]) + 4)
    teeth_rows = np.arange(int(round(mesh[INNER_UPPER, 1])) + 2, int(round(mesh[INNER_UPPER, 1])) + 5)
    source_teeth = portrait[teeth_rows][:, cols].astype(np.float32)
    # the same rows under the upper lip (which the jaw drop does not move): the portrait's own teeth
    assert np.abs(out[teeth_rows][:, cols] - source_teeth).mean() < 12
    gap_row = int(round(0.5 * (mesh[INNER_UPPER, 1] + interior.split * (mesh[INNER_LOWER, 1] - mesh[INNER_UPPER, 1])
                               + target[INNER_LOWER, 1])))
    assert out[gap_row, cols].mean() < 0.5 * source_teeth.mean()  # cavity where the jaw opened
    lips = mesh[list(INNER_LIP), :2]
    dark = portrait.copy()
    cv2.fillPoly(dark, [np.round(lips).astype(np.int32)], (40, 20, 20))  # the same mouth, no teeth showing
    assert MouthInterior(dark, mesh).source_edges is None  # nothing of its own: the plain teeth edge


def test_detail_sees_a_blurred_mouth(portrait, mesh):
    frames = np.repeat(portrait[None], 3, 0)
    meshes = np.repeat(mesh[None, :, :2], 3, 0)
    blurred = frames.copy()
    y0 = int(mesh[NOSE_TIP, 1])
    blurred[:, y0:] = np.stack([cv2.GaussianBlur(f[y0:], (0, 0), 3) for f in frames])
    assert metrics.detail(frames, frames, meshes) == pytest.approx(1.0)
    assert metrics.detail(blurred, frames, meshes) < 0.8


def test_an_avatars_warp_faces_stay_bounded_over_a_long_idle_loop(portrait, mesh, monkeypatch):
    import types

    from avatar_service.runtime import renderer
    from avatar_service.runtime.warp_renderer import MotionModel

    monkeypatch.setattr(renderer, "WARP_FACES_PER_AVATAR", 3)
    poses = 8
    avatar = types.SimpleNamespace(textures=np.repeat(portrait[None], poses, 0), meshes=np.repeat(mesh[None], poses, 0),
                                   derived={})
    warp = renderer.WarpRenderer(MotionModel.default(), features=None)
    first = warp.face(avatar, 0)
    assert warp.face(avatar, 0) is first  # kept while in use
    for frame in range(3 * poses):  # an idle loop longer than the cap, three times round
        warp.face(avatar, frame % poses)
    assert len(avatar.derived["warp"]) == 3
    assert warp.face(avatar, 0) is not first  # dropped, built again when its pose comes round
    assert warp.face(avatar, 0).render(np.zeros(len(MotionModel.default().basis.std))).frame.shape == portrait.shape


def test_a_mouth_shut_from_a_smile_shows_a_dark_seam_not_squeezed_teeth(portrait, mesh):
    """Shutting the smiling portrait's mouth squeezes its teeth into a gap a pixel or two high; the warp alone
    samples single rows of them (a dashed line of bright specks); the interior draws a closed mouth's seam."""
    from avatar_service.face.mesh import INNER_LIP
    from avatar_service.face.warp import InteriorConfig, MouthInterior, WarpConfig, _edges

    gap = mesh[INNER_LOWER, 1] - mesh[INNER_UPPER, 1]
    shut = mesh.copy()
    below = mesh[:, 1] > mesh[INNER_UPPER, 1]
    shut[below, 1] -= np.clip(gap - 1.0, 0, None) * np.clip(1.0 - (mesh[below, 1] - mesh[INNER_LOWER, 1]) / (2 * gap), 0.3, 1)
    warper = MeshWarp(portrait, mesh, np.flatnonzero(below), WarpConfig())
    xs, up, lo = _edges(shut[list(INNER_LIP), :2].astype(np.float64))
    cols = np.arange(int(xs[0]) + 6, int(xs[-1]) - 5)
    mid = np.round(np.interp(cols, xs, 0.5 * (up + lo))).astype(int)  # where the shut lips meet
    seam = {}
    for name, cfg in (("seam", InteriorConfig()), ("squeezed", InteriorConfig(seam_from=1.0))):
        frame = warper.warp(shut).frame
        MouthInterior(portrait, mesh, cfg).fill(frame, shut)
        # each column's darkest pixel about the shut lips' meeting line: the seam if there is one
        grey = frame.astype(np.float32).mean(-1)
        seam[name] = np.stack([grey[mid + d, cols] for d in (-1, 0, 1)]).min(0)
    lips = MouthInterior(portrait, mesh).lips.mean()
    print({k: (round(float(v.mean()), 1), round(float(v.max()), 1)) for k, v in seam.items()}, "lips", lips)
    assert (seam["squeezed"] > lips + 10).sum() >= 3  # the teeth specks this replaces, brighter than the lips
    assert seam["seam"].max() < lips - 10 and seam["seam"].mean() < seam["squeezed"].mean() - 20  # a seam, darker
