"""Warp, don't redraw: move a face's own pixels to a new lower-face geometry.

`MeshWarp` is built once per source image from its face mesh: a Delaunay triangulation of the mesh's
vertices plus a ring of fixed anchors around the lower face (a feathered band: the jaw can drop into it,
and nothing beyond it ever changes). Per frame, given where the mesh's vertices should be, every output
pixel inside a moved triangle takes its colour from the matching point of the source triangle
(piecewise-affine, exact, no fold-over while triangles keep their orientation). Skin, stubble, lipstick
and the teeth a smile shows stay the person's own and sharp. What warping cannot show, the inside of a
mouth that opens wider than the source's, is filled by `MouthInterior` (or by a generative stage).
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from avatar_service.face.mesh import FACE_OVAL, INNER_LIP, INNER_LOWER, INNER_UPPER, NOSE_TIP, inter_ocular

N_FACE = 468  # the iris points (468-477) are left out of the triangulation
_SHIFT = 4  # sub-pixel bits for rasterising triangles


@dataclasses.dataclass(frozen=True)
class WarpConfig:
    band: float = 0.35  # width of the anchor ring outside the jaw line, in inter-ocular distances
    ring_points: int = 24
    # The inside of a mouth opened wider than the source's: "plain" (MouthInterior, a dark cavity with
    # the upper teeth's edge) or "diffusion" (runtime/mouth_fill.py, the latent inner-mouth denoiser of
    # `fill_model`: 'default' = the embedded one, or a folder). docs/renderer.md compares them.
    mouth_fill: str = "plain"
    fill_model: str = "default"


MOUTH_FILLS = ("plain", "diffusion")


def add_mouth_fill_argument(parser) -> None:
    """--mouth-fill for the commands that render with the warp renderer (render, dub, eval, serve)."""
    parser.add_argument("--mouth-fill", choices=MOUTH_FILLS, default=None if parser.prog.endswith("serve") else "plain",
                        help="the warp renderer's inside of an opening mouth: plain (dark cavity and teeth edge, the "
                             "default) or diffusion (the latent inner-mouth denoiser); docs/renderer.md compares them")


@dataclasses.dataclass
class WarpResult:
    frame: np.ndarray  # (H, W, 3) uint8, the whole image
    rect: tuple[int, int, int, int]  # (x, y, w, h): outside it the frame equals the source


class MeshWarp:
    def __init__(self, image: np.ndarray, mesh: np.ndarray, moving: np.ndarray, config: WarpConfig = WarpConfig()):
        from scipy.spatial import Delaunay

        self.image = np.ascontiguousarray(image)
        self.mesh = np.asarray(mesh, np.float32)
        h, w = image.shape[:2]
        face = self.mesh[:N_FACE, :2].astype(np.float64)
        ring = self._ring(self.mesh, config)
        corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64)
        self.points = np.concatenate([face, ring, corners])
        self.moving = np.asarray([v for v in moving if v < N_FACE], np.int64)
        tri = Delaunay(self.points).simplices.astype(np.int64)
        is_moving = np.zeros(len(self.points), bool)
        is_moving[self.moving] = True
        self.triangles = tri[is_moving[tri].any(axis=1)]  # only these can change
        used = self.points[np.unique(self.triangles)]
        x0, y0 = np.floor(used.min(0)).astype(int)
        x1, y1 = np.ceil(used.max(0)).astype(int) + 1
        self.rect = (max(0, x0), max(0, y0), min(w, x1) - max(0, x0), min(h, y1) - max(0, y0))
        rx, ry, rw, rh = self.rect
        gx, gy = np.meshgrid(np.arange(rx, rx + rw, dtype=np.float32), np.arange(ry, ry + rh, dtype=np.float32))
        self._grid = np.stack([gx, gy], -1)  # identity map of the rect

    @staticmethod
    def _ring(mesh: np.ndarray, cfg: WarpConfig) -> np.ndarray:
        """Fixed anchors: the face oval below the nose, pushed outwards by `band` inter-ocular distances."""
        oval = mesh[list(FACE_OVAL), :2].astype(np.float64)
        centre = mesh[NOSE_TIP, :2].astype(np.float64)
        low = oval[oval[:, 1] >= centre[1] - 0.2 * inter_ocular(mesh)]
        # resample the lower oval evenly by angle about the nose, then push out along the same rays
        ang = np.arctan2(low[:, 1] - centre[1], low[:, 0] - centre[0])
        rad = np.linalg.norm(low - centre, axis=1)
        order = np.argsort(ang)
        ang, rad = ang[order], rad[order]
        a = np.linspace(ang.min(), ang.max(), cfg.ring_points)
        r = np.interp(a, ang, rad) + cfg.band * inter_ocular(mesh)
        return centre + np.stack([np.cos(a) * r, np.sin(a) * r], 1)

    def warp(self, target: np.ndarray, image: np.ndarray | None = None) -> WarpResult:
        """target: (478, 2+) image positions of the mesh vertices (only `moving` ones are read)."""
        src_img = self.image if image is None else image
        dst = self.points.copy()
        dst[self.moving] = np.asarray(target, np.float64)[self.moving, :2]
        rx, ry, rw, rh = self.rect
        tri_dst, tri_src = dst[self.triangles], self.points[self.triangles]  # (M, 3, 2)
        affine, area = _affines(tri_dst, tri_src)
        src_area = _affines(tri_src, tri_src)[1]
        ok = (np.abs(area) > 1e-6) & (np.sign(area) == np.sign(src_area))  # degenerate or flipped: not drawn
        m = len(affine)
        index = np.full((rh, rw), m, np.int32)  # row m of the table below: the identity (pixel unchanged)
        pts = np.round((tri_dst - (rx, ry)) * (1 << _SHIFT)).astype(np.int32)
        for k in np.flatnonzero(ok):
            cv2.fillConvexPoly(index, pts[k], int(k), lineType=cv2.LINE_8, shift=_SHIFT)
        table = np.concatenate([affine.reshape(m, 6), [[1, 0, 0, 0, 1, 0]]]).astype(np.float32)
        c = table[index]  # (rh, rw, 6): each pixel's target -> source affine
        gx, gy = self._grid[..., 0], self._grid[..., 1]
        map_x = c[..., 0] * gx + c[..., 1] * gy + c[..., 2]
        map_y = c[..., 3] * gx + c[..., 4] * gy + c[..., 5]
        patch = cv2.remap(src_img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frame = src_img.copy()
        frame[ry:ry + rh, rx:rx + rw] = patch
        return WarpResult(frame=frame, rect=self.rect)


def _affines(dst: np.ndarray, src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle (M, 3, 2) pair: the affine (M, 2, 3) taking dst points onto src points, and dst's
    signed doubled area (M,). Closed-form 3x3 inverse: numpy's batched inv is slow for tiny matrices."""
    (x0, y0), (x1, y1), (x2, y2) = dst[:, 0].T, dst[:, 1].T, dst[:, 2].T
    det = x0 * (y1 - y2) + x1 * (y2 - y0) + x2 * (y0 - y1)
    safe = np.where(np.abs(det) > 1e-12, det, 1.0)
    # inverse of [[x0 x1 x2], [y0 y1 y2], [1 1 1]] (columns: points), by cofactors
    inv = np.stack([np.stack([y1 - y2, x2 - x1, x1 * y2 - x2 * y1], -1),
                    np.stack([y2 - y0, x0 - x2, x2 * y0 - x0 * y2], -1),
                    np.stack([y0 - y1, x1 - x0, x0 * y1 - x1 * y0], -1)], 1) / safe[:, None, None]
    return src.transpose(0, 2, 1) @ inv, det


@dataclasses.dataclass(frozen=True)
class InteriorConfig:
    cavity_rgb: tuple[float, float, float] = (0.23, 0.09, 0.09)  # relative to the lips' own brightness
    teeth_rgb: tuple[float, float, float] = (0.93, 0.90, 0.84)
    teeth_height: float = 0.09  # upper teeth show this much of the mouth's width at most
    open_px: float = 1.5  # gaps narrower than this (after the source's own) are not filled


class MouthInterior:
    """A plain, non-generative mouth interior: where the target mouth is open wider than the source's
    own, a dark cavity with the upper teeth's edge below the upper lip, feathered by one pixel."""

    def __init__(self, image: np.ndarray, mesh: np.ndarray, config: InteriorConfig = InteriorConfig()):
        self.cfg = config
        lips = mesh[list(INNER_LIP), :2]
        x0, y0 = np.floor(lips.min(0)).astype(int) - 3
        x1, y1 = np.ceil(lips.max(0)).astype(int) + 4
        x0, y0 = max(0, x0), max(0, y0)
        patch = image[y0:y1, x0:x1].reshape(-1, 3).astype(np.float32)
        # scale the palette by the face's own lighting so a dark or tinted portrait gets a matching mouth
        light = np.percentile(patch, 90, axis=0) if len(patch) else np.full(3, 200.0)
        self.cavity = np.asarray(config.cavity_rgb, np.float32) * light
        self.teeth = np.minimum(np.asarray(config.teeth_rgb, np.float32) * light.max(), 255)
        self.source_gap = float(np.linalg.norm(mesh[INNER_UPPER, :2] - mesh[INNER_LOWER, :2]))

    def strength(self, target: np.ndarray) -> float:
        """How much interior the target shows that the source does not: 0 (none) to 1."""
        gap = float(np.linalg.norm(target[INNER_UPPER, :2] - target[INNER_LOWER, :2]))
        return float(np.clip((gap - self.source_gap - self.cfg.open_px) / max(2.0, 0.5 * gap), 0.0, 1.0))

    def fill(self, frame: np.ndarray, target: np.ndarray) -> None:
        """Draw into `frame` (in place) inside the target inner-lip contour."""
        strength = self.strength(target)
        if strength <= 0:
            return
        gap = float(np.linalg.norm(target[INNER_UPPER, :2] - target[INNER_LOWER, :2]))
        lips = np.asarray(target, np.float64)[list(INNER_LIP), :2]
        x0, y0 = np.floor(lips.min(0)).astype(int) - 2
        x1, y1 = np.ceil(lips.max(0)).astype(int) + 3
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 <= x0 or y1 <= y0:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round((lips - (x0, y0)) * (1 << _SHIFT)).astype(np.int32)], 255, cv2.LINE_AA, shift=_SHIFT)
        alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255, (3, 3), 0.7)[..., None] * strength
        # teeth: a band hanging from the upper inner lip, fading into the cavity
        width = float(np.ptp(lips[:, 0]))
        upper = np.interp(np.arange(x0, x1), *_upper_edge(lips))
        depth = (np.arange(y0, y1)[:, None] - upper[None, :]) / max(1.0, min(self.cfg.teeth_height * width, 0.45 * gap))
        teeth = np.clip(1.4 - depth, 0, 1)[..., None]
        side = np.clip(1 - np.abs(np.arange(x0, x1) - lips[:, 0].mean()) / (0.42 * width + 1e-6), 0, 1) ** 0.5
        teeth = teeth * side[None, :, None]
        colour = self.cavity + teeth * (self.teeth - self.cavity)
        region = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(region + alpha * (colour - region) + 0.5, 0, 255).astype(np.uint8)


def _upper_edge(lips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x-sorted points of the upper inner lip (INNER_LIP runs corner, upper lip, corner, lower lip)."""
    upper = lips[: len(INNER_LIP) // 2 + 1]
    order = np.argsort(upper[:, 0])
    return upper[order, 0], upper[order, 1]
