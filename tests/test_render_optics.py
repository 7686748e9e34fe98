import numpy as np
import pytest

from devolens.render.optics import (
    OpticsParams, add_noise, jpeg_roundtrip, quantize, render_sprites, texture_field,
)


def test_sample_is_seeded_and_varied():
    a = OpticsParams.sample(np.random.default_rng(3))
    b = OpticsParams.sample(np.random.default_rng(3))
    c = OpticsParams.sample(np.random.default_rng(4))
    assert a == b
    assert a != c
    many = [OpticsParams.sample(np.random.default_rng(s)) for s in range(200)]
    psf = np.array([m.psf_xy for m in many])
    assert psf.min() < 1.2 and psf.max() > 3.5  # wide ranges (domain randomisation)
    assert {m.near_side for m in many} == {-1, 1}
    assert any(m.jpeg_quality == 0 for m in many) and any(m.jpeg_quality > 0 for m in many)
    for m in many:
        assert m.psf_z_ratio > 1  # the PSF is longer in z than in xy


def test_replace_rejects_unknown():
    p = OpticsParams()
    assert p.replace(psf_xy=3.0).psf_xy == 3.0
    with pytest.raises(TypeError):
        p.replace(nope=1)


def test_sprites_zbuffer_near_occludes_far():
    # two overlapping nuclei: the near one (depth 0) owns the overlap
    r = render_sprites((64, 64), np.array([28.0, 36.0]), np.array([32.0, 32.0]), np.array([10.0, 0.0]),
                       np.array([10.0, 10.0]), np.array([0.5, 0.5]), sigma_xy=1.0, sigma_z=3.0)
    assert r.labels[32, 32] == 2
    assert r.labels[32, 20] == 1
    # a nucleus fully behind a bigger one gets no pixel
    r = render_sprites((64, 64), np.array([32.0, 32.0]), np.array([32.0, 32.0]), np.array([50.0, 0.0]),
                       np.array([5.0, 12.0]), np.array([1.0, 0.5]), sigma_xy=1.0, sigma_z=3.0)
    assert set(np.unique(r.labels)) == {0, 2}
    # ... but its light still adds to the maximum projection (brighter than the front one)
    assert r.signal[32, 32] > 0.9


def test_sprite_profile_blurred_and_peaked():
    r = render_sprites((80, 80), np.array([40.0]), np.array([40.0]), np.array([0.0]), np.array([15.0]),
                       np.array([0.8]), sigma_xy=2.0, sigma_z=8.0)
    s = r.signal
    assert abs(s.max() - 0.8) < 0.05
    row = s[40]
    assert row[40] >= row[50] > row[55] > row[60] > 0  # falls smoothly from the centre
    assert row[75] < 1e-3
    assert (r.labels > 0).sum() == pytest.approx(np.pi * 15**2, rel=0.1)


def test_noise_quantize_jpeg():
    rng = np.random.default_rng(0)
    img = np.full((64, 64), 0.5, np.float32)
    noisy = add_noise(img, photons=50.0, read_noise=0.0, rng=rng)
    assert abs(noisy.mean() - 0.5) < 0.01
    assert noisy.var() == pytest.approx(0.5 / 50.0, rel=0.15)  # Poisson variance
    q = quantize(np.clip(noisy, 0, 1))
    assert q.dtype == np.uint8
    rgb = np.stack([q, q, q], -1)
    j = jpeg_roundtrip(rgb, 30)
    assert j.shape == rgb.shape and j.dtype == np.uint8 and not np.array_equal(j, rgb)
    assert jpeg_roundtrip(rgb, 0) is rgb
    t = texture_field((32, 48), 1.5, rng)
    assert t.shape == (32, 48) and abs(t.std() - 1) < 1e-3
