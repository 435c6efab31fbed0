"""Rendering primitives for the toy suite: natural textures, sprites, smooth motion, occlusion.

Why natural textures: the toy tasks must separate a pretrained encoder from a random one, as the
real benchmarks do. Flat colours or noise would let any encoder (even a random one) match pixels by
colour, so every surface here is a crop of one of the photos scikit-image ships offline
(:data:`PHOTO_NAMES`). Textures are *attached* to the surface they cover: a sprite's pixels move,
scale and rotate with it, as a real object's appearance does, which is what label propagation
relies on.

The API, in the order a generator uses it::

    rng = np.random.default_rng(seed)
    photos = pick_photos(rng, 3)                      # distinct photos: distinct objects
    bg = texture(rng, 96, 160, photo=photos[0])       # float32 (H, W, 3) in [0, 1]
    obj = blob_sprite(rng, 40, 32, photo=photos[1])   # Sprite(rgb, mask)
    ys, xs = smooth_path(rng, T, 20, 76), smooth_path(rng, T, 20, 140)
    for t in range(T):
        frame, ids = bg.copy(), np.zeros((96, 160), np.uint8)
        paste(frame, ids, obj, (ys[t], xs[t]), label=1, scale=1.1)   # later pastes occlude earlier
        save(to_uint8(frame), ids)

All randomness comes from the ``rng`` passed in, so a generator is deterministic given its seed.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.interpolate import PchipInterpolator
from skimage import data as skdata

# Colour photos shipped inside scikit-image (no download), plus grey textures tinted in distinct hues.
PHOTO_NAMES: tuple[str, ...] = (
    "astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry",
    "retina", "stereo_motorcycle", "brick", "grass", "gravel",
)
_TINTS = {"brick": (1.0, 0.55, 0.45), "grass": (0.45, 0.9, 0.4), "gravel": (0.5, 0.6, 1.0)}
_MAX_SIDE = 512  # photos are stored at most this large: crops stay detailed and sampling stays fast


@dataclass
class Sprite:
    """A textured shape in its own coordinates: ``rgb`` float32 (h, w, 3) in [0, 1], ``mask`` bool (h, w)."""

    rgb: np.ndarray
    mask: np.ndarray


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    img = getattr(skdata, name)()
    if isinstance(img, tuple):  # stereo_motorcycle returns (left, right, disparity)
        img = img[0]
    if img.ndim == 2:
        img = np.rint(img[..., None] * np.asarray(_TINTS[name])).astype(np.uint8)
    pil = Image.fromarray(img)
    scale = _MAX_SIDE / max(pil.size)
    if scale < 1:
        pil = pil.resize((round(pil.width * scale), round(pil.height * scale)), Image.LANCZOS)
    arr = np.asarray(pil)
    arr.setflags(write=False)
    return arr


def load_photo(index: int) -> np.ndarray:
    """Photo ``index`` of :data:`PHOTO_NAMES` as read-only uint8 (H, W, 3) (cached)."""
    return _photo(PHOTO_NAMES[index % len(PHOTO_NAMES)])


def pick_photos(rng: np.random.Generator, n: int) -> list[int]:
    """``n`` distinct photo indices (cycling only when ``n`` exceeds the number of photos)."""
    order = list(rng.permutation(len(PHOTO_NAMES)))
    return [int(order[i % len(order)]) for i in range(n)]


def texture(rng: np.random.Generator, h: int, w: int, photo: int | None = None,
            zoom: tuple[float, float] = (1.0, 2.5)) -> np.ndarray:
    """A random ``h × w`` crop of a photo, float32 (h, w, 3) in [0, 1].

    The crop covers ``z·h × z·w`` photo pixels with ``z`` drawn from ``zoom`` and is resized to
    ``h × w``: larger ``z`` packs more of the photo's structure into the texture.
    """
    src = load_photo(int(rng.integers(len(PHOTO_NAMES))) if photo is None else photo)
    ph, pw = src.shape[:2]
    z = float(rng.uniform(*zoom))
    # the largest crop of aspect h:w that fits the photo bounds z
    z = min(z, ph / h, pw / w)
    ch, cw = max(1, round(h * z)), max(1, round(w * z))
    y0, x0 = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    crop = Image.fromarray(src[y0:y0 + ch, x0:x0 + cw])
    if crop.size != (w, h):
        crop = crop.resize((w, h), Image.BILINEAR)  # PIL's bilinear widens its support when shrinking
    return np.asarray(crop, dtype=np.float32) / 255.0


def blob_mask(rng: np.random.Generator, h: int, w: int, irregularity: float = 0.25) -> np.ndarray:
    """An irregular star-convex blob filling an ``h × w`` box, bool (h, w).

    The radius of an ellipse is modulated by three low harmonics with random phases, so shapes are
    organic (not pure ellipses) yet always one connected region.
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dy, dx = (yy + 0.5 - h / 2) / (h / 2), (xx + 0.5 - w / 2) / (w / 2)
    ang, rad = np.arctan2(dy, dx), np.hypot(dy, dx)
    wobble = sum(rng.uniform(-1, 1) * np.cos(k * ang + rng.uniform(0, 2 * math.pi)) for k in (2, 3, 5))
    limit = 1.0 - irregularity * (0.5 + 0.5 * wobble / 3.0)
    return rad <= limit


def blob_sprite(rng: np.random.Generator, h: int, w: int, photo: int | None = None) -> Sprite:
    """A blob-shaped sprite textured with a crop of ``photo``."""
    return Sprite(texture(rng, h, w, photo), blob_mask(rng, h, w))


def capsule_sprite(rng: np.random.Generator, length: float, radius: float, photo: int | None = None) -> Sprite:
    """A horizontal capsule (a limb): a segment of ``length`` px thickened by ``radius`` px.

    Paste it with ``angle`` to orient it; its centre is the segment's midpoint.
    """
    h, w = max(2, math.ceil(2 * radius)), max(2, math.ceil(length + 2 * radius))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    half = length / 2
    u = np.clip(xx - w / 2, -half, half)
    inside = np.hypot(xx - w / 2 - u, yy - h / 2) <= radius
    return Sprite(texture(rng, h, w, photo), inside)


def smooth_path(rng: np.random.Generator, n: int, lo: float, hi: float, knots: int = 4,
                start: float | None = None, end: float | None = None) -> np.ndarray:
    """A smooth random trajectory of ``n`` values in ``[lo, hi]``, float32 (n,).

    ``knots`` random values at evenly spaced times are joined by a PCHIP spline, which never
    overshoots its knots, so the path stays in range and has no jumps; fewer knots → slower motion.
    ``start`` / ``end`` pin the first / last value (e.g. to lay objects out apart in the first frame,
    or to make an object travel a given distance).
    """
    if n < 2:
        return np.full(n, rng.uniform(lo, hi) if start is None else start, np.float32)
    knots = max(2, min(knots, n))
    t = np.linspace(0, n - 1, knots)
    v = rng.uniform(lo, hi, size=knots)
    if start is not None:
        v[0] = start
    if end is not None:
        v[-1] = end
    return PchipInterpolator(t, v)(np.arange(n)).astype(np.float32)


def paste(canvas: np.ndarray, ids: np.ndarray | None, sprite: Sprite, center: tuple[float, float],
          label: int = 1, scale: float = 1.0, angle: float = 0.0) -> None:
    """Draw ``sprite`` onto ``canvas`` (and ``label`` into ``ids``) in place, occluding what is there.

    ``center`` is (y, x) in canvas pixels; ``scale`` multiplies the sprite's size; ``angle`` (radians,
    counter-clockwise as seen on screen) rotates it. Texture is sampled bilinearly, the mask by nearest
    neighbour, so ``ids`` is exactly the set of pixels that received the sprite's colour. Parts outside
    the canvas are clipped. Paste back to front: the last paste is the front-most object.
    """
    sh, sw = sprite.mask.shape
    H, W = canvas.shape[:2]
    cy, cx = center
    half = 0.5 * scale * math.hypot(sh, sw)  # bounding radius of the transformed sprite
    y0, y1 = max(0, math.floor(cy - half)), min(H, math.ceil(cy + half) + 1)
    x0, x1 = max(0, math.floor(cx - half)), min(W, math.ceil(cx + half) + 1)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dy, dx = yy + 0.5 - cy, xx + 0.5 - cx
    c, s = math.cos(angle), math.sin(angle)
    # inverse map: canvas offset -> sprite coordinates (screen y points down, hence the signs)
    u = (c * dx - s * dy) / scale + sw / 2 - 0.5
    v = (s * dx + c * dy) / scale + sh / 2 - 0.5
    ui, vi = np.rint(u).astype(np.int64), np.rint(v).astype(np.int64)
    valid = (ui >= 0) & (ui < sw) & (vi >= 0) & (vi < sh)
    hit = np.zeros_like(valid)
    hit[valid] = sprite.mask[vi[valid], ui[valid]]
    if not hit.any():
        return
    coords = np.stack([v[hit], u[hit]])
    rgb = np.stack([ndimage.map_coordinates(sprite.rgb[..., k], coords, order=1, mode="nearest")
                    for k in range(sprite.rgb.shape[2])], axis=-1)
    region = canvas[y0:y1, x0:x1]
    region[hit] = rgb
    if ids is not None:
        ids[y0:y1, x0:x1][hit] = label


def pan(texture_img: np.ndarray, h: int, w: int, y: float, x: float) -> np.ndarray:
    """The ``h × w`` window of a larger texture at integer offset (y, x), clamped: a panning camera."""
    th, tw = texture_img.shape[:2]
    yi, xi = int(np.clip(round(y), 0, th - h)), int(np.clip(round(x), 0, tw - w))
    return texture_img[yi:yi + h, xi:xi + w].copy()


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] → uint8, rounded."""
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
