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

from avatar_service.face.mesh import FACE_OVAL, INNER_LIP, INNER_LOWER, INNER_UPPER, NOSE_TIP, OUTER_LIP, inter_ocular

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
    # a source mouth open at least this much of its width (and 2 px) shows its own interior (a smile's
    # teeth): each lip carries its part of it as the mouth opens, the new gap between them is cavity; a
    # narrower one gets the flat teeth edge (nothing of its own to show)
    own_interior: float = 0.08
    # a mouth shut more than this fraction of the way from the source's gap gets a seam (MouthInterior._seam)
    seam_from: float = 0.5
    seam_shade: float = 0.6  # a seam's colour: this fraction of the lips' own


class MouthInterior:
    """A plain, non-generative mouth interior: where the target mouth is open wider than the source's
    own, a dark cavity with the upper teeth's edge below the upper lip, feathered by one pixel. A source
    whose mouth is open (a smile showing teeth) keeps its own interior: its upper teeth hang from the upper
    lip and the rest rides on the lower lip, unstretched, with cavity in between, so the teeth stay its own
    instead of being stretched by the lips' triangles."""

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
        self.lips = lip_colour(image, mesh)  # the seam's base colour (_seam), once per source
        self.image = image
        self.source_edges, self.split = None, 0.5
        if self.source_gap >= max(2.0, config.own_interior * float(np.ptp(lips[:, 0]))):
            edges = _edges(lips.astype(np.float64))
            split = self._teeth_split(edges)
            if split is not None:  # its upper teeth show: it keeps them
                self.source_edges, self.split = edges, split

    def _teeth_split(self, edges, steps: int = 16) -> float | None:
        """Where the source's interior divides between what the upper lip carries and what the lower lip
        carries, as a fraction of the gap: the end of the bright run (upper teeth) that starts near the upper
        lip. None when no teeth hang from the upper lip (nothing brighter than the interior's darkest part
        by 25 levels, or the bright part starts low): a dark mid-word mouth gets the plain teeth edge, which
        measured closer to the real interiors of the held-out clips (docs/renderer.md)."""
        xs, up, lo = edges
        mid = xs[0] + (xs[-1] - xs[0]) * np.linspace(0.25, 0.75, 9)
        top, bottom = np.interp(mid, xs, up), np.interp(mid, xs, lo)
        depth = (np.arange(steps) + 0.5) / steps
        ys = top[None, :] + depth[:, None] * (bottom - top)[None, :]
        grey = cv2.cvtColor(self.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        profile = cv2.remap(grey, np.broadcast_to(mid[None, :], ys.shape).astype(np.float32), ys.astype(np.float32),
                            cv2.INTER_LINEAR).mean(1)
        if np.ptp(profile) < 25:
            return None
        bright = profile >= profile.min() + 0.6 * np.ptp(profile)
        first = int(np.argmax(bright))
        if first >= steps // 2:  # lower teeth only, or tongue
            return None
        run_end = first + int(np.argmin(np.append(bright[first:], False)))
        return float(np.clip(run_end / steps, 0.5, 0.9))

    def strength(self, target: np.ndarray) -> float:
        """How much interior the target shows that the source does not: 0 (none) to 1."""
        gap = float(np.linalg.norm(target[INNER_UPPER, :2] - target[INNER_LOWER, :2]))
        return float(np.clip((gap - self.source_gap - self.cfg.open_px) / max(2.0, 0.5 * gap), 0.0, 1.0))

    def fill(self, frame: np.ndarray, target: np.ndarray) -> None:
        """Draw into `frame` (in place) inside the target inner-lip contour."""
        gap = float(np.linalg.norm(target[INNER_UPPER, :2] - target[INNER_LOWER, :2]))
        strength = self.strength(target)
        squeeze = 1.0 - gap / self.source_gap if self.source_gap > 0 else 0.0
        if strength <= 0 and squeeze <= self.cfg.seam_from:
            return
        lips = np.asarray(target, np.float64)[list(INNER_LIP), :2]
        x0, y0 = np.floor(lips.min(0)).astype(int) - 2
        x1, y1 = np.ceil(lips.max(0)).astype(int) + 3
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 <= x0 or y1 <= y0:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round((lips - (x0, y0)) * (1 << _SHIFT)).astype(np.int32)], 255, cv2.LINE_AA, shift=_SHIFT)
        if strength <= 0:  # a mouth closing from the source's: a seam, not its squeezed teeth
            self._seam(frame, mask, x0, x1, y0, y1, squeeze)
            return
        own = self.source_edges is not None
        # the own interior at the source's own gap is the source's interior: no need to fade it in
        alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255, (3, 3), 0.7)[..., None] * (1.0 if own else strength)
        if own:
            colour = self._own_interior(x0, x1, y0, y1, lips)
        else:  # teeth: a band hanging from the upper inner lip, fading into the cavity
            width = float(np.ptp(lips[:, 0]))
            upper = np.interp(np.arange(x0, x1), *_upper_edge(lips))
            depth = (np.arange(y0, y1)[:, None] - upper[None, :]) / max(1.0, min(self.cfg.teeth_height * width, 0.45 * gap))
            teeth = np.clip(1.4 - depth, 0, 1)[..., None]
            side = np.clip(1 - np.abs(np.arange(x0, x1) - lips[:, 0].mean()) / (0.42 * width + 1e-6), 0, 1) ** 0.5
            teeth = teeth * side[None, :, None]
            colour = self.cavity + teeth * (self.teeth - self.cavity)
        region = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(region + alpha * (colour - region) + 0.5, 0, 255).astype(np.uint8)

    def _seam(self, frame: np.ndarray, mask: np.ndarray, x0: int, x1: int, y0: int, y1: int, squeeze: float) -> None:
        """A mouth shut from an open source squeezes the source's whole interior (teeth, tongue, cavity) into a
        gap a pixel or two high, and the warp samples single rows of it: a dashed line of teeth specks where a
        closed mouth shows a seam. Inside the target's gap: `seam_shade` of the lips' own colour, faded in from
        `seam_from` of the way shut. (Tried on the held-out clips: the cavity's colour drew seams darker than
        real closed mouths, oracle mouth-open r 0.904 -> 0.895; each column's mean interior colour turned a
        smile's teeth into a pale line; docs/renderer.md.)"""
        weight = float(np.clip((squeeze - self.cfg.seam_from) / max(1e-6, 1.0 - self.cfg.seam_from), 0, 1))
        alpha = mask.astype(np.float32)[..., None] / 255 * weight
        region = frame[y0:y1, x0:x1].astype(np.float32)
        colour = self.cfg.seam_shade * self.lips
        frame[y0:y1, x0:x1] = np.clip(region + alpha * (colour - region) + 0.5, 0, 255).astype(np.uint8)

    def _own_interior(self, x0: int, x1: int, y0: int, y1: int, lips: np.ndarray) -> np.ndarray:
        """(y1 - y0, x1 - x0, 3) the source's interior split at `split`: the upper part sampled down from
        the target's upper inner lip, the lower part up from its lower one (columns matched corner to corner,
        depths scaled by the mouths' widths), cavity where neither reaches."""
        (sx, s_up, s_lo), (tx, t_up, t_lo) = self.source_edges, _edges(lips)
        cols = np.arange(x0, x1, dtype=np.float64)
        u = np.clip((cols - tx[0]) / max(1e-6, tx[-1] - tx[0]), 0, 1)
        src_x = sx[0] + u * (sx[-1] - sx[0])
        scale = (sx[-1] - sx[0]) / max(1e-6, tx[-1] - tx[0])  # source px per target px
        up_s, lo_s = np.interp(src_x, sx, s_up), np.interp(src_x, sx, s_lo)
        span = np.maximum(0.0, lo_s - up_s)
        top_len, bottom_len = self.split * span, (1 - self.split) * span  # what each lip carries
        rows = np.arange(y0, y1, dtype=np.float64)[:, None]
        d_up = (rows - np.interp(cols, tx, t_up)[None, :]) * scale
        d_lo = (np.interp(cols, tx, t_lo)[None, :] - rows) * scale
        map_x = np.broadcast_to(src_x[None, :], d_up.shape).astype(np.float32)
        upper = cv2.remap(self.image, map_x, (up_s[None, :] + np.maximum(d_up, 0)).astype(np.float32), cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        lower = cv2.remap(self.image, map_x, (lo_s[None, :] - np.maximum(d_lo, 0)).astype(np.float32), cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        # one source pixel of soft edge where each half ends in the cavity
        w_up = np.clip(top_len[None, :] - d_up + 0.5, 0, 1)[..., None]
        w_lo = np.clip(bottom_len[None, :] - d_lo + 0.5, 0, 1)[..., None] * (1 - w_up)
        return self.cavity * (1 - w_up - w_lo) + upper * w_up + lower * w_lo


def lip_colour(image: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """(3,) the lips' colour: the median of the points halfway between the inner and outer lip contours
    (INNER_LIP and OUTER_LIP run in step; the corners are left out)."""
    m = np.asarray(mesh, np.float64)
    mid = 0.5 * (m[list(INNER_LIP), :2] + m[list(OUTER_LIP), :2])
    mid = np.delete(mid, [0, len(INNER_LIP) // 2], axis=0).astype(np.float32)
    px = cv2.remap(image, mid[:, :1], mid[:, 1:], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.median(px.reshape(-1, 3).astype(np.float32), axis=0)


def _edges(lips: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, upper y, lower y) of the inner lips on the upper lip's x-sorted points, corner to corner."""
    xs, ys = _upper_edge(lips)
    n = len(INNER_LIP) // 2
    lower = np.concatenate([lips[n:], lips[:1]])
    order = np.argsort(lower[:, 0])
    return xs, ys, np.interp(xs, lower[order, 0], lower[order, 1])


def _upper_edge(lips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x-sorted points of the upper inner lip (INNER_LIP runs corner, upper lip, corner, lower lip)."""
    upper = lips[: len(INNER_LIP) // 2 + 1]
    order = np.argsort(upper[:, 0])
    return upper[order, 0], upper[order, 1]
