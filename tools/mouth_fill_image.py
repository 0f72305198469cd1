"""Writes docs/images/mouth_fill.png: the bundled portrait at 256 px, its smile, its closed mouth, then opened
about 0.1, 0.2, 0.35 and 0.5 inter-ocular distances past the closed mouth; top row the plain fill, bottom the
diffusion fill (docs/renderer.md). Run from the repo root: .venv/bin/python tools/mouth_fill_image.py"""
import cv2
import numpy as np

from avatar_service.face.mesh import INNER_LIP, mouth_opening
from avatar_service.face.warp import WarpConfig
from avatar_service.runtime.warp_renderer import MotionModel, WarpFace, bundled_face, measure_mesh
img = bundled_face(256); mesh = measure_mesh(img); basis = MotionModel.default().basis
rows = []
for fill in ("plain", "diffusion"):
    face = WarpFace(img, mesh, basis, WarpConfig(mouth_fill=fill))
    closed = face.closed - face.coeffs
    base = mouth_opening(face.target(closed))
    tiles = [img]  # open_direction is the coefficient change per unit of opening
    tiles += [face.render_delta(closed + basis.open_direction * a).frame for a in (0.0, 0.1, 0.2, 0.35, 0.5)]
    lips = mesh[list(INNER_LIP), :2]; cx, cy = lips.mean(0).astype(int)
    rows.append(np.concatenate([cv2.resize(t[cy - 30:cy + 34, cx - 32:cx + 32], (192, 192), interpolation=cv2.INTER_CUBIC) for t in tiles], 1))
    print(fill, 'openings', [round(mouth_opening(face.target(closed + basis.open_direction * a)) - base, 3) for a in (0.1, 0.2, 0.35, 0.5)])
cv2.imwrite('docs/images/mouth_fill.png', np.concatenate(rows, 0)[..., ::-1])
