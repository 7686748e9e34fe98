"""Optics of a widefield/confocal histone-GFP timelapse, fast enough for live training data.

A nucleus is a 3D ellipsoid. Blurred by an anisotropic PSF (wider in z than in xy) and
projected by a maximum-intensity projection (MIP), it becomes a 2D blurred ellipse whose peak
falls where the chord through the ellipsoid is shorter than the axial PSF. We render that 2D
profile analytically per nucleus ("sprite") inside its bounding box and combine sprites with
``np.maximum`` (which is what a MIP does), so no 3D volume is ever built:

``I(rho) = B * exp(-k * depth) * 0.5 * erfc((rho - r) / (sqrt(2) s_xy)) * erf(h(rho) / (sqrt(2) s_z))``

with ``rho`` the (elliptical) distance to the nucleus centre, ``r`` its radius, ``h`` the half
chord of the ellipsoid along the optical axis, ``s_xy`` / ``s_z`` the lateral / axial PSF
widths and ``k`` the depth attenuation. Then: texture (chromatin granularity), background,
embryo haze, Poisson-Gaussian noise, gamma, 8-bit quantisation and an optional JPEG round
trip (lossy video compression).

Every parameter is drawn from a wide range by :meth:`OpticsParams.sample` (domain
randomisation), so a model trained on renders does not learn one microscope.

Units: pixels of the output frame unless stated; ``psf_xy`` is given in *reference pixels*
(a 500 px long embryo) and scaled with the embryo's size in the frame.
"""

from __future__ import annotations

import io as _io
from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy import ndimage
from scipy.special import erf, erfc

from devolens import checks
from devolens.errors import DevolensValueError

__all__ = [
    "OpticsParams",
    "check_params",
    "SpriteResult",
    "render_sprites",
    "texture_field",
    "finish_channel",
    "add_noise",
    "quantize",
    "jpeg_roundtrip",
    "resample",
]

_SQRT2 = np.sqrt(2.0)


def check_params(params, ranges: dict) -> None:
    """Refuse a parameter the renderer cannot honour, naming the field, the value and the valid range.

    A value outside these ranges either breaks the arithmetic (``photons=0`` or ``gamma=0`` divide by
    zero, NaN renders a black frame) or renders a frame that contradicts its own ground truth (a negative
    brightness labels nuclei the image does not show; a JPEG quality above 95 or a resample factor below 1
    is recorded but not applied). Whole-number fields are stored as ``int``.

    Parameters
    ----------
    params : dataclass instance
        ``OpticsParams`` or ``MembraneParams`` (called from their ``__post_init__``).
    ranges : dict
        ``field -> (low, high, kind, meaning)``; ``kind`` is ``"closed"`` (``low <= v <= high``),
        ``"open"`` (``low < v <= high``), ``"whole"`` (a whole number in ``low..high``) or ``"sign"``
        (-1 or 1); ``meaning`` is shown in the message.
    """
    name = type(params).__name__
    for field, (low, high, kind, meaning) in ranges.items():
        value = getattr(params, field)
        if kind == "sign":
            ok = checks.is_number(value) and value in (-1, 1)
            rule = "-1 or 1"
        elif kind == "whole":
            try:
                whole = checks.whole(value, field, floats=True, error=DevolensValueError)
            except DevolensValueError:
                whole = None
            ok = whole is not None and low <= whole <= high
            rule = f"a whole number from {low} to {high}"
        else:
            ok = checks.is_number(value) and bool(np.isfinite(value)) and (
                low < value <= high if kind == "open" else low <= value <= high)
            rule = f"a finite number {'>' if kind == 'open' else '>='} {low:g} and <= {high:g}".replace("e+0", "e")
        if not ok:
            raise DevolensValueError(f"{name}.{field} must be {rule} ({meaning}), got {value!r}")
        if kind in ("whole", "sign"):
            object.__setattr__(params, field, int(value))  # 80.0 -> 80: range(), JSON and PIL want ints


#: valid range of each :class:`OpticsParams` field (see :func:`check_params`); every draw of
#: :meth:`OpticsParams.sample` lies inside
OPTICS_RANGES = {
    "psf_xy": (0.0, 50.0, "closed", "lateral PSF sigma, reference pixels; 0 = no blur"),
    "psf_z_ratio": (0.0, 20.0, "closed", "axial / lateral PSF sigma; 0 = no axial blur"),
    "depth_blur": (0.0, 10.0, "closed", "extra far-side blur, fraction of psf_xy"),
    "attenuation": (0.0, 10.0, "closed", "brightness e-folds across the depth; 0 = none"),
    "near_side": (-1, 1, "sign", "which side is near the objective"),
    "brightness": (0.0, 10.0, "open", "peak nucleus intensity, fraction of full scale"),
    "nucleus_cv": (0.0, 1.0, "closed", "spread of per-nucleus brightness"),
    "radius_scale": (0.0, 10.0, "open", "rendered radius / table radius"),
    "aspect_min": (0.2, 1.0, "closed", "smallest minor/major axis ratio; the renderer clips below 0.2"),
    "irregularity": (0.0, 1.0, "closed", "boundary wobble, fraction of the radius"),
    "texture_amp": (0.0, 1.0, "closed", "relative amplitude of the chromatin texture"),
    "texture_scale": (0.0, 50.0, "closed", "texture correlation length, pixels"),
    "background": (0.0, 1.0, "closed", "dark level, fraction of full scale"),
    "haze": (0.0, 1.0, "closed", "glow inside the eggshell, fraction of full scale"),
    "photons": (0.0, 1e9, "open", "photons at full scale; small = noisy"),
    "read_noise": (0.0, 1.0, "closed", "read-noise sigma, fraction of full scale"),
    "gamma": (0.1, 10.0, "closed", "display gamma"),
    "red_fraction": (0.0, 1.0, "closed", "fraction of nuclei with the red reporter"),
    "red_level": (0.0, 10.0, "closed", "red reporter brightness relative to green"),
    "red_background": (0.0, 1.0, "closed", "red dark level, fraction of full scale"),
    "blue_level": (0.0, 1.0, "closed", "blue crosstalk level"),
    "red_specks": (0, 1000, "whole", "red specks per frame"),
    "autoscale": (0.0, 1.0, "closed", "level of the 99.5th percentile after the contrast stretch; 0 = none"),
    "resample": (1.0, 100.0, "closed", "shrink factor of the resolution loss; 1 = none"),
    "jpeg_quality": (0, 95, "whole", "JPEG quality, 0 = no compression; the encoder is capped at 95"),
}


@dataclass(frozen=True)
class OpticsParams:
    """Parameters of the simulated microscope (one frame or one timelapse).

    Attributes
    ----------
    psf_xy : float
        Lateral PSF sigma, in reference pixels (embryo 500 px long).
    psf_z_ratio : float
        Axial / lateral PSF sigma ratio (confocal and widefield: 2 to 5).
    depth_blur : float
        Extra lateral blur at the far side of the embryo (fraction of ``psf_xy``; scattering).
    attenuation : float
        Brightness e-folds across the embryo's depth (0 = none).
    near_side : int
        +1: small z is near the objective; -1: large z is near.
    brightness : float
        Peak nucleus intensity as a fraction of 8-bit full scale (above 1 saturates).
    nucleus_cv : float
        Coefficient of variation of per-nucleus brightness.
    radius_scale : float
        Rendered radius / table radius (``size`` / 2).
    aspect_min : float
        Smallest minor/major axis ratio of the projected nuclei (drawn per nucleus up to 1).
    irregularity : float
        Amplitude of smooth boundary wobble, as a fraction of the radius (0 = perfect ellipses).
    texture_amp, texture_scale : float
        Relative amplitude and correlation length (pixels) of the chromatin texture.
    background : float
        Dark level outside the embryo (fraction of full scale).
    haze : float
        Diffuse glow inside the eggshell (cytoplasm autofluorescence, out-of-focus light).
    photons : float
        Photons collected at full scale (sets Poisson noise; small = noisy).
    read_noise : float
        Gaussian read-noise sigma (fraction of full scale).
    gamma : float
        Display gamma applied before quantisation.
    red_fraction : float
        Fraction of nuclei expressing the red reporter (chosen as whole sub-lineages).
    red_level : float
        Red reporter brightness relative to green.
    red_background : float
        Red-channel dark level and bleed-through of green into red.
    blue_level : float
        Blue-channel level (crosstalk of green), usually tiny.
    red_specks : int
        Number of small red autofluorescent specks (gut granules, debris) in the frame.
    autoscale : float
        Display contrast stretch as in exported movies: when > 0, the image is scaled so its
        99.5th percentile lands at this level (at most 4x); 0 = raw camera levels.
    resample : float
        Resolution loss of the exported movie: the frame is shrunk by this factor and
        enlarged back (bilinear) before compression; 1 = none.
    jpeg_quality : int
        JPEG quality of the lossy round trip, 0 = no compression.

    Raises
    ------
    DevolensValueError
        A value outside :data:`OPTICS_RANGES` (NaN, ``photons=0``, a negative brightness...),
        naming the field, the value and the valid range.
    """

    psf_xy: float = 2.0
    psf_z_ratio: float = 3.0
    depth_blur: float = 0.6
    attenuation: float = 1.0
    near_side: int = 1
    brightness: float = 0.75
    nucleus_cv: float = 0.15
    radius_scale: float = 0.95
    aspect_min: float = 0.85
    irregularity: float = 0.06
    texture_amp: float = 0.2
    texture_scale: float = 1.2
    background: float = 0.02
    haze: float = 0.03
    photons: float = 120.0
    read_noise: float = 0.01
    gamma: float = 1.0
    red_fraction: float = 0.1
    red_level: float = 0.5
    red_background: float = 0.02
    blue_level: float = 0.01
    red_specks: int = 2
    autoscale: float = 0.0
    resample: float = 1.0
    jpeg_quality: int = 80

    def __post_init__(self):
        # here rather than in the renderer: a bad value fails where it is written (also through replace),
        # and render.json never records parameters no frame was rendered with
        check_params(self, OPTICS_RANGES)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "OpticsParams":
        """Draw every parameter from a wide range (domain randomisation).

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness; the same generator state gives the same parameters.

        Returns
        -------
        OpticsParams
        """
        u = rng.uniform
        return cls(
            psf_xy=float(u(0.8, 5.0)),
            psf_z_ratio=float(u(1.8, 5.5)),
            depth_blur=float(u(0.0, 2.5)),
            attenuation=float(u(0.1, 2.5)),
            near_side=int(rng.choice([-1, 1])),
            brightness=float(np.exp(u(np.log(0.2), np.log(1.4)))),
            nucleus_cv=float(u(0.03, 0.35)),
            radius_scale=float(u(0.85, 1.3)),
            aspect_min=float(u(0.7, 0.98)),
            irregularity=float(u(0.0, 0.25)),
            texture_amp=float(u(0.02, 0.5)),
            texture_scale=float(u(0.5, 3.0)),
            # most microscopes have a dark background; a few a bright one: skewed draws
            background=float(0.06 * u(0, 1) ** 3),
            haze=float(0.08 * u(0, 1) ** 2),
            photons=float(np.exp(u(np.log(15.0), np.log(600.0)))),
            read_noise=float(u(0.0, 0.03)),
            gamma=float(u(0.8, 1.25)),
            red_fraction=float(u(0.0, 0.25)) if rng.random() < 0.8 else 0.0,
            red_level=float(u(0.15, 1.0)),
            red_background=float(0.05 * u(0, 1) ** 2),
            blue_level=float(u(0.0, 0.04)),
            red_specks=int(rng.integers(0, 9)),
            autoscale=float(u(0.7, 1.0)) if rng.random() < 0.5 else 0.0,
            resample=float(u(1.0, 2.5)) if rng.random() < 0.4 else 1.0,
            jpeg_quality=int(rng.integers(10, 96)) if rng.random() < 0.8 else 0,
        )

    def replace(self, **changes) -> "OpticsParams":
        """A copy with some fields changed."""
        values = asdict(self)
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"unknown optics parameters: {sorted(unknown)}")
        values.update(changes)
        return OpticsParams(**values)

    def as_dict(self) -> dict:
        """The parameters as a plain dict (for metadata files)."""
        return asdict(self)


@dataclass
class SpriteResult:
    """What :func:`render_sprites` returns.

    Attributes
    ----------
    signal : ndarray, float32, (H, W)
        MIP of the blurred nuclei, before noise (fraction of full scale).
    red : ndarray, float32, (H, W) or None
        MIP of the reporter nuclei (red channel signal), when any reporter is given.
    labels : ndarray, uint16, (H, W)
        Front-most nucleus footprint per pixel (z-buffer); value ``i + 1`` for nucleus ``i``.
    footprint : ndarray, int64, (N,) or None
        Pixels of each nucleus's own label footprint inside the frame, occlusion ignored
        (``visible area / footprint`` = the share of the nucleus not hidden by nearer ones).
    """

    signal: np.ndarray
    red: np.ndarray | None
    labels: np.ndarray
    footprint: np.ndarray | None = None


def render_sprites(
    shape: tuple[int, int],
    u: np.ndarray,
    v: np.ndarray,
    depth: np.ndarray,
    radius: np.ndarray,
    brightness: np.ndarray,
    *,
    aspect: np.ndarray | None = None,
    angle: np.ndarray | None = None,
    sigma_xy: np.ndarray | float = 1.5,
    sigma_z: np.ndarray | float = 4.0,
    red: np.ndarray | None = None,
    label_radius: np.ndarray | None = None,
    wobble: np.ndarray | None = None,
) -> SpriteResult:
    """Maximum-intensity projection of blurred ellipsoidal nuclei, with a z-buffered label image.

    Parameters
    ----------
    shape : (int, int)
        Frame height and width, pixels.
    u, v : ndarray, (N,)
        Nucleus centres: column (x) and row (y), pixels (sub-pixel allowed).
    depth : ndarray, (N,)
        Distance of each centre from the objective, pixels (smaller is nearer).
    radius : ndarray, (N,)
        Semi-major axis of each nucleus, pixels.
    brightness : ndarray, (N,)
        Peak intensity of each nucleus (fraction of full scale, attenuation included).
    aspect, angle : ndarray, (N,), optional
        Minor/major axis ratio (default 1) and orientation (radians) of each projected ellipse.
    sigma_xy : float or ndarray (N,)
        Lateral PSF sigma per nucleus, pixels (at least 1e-3: 0 renders sharp edges).
    sigma_z : float or ndarray (N,)
        Axial PSF sigma per nucleus, pixels (xy units; at least 1e-3).
    red : ndarray, (N,), optional
        Red reporter intensity per nucleus (0 = none); returns a red signal image.
    label_radius : ndarray, (N,), optional
        Radius used for the label footprint (default ``radius``).
    wobble : ndarray, float32, (H, W), optional
        Boundary displacement field, as a fraction of each nucleus's radius: the edge moves
        out by ``wobble * r`` at each pixel (irregular shapes); the label footprint follows.

    Returns
    -------
    SpriteResult
        ``labels`` holds ``i + 1`` where nucleus ``i`` is the front-most; a nucleus hidden
        everywhere does not appear.
    """
    h, w = int(shape[0]), int(shape[1])
    n = len(u)
    signal = np.zeros((h, w), np.float32)
    labels = np.zeros((h, w), np.uint16)
    zbuf = np.full((h, w), np.inf, np.float32)
    red_img = np.zeros((h, w), np.float32) if red is not None and np.any(np.asarray(red) > 0) else None
    if n == 0:
        return SpriteResult(signal, red_img, labels, np.zeros(0, np.int64))
    if n >= 65535:
        raise ValueError("too many nuclei for uint16 labels")
    u = np.asarray(u, np.float64)
    v = np.asarray(v, np.float64)
    depth = np.asarray(depth, np.float64)
    radius = np.maximum(np.asarray(radius, np.float64), 0.5)
    brightness = np.asarray(brightness, np.float64)
    aspect = np.ones(n) if aspect is None else np.clip(np.asarray(aspect, np.float64), 0.2, 1.0)
    angle = np.zeros(n) if angle is None else np.asarray(angle, np.float64)
    sxy = np.broadcast_to(np.maximum(np.asarray(sigma_xy, np.float64), 1e-3), (n,))  # 0: no blur, no 1/0
    sz = np.broadcast_to(np.maximum(np.asarray(sigma_z, np.float64), 1e-3), (n,))
    lab_r = radius if label_radius is None else np.asarray(label_radius, np.float64)
    half = np.ceil(np.maximum(radius, lab_r) + 3.0 * sxy + 1.0).astype(int)
    cos_a, sin_a = np.cos(angle), np.sin(angle)
    footprint = np.zeros(n, np.int64)
    for i in range(n):
        x0 = max(int(np.floor(u[i])) - half[i], 0)
        x1 = min(int(np.floor(u[i])) + half[i] + 1, w)
        y0 = max(int(np.floor(v[i])) - half[i], 0)
        y1 = min(int(np.floor(v[i])) + half[i] + 1, h)
        if x0 >= x1 or y0 >= y1:
            continue
        dx = (np.arange(x0, x1, dtype=np.float32) - np.float32(u[i]))[None, :]
        dy = (np.arange(y0, y1, dtype=np.float32) - np.float32(v[i]))[:, None]
        p = dx * np.float32(cos_a[i]) + dy * np.float32(sin_a[i])
        q = (dy * np.float32(cos_a[i]) - dx * np.float32(sin_a[i])) * np.float32(1.0 / aspect[i])
        rho2 = p * p + q * q
        r = radius[i]
        rho = np.sqrt(rho2)
        sl = (slice(y0, y1), slice(x0, x1))
        if wobble is not None:
            rho = np.maximum(rho - wobble[sl] * np.float32(r), 0.0)
            rho2 = rho * rho
        chord2 = np.maximum(np.float32(r * r) - rho2, 0.0)
        edge = erfc((rho - np.float32(r)) * np.float32(1.0 / (_SQRT2 * sxy[i])))
        axial = erf(np.sqrt(chord2 + np.float32(sxy[i] ** 2)) * np.float32(1.0 / (_SQRT2 * sz[i])))
        prof = edge * axial  # edge is 2x the edge fraction; folded into the scale below
        prof *= np.float32(0.5 * brightness[i] / max(erf(np.sqrt(r * r + sxy[i] ** 2) / (_SQRT2 * sz[i])), 1e-6))
        np.maximum(signal[sl], prof, out=signal[sl])
        if red_img is not None and red[i] > 0:
            np.maximum(red_img[sl], prof * np.float32(red[i] / max(brightness[i], 1e-6)), out=red_img[sl])
        lr = lab_r[i]
        inside = rho2 <= np.float32(lr * lr)
        footprint[i] = int(np.count_nonzero(inside))
        if not footprint[i]:
            continue
        front = np.float32(depth[i]) - np.sqrt(np.maximum(np.float32(lr * lr) - rho2, 0.0))
        zsub = zbuf[sl]
        win = inside & (front < zsub)
        zsub[win] = front[win]
        labels[sl][win] = i + 1
    return SpriteResult(signal, red_img, labels, footprint)


def texture_field(shape: tuple[int, int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance smooth random field (chromatin granularity), float32.

    Parameters
    ----------
    shape : (int, int)
        Height and width, pixels.
    scale : float
        Correlation length (Gaussian sigma), pixels.
    rng : numpy.random.Generator
    """
    noise = rng.standard_normal(shape, dtype=np.float32)
    if scale > 0.3:
        noise = ndimage.gaussian_filter(noise, scale, mode="wrap", truncate=3.0)
    sd = float(noise.std())
    return noise / sd if sd > 0 else noise


def add_noise(img: np.ndarray, photons: float, read_noise: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson-Gaussian camera noise on an image in fractions of full scale.

    Parameters
    ----------
    img : ndarray, float
        Noise-free intensity, 1.0 = full scale.
    photons : float
        Photons at full scale (shot noise variance = img / photons).
    read_noise : float
        Standard deviation of the additive Gaussian noise, fraction of full scale.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, float32
    """
    lam = np.clip(img, 0.0, None).astype(np.float32) * np.float32(photons)
    # Poisson counts as the rounded square of a Gaussian (a square-root, Anscombe-like transform):
    # skewed and integer like Poisson at a quarter of the cost of numpy's Poisson sampler. With
    # a = sqrt(lam - 5/24) + z/2: E[a^2] = lam - 5/24 + 1/4 = lam + 1/24 and Var[a^2] = (lam - 5/24) + 1/8
    # = lam - 1/12; rounding a^2 - 1/24 adds a uniform error (mean 0, variance 1/12), so the counts have
    # mean lam and variance lam (measured: within 0.02 photons and 0.2 % from 10 to 1000 photons). The
    # Anscombe constants (+3/8 inside, -3/8 after) gave lam + 1/4 and lam + 7/12 instead.
    z = rng.standard_normal(lam.shape, dtype=np.float32)
    a = np.sqrt(np.maximum(lam - np.float32(5.0 / 24.0), 0.0)) + np.float32(0.5) * z
    counts = np.floor(np.maximum(a * a - np.float32(1.0 / 24.0), 0.0) + np.float32(0.5))
    # the approximation is poor below ~10 photons (its skew is off, it clips at 0): sample those pixels
    # exactly (cheap there)
    small = lam < 10.0
    if small.any():
        counts[small] = rng.poisson(lam[small])
    out = counts * np.float32(1.0 / photons)
    if read_noise > 0:
        out += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(read_noise)
    return out


def finish_channel(img: np.ndarray, gamma: float) -> np.ndarray:
    """Clip to [0, 1] and apply a display gamma (float32)."""
    out = np.clip(img, 0.0, 1.0)
    if abs(gamma - 1.0) > 1e-6:
        out = out ** np.float32(1.0 / gamma)
    return out.astype(np.float32, copy=False)


def quantize(img: np.ndarray) -> np.ndarray:
    """Quantise an image in [0, 1] to uint8 (round to nearest, clipped)."""
    return np.clip(np.rint(np.asarray(img, np.float32) * 255.0), 0, 255).astype(np.uint8)


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode a uint8 image as JPEG (lossy video compression artefacts).

    Parameters
    ----------
    img : ndarray, uint8, (H, W) or (H, W, 3)
    quality : int
        JPEG quality 1..95; 0 or less returns the image unchanged.

    Returns
    -------
    ndarray, uint8, same shape
    """
    if quality <= 0:
        return img
    from PIL import Image

    buf = _io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(min(max(quality, 1), 95)))
    buf.seek(0)
    out = np.asarray(Image.open(buf).convert("RGB" if img.ndim == 3 else "L"))
    return out


def resample(img: np.ndarray, factor: float) -> np.ndarray:
    """Shrink a uint8 image by ``factor`` and enlarge it back (bilinear): resolution loss.

    Parameters
    ----------
    img : ndarray, uint8, (H, W) or (H, W, 3)
    factor : float
        Shrink factor (>= 1; 1 returns the image unchanged).
    """
    if factor <= 1.0 + 1e-6:
        return img
    from PIL import Image

    h, w = img.shape[:2]
    small = (max(int(round(w / factor)), 1), max(int(round(h / factor)), 1))
    im = Image.fromarray(img).resize(small, Image.BILINEAR).resize((w, h), Image.BILINEAR)
    return np.asarray(im)
