"""Mouth geometry as an explicit per-frame signal: a small PCA basis of lower-face motion.

A frame's lower face (lips, jaw, chin, cheeks: the mesh vertices below the nose tip) is read in the
canonical face frame (face/mesh.py: head pose removed, units of inter-ocular distance) and projected on
`components`. Coefficients are *absolute* (relative to the training people's mean lower face), so the
difference of two frames' coefficients is their motion; identity mostly cancels in that difference.

Motion is spoken of relative to the person's **closed mouth**: the per-clip mean over its least open
frames. The closed mouth of a single portrait (whose mouth may be open, mid-word or in a grin) is
estimated by `closed_map`, a ridge regression from one frame's coefficients and inner-lip opening (and
their products with the opening: how a mouth opens depends on its shape) to its clip's closed mouth,
learnt over every frame of the training clips. The map has about as many weights as the training clips
have numbers to fit, so it is shrunk (`closed_ridge`, chosen by cross-validation by person; without it,
lips put on held-out people's closed mouths were 13% nearer the real ones than a still face's, with it 17%).
Bases saved with the plain linear map, or before it (`open_direction`, the coefficient change per unit of
opening, taken out along the measured opening) load and behave as they did.

Measured from any real video (an oracle for evaluation), predicted from speech (model/motion.py).
"""
from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from avatar_service.face.mesh import (EYE_CORNERS, INNER_LOWER, INNER_UPPER, NOSE_TIP, STABLE, N_VERTICES, Similarity,
                                      fit_similarity, inter_ocular, normalised_template)

CONFIG_NAME, WEIGHTS_NAME = "motion_basis.json", "motion_basis.safetensors"


@dataclasses.dataclass
class MotionBasis:
    vertices: np.ndarray  # (V,) int: the lower-face vertices that move
    template: np.ndarray  # (478, 3) the canonical frame (unit inter-ocular distance)
    mean: np.ndarray  # (V*3,) training people's mean lower face, canonical
    components: np.ndarray  # (K, V*3) orthonormal rows
    std: np.ndarray  # (K,) spread of each coefficient about each person's own mean (speech motion)
    open_direction: np.ndarray  # (K,) coefficient change per unit inner-lip opening
    closed_opening: float = 0.02  # typical inner-lip opening of a closed mouth
    closed_map: np.ndarray | None = None  # (F, K): `closed_features` -> the closed mouth's coefficients

    @property
    def n_components(self) -> int:
        return len(self.components)

    # -- measuring ----------------------------------------------------------------------------------
    def canonical(self, mesh: np.ndarray) -> tuple[np.ndarray, Similarity]:
        """(478, 3) image mesh -> canonical mesh and the similarity image -> canonical."""
        sim = fit_similarity(mesh[list(STABLE)], self.template[list(STABLE)])
        return sim.apply(mesh), sim

    def coefficients(self, mesh: np.ndarray) -> np.ndarray:
        """(K,) absolute coefficients of one image mesh (or (T, 478, 3) -> (T, K))."""
        meshes = np.asarray(mesh, np.float32)
        single = meshes.ndim == 2
        meshes = meshes[None] if single else meshes
        shapes = np.stack([self.canonical(m)[0][self.vertices].reshape(-1) for m in meshes])
        c = (shapes - self.mean) @ self.components.T
        return c[0] if single else c

    def closed_coefficients(self, mesh: np.ndarray) -> np.ndarray:
        """This face's estimated closed-mouth coefficients, from one image mesh: its coefficients with
        the measured opening taken out along `open_direction`."""
        c = self.coefficients(mesh)
        opening = np.linalg.norm(mesh[INNER_UPPER, :2] - mesh[INNER_LOWER, :2]) / inter_ocular(mesh)
        if self.closed_map is not None:
            quadratic = len(self.closed_map) > self.n_components + 2  # bases saved with the linear map
            row = closed_features(c[None], np.array([opening]), quadratic)[0]
            return (row @ self.closed_map).astype(np.float32)
        return c - self.open_direction * max(0.0, float(opening) - self.closed_opening)

    # -- driving ------------------------------------------------------------------------------------
    def displacement(self, delta: np.ndarray) -> np.ndarray:
        """(K,) or (B, K) coefficient change -> (V, 3) or (B, V, 3) canonical vertex displacement."""
        d = np.asarray(delta, np.float32) @ self.components
        return d.reshape(d.shape[:-1] + (len(self.vertices), 3))

    def target_mesh(self, mesh: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """The image mesh with its lower face moved by a coefficient change (head pose kept)."""
        _, sim = self.canonical(mesh)
        out = np.array(mesh, np.float32, copy=True)
        out[self.vertices] += sim.inverse().apply_vectors(self.displacement(delta))
        return out

    # -- fitting ------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, clips: list[np.ndarray], n_components: int = 12, closed_quantile: float = 0.2,
            closed_ridge: float = 0.3) -> "MotionBasis":
        """Fit from per-clip image meshes [(T, 478, 3)] (NaN rows where no face was found)."""
        clips = [c[np.isfinite(c).all(axis=(1, 2))] for c in clips]
        clips = [c for c in clips if len(c) >= 10]
        if not clips:
            raise ValueError("no clip has 10 or more frames with a face mesh")
        # Canonical frame: generalised Procrustes on the stable vertices (two rounds from the first face).
        template = normalised_template(clips[0][0])
        for _ in range(2):
            canon = [np.stack([fit_similarity(m[list(STABLE)], template[list(STABLE)]).apply(m) for m in c])
                     for c in clips]
            template = normalised_template(np.concatenate(canon).mean(0))
        canon = [np.stack([fit_similarity(m[list(STABLE)], template[list(STABLE)]).apply(m) for m in c]) for c in clips]
        below_nose = np.flatnonzero(template[:, 1] > template[NOSE_TIP, 1])
        vertices = np.setdiff1d(below_nose, np.array(STABLE))
        shapes = [c[:, vertices].reshape(len(c), -1) for c in canon]
        mean = np.concatenate(shapes).mean(0)
        centred = np.concatenate([s - s.mean(0) for s in shapes])  # each person's motion, not who they are
        _, sv, vt = np.linalg.svd(centred, full_matrices=False)
        components = vt[:n_components].astype(np.float32)
        coeffs = [(s - mean) @ components.T for s in shapes]
        std = np.concatenate([c - c.mean(0) for c in coeffs]).std(0)
        # open_direction: regress each clip's coefficients (about its closed mouth) on its opening
        openings = [np.linalg.norm(c[:, INNER_UPPER, :2] - c[:, INNER_LOWER, :2], axis=-1) for c in canon]
        xs, ys, closed_open = [], [], []
        for c, o in zip(coeffs, openings):
            closed = o <= np.quantile(o, closed_quantile)
            closed_open.append(o[closed].mean())
            xs.append(o - o[closed].mean())
            ys.append(c - c[closed].mean(0))
        x, y = np.concatenate(xs), np.concatenate(ys)
        open_direction = (x @ y) / max(float(x @ x), 1e-9)
        # closed_map: every frame's features -> its clip's closed mouth (ridge on standardised features),
        # with the opening measured in the image as closed_coefficients measures it
        image_open = [np.linalg.norm(c[:, INNER_UPPER, :2] - c[:, INNER_LOWER, :2], axis=-1)
                      / np.linalg.norm(c[:, EYE_CORNERS[0], :2] - c[:, EYE_CORNERS[1], :2], axis=-1) for c in clips]
        closed_map = fit_closed_map(coeffs, image_open, closed_quantile, closed_ridge)
        return cls(vertices=vertices.astype(np.int64), template=template.astype(np.float32), mean=mean.astype(np.float32),
                   components=components, std=std.astype(np.float32), open_direction=open_direction.astype(np.float32),
                   closed_opening=float(np.median(closed_open)), closed_map=closed_map.astype(np.float32))

    # -- persistence (diffusers-style: a config json and a safetensors file in one folder) ------------
    def save_pretrained(self, folder: str | pathlib.Path) -> None:
        from safetensors.numpy import save_file

        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: np.ascontiguousarray(getattr(self, k)) for k in
                   ("vertices", "template", "mean", "components", "std", "open_direction", "closed_map")
                   if getattr(self, k) is not None},
                  str(folder / WEIGHTS_NAME))
        (folder / CONFIG_NAME).write_text(json.dumps(
            {"n_components": self.n_components, "n_vertices": len(self.vertices),
             "closed_opening": self.closed_opening, "mesh_vertices": N_VERTICES}, indent=2))

    @classmethod
    def from_pretrained(cls, folder: str | pathlib.Path) -> "MotionBasis":
        from safetensors.numpy import load_file

        folder = pathlib.Path(folder)
        cfg = json.loads((folder / CONFIG_NAME).read_text())
        t = load_file(str(folder / WEIGHTS_NAME))
        return cls(closed_opening=float(cfg["closed_opening"]), **t)


def closed_features(coeffs: np.ndarray, opening: np.ndarray, quadratic: bool = True) -> np.ndarray:
    """(T, K) coefficients and (T,) inner-lip openings -> the closed-mouth map's input rows:
    [coefficients, opening, 1] and, for the quadratic map, [opening^2, coefficients * opening]."""
    o = np.asarray(opening, np.float64)[:, None]
    cols = [coeffs, o, np.ones_like(o)]
    if quadratic:
        cols += [o ** 2, coeffs * o]
    return np.hstack(cols)


def fit_closed_map(coeffs: list[np.ndarray], openings: list[np.ndarray], closed_quantile: float = 0.2,
                   strength: float = 0.3, quadratic: bool = True) -> np.ndarray:
    """`closed_map` from per-clip (T, K) coefficients and (T,) inner-lip openings (finite frames only): every
    frame's `closed_features` -> its clip's closed mouth (the mean of its least open `closed_quantile`),
    by `ridge` of `strength`."""
    rows = np.concatenate([closed_features(c, o, quadratic) for c, o in zip(coeffs, openings)])
    closed_of = np.concatenate([np.repeat(c[o <= np.quantile(o, closed_quantile)].mean(0)[None], len(c), 0)
                                for c, o in zip(coeffs, openings)])
    return ridge(rows, closed_of, strength)


def ridge(x: np.ndarray, y: np.ndarray, strength: float) -> np.ndarray:
    """Least squares x @ w ~ y ((N,) or (N, K)), shrunk by `strength` (per row of x) on standardised columns;
    constant columns (a bias) are not shrunk. Returns w for the unstandardised x."""
    sd = x.std(0)
    varying = sd > 1e-9
    sd = np.where(varying, sd, 1.0)
    xs = x / sd
    w = np.linalg.solve(xs.T @ xs + strength * len(x) * np.diag(varying.astype(np.float64)), xs.T @ y)
    return (w.T / sd).T
