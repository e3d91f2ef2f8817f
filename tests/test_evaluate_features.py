"""Classic window features (aemg.evaluate.features) against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from aemg.evaluate import features as F

X = np.array([[[1.0, -2.0, 3.0, 3.0, -1.0]]])  # (W=1, C=1, L=5)


def test_window_lengths_and_positions():
    assert F.window_samples(200.0) == (40, 10)
    assert F.window_samples(1000.0) == (200, 50)
    x = np.arange(2 * 100, dtype=np.float64).reshape(2, 100)
    w = F.sliding_windows(x, 40, 10)
    assert w.shape == (7, 2, 40)  # 1 + (100 - 40) // 10
    assert w[3, 1, 0] == x[1, 30] and w[6, 0, -1] == x[0, 99]
    assert F.sliding_windows(x[:, :39], 40, 10).shape == (0, 2, 40)


def test_mav_and_wl_by_hand():
    assert F.mav(X)[0, 0] == pytest.approx((1 + 2 + 3 + 3 + 1) / 5)  # 2.0
    assert F.wl(X)[0, 0] == pytest.approx(3 + 5 + 0 + 4)  # 12


def test_zero_crossings_by_hand():
    # pairs (1,-2) (-2,3) (3,3) (3,-1): three sign changes, with steps 3, 5, -, 4
    assert F.zc(X, 0.0)[0, 0] == 3
    assert F.zc(X, 4.0)[0, 0] == 2  # the step of 3 is below the threshold, the step of 4 is not
    assert F.zc(X, 5.5)[0, 0] == 0


def test_slope_sign_changes_by_hand():
    # interior slope products: (-2-1)*(-2-3) = 15, (3+2)*(3-3) = 0, (3-3)*(3+1) = 0
    assert F.ssc(X, 0.0)[0, 0] == 3  # product >= 0 counts a flat stretch too
    assert F.ssc(X, 1.0)[0, 0] == 1
    assert F.ssc(X, 3.8)[0, 0] == 1  # 15 >= 3.8**2 = 14.44
    assert F.ssc(X, 4.0)[0, 0] == 0  # 15 < 16


def test_threshold_per_channel_and_per_window():
    w = np.concatenate([X, 2 * X], axis=1)  # two channels, the second twice as large
    assert list(F.zc(w, np.array([4.0, 8.0]))[0]) == [2, 2]
    assert list(F.zc(w, np.array([[4.0, 11.0]]))[0]) == [2, 0]  # (W, C) thresholds


def test_ar_by_hand():
    # mean 0.8, centred [0.2 -2.8 2.2 2.2 -1.8]; biased autocorrelation r0 = 4.16, r1 = -1.168, r2 = -1.936
    r0, r1, r2 = 4.16, -1.168, -1.936
    assert F.ar(X, 1)[0, 0, 0] == pytest.approx(r1 / r0)  # -0.28077
    det = r0 * r0 - r1 * r1
    a2 = F.ar(X, 2)[0, 0]
    assert a2[0] == pytest.approx(r1 * (r0 - r2) / det)  # -0.44665
    assert a2[1] == pytest.approx((r0 * r2 - r1 * r1) / det)  # -0.59079


def test_ar4_recovers_a_known_process_and_flat_windows_give_zeros():
    rng = np.random.default_rng(0)
    a = np.array([0.5, -0.3, 0.2, -0.1])
    x = np.zeros(20000)
    e = rng.normal(size=x.size)
    for t in range(4, x.size):
        x[t] = a @ x[t - 4:t][::-1] + e[t]
    est = F.ar(x[None, None, :], 4)[0, 0]
    assert np.allclose(est, a, atol=0.03)
    assert np.all(F.ar(np.ones((2, 3, 40)), 4) == 0)


def test_feature_matrices_layout():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(5, 3, 40))
    td = F.td_features(w, 0.1)
    tdar = F.tdar_features(w, 0.1)
    assert td.shape == (5, 12) and tdar.shape == (5, 24)
    assert np.array_equal(tdar[:, :12], td)
    assert np.allclose(td[:, 3:6], F.wl(w))
    assert np.allclose(tdar[:, 12:16], F.ar(w)[:, 0])
    assert F.feature_names(3, "td")[:4] == ["mav0", "mav1", "mav2", "wl0"]
    assert len(F.feature_names(3, "tdar")) == 24
