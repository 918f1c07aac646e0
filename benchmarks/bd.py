"""Bjøntegaard delta rate (VCEG-M33): average bitrate difference at equal PSNR."""

from __future__ import annotations

import numpy as np


def bd_rate(rate_ref, psnr_ref, rate_test, psnr_test) -> float | None:
    """Percent rate change of ``test`` vs ``ref`` over their overlapping PSNR range.

    Fits log(rate) as a cubic polynomial of PSNR for each curve and integrates both over
    the common PSNR interval. Negative means ``test`` needs fewer bits. Returns ``None``
    when the curves have fewer than 4 points or do not overlap.
    """
    rate_ref, psnr_ref = np.asarray(rate_ref, float), np.asarray(psnr_ref, float)
    rate_test, psnr_test = np.asarray(rate_test, float), np.asarray(psnr_test, float)
    if min(len(rate_ref), len(rate_test)) < 4:
        return None
    low = max(psnr_ref.min(), psnr_test.min())
    high = min(psnr_ref.max(), psnr_test.max())
    if high <= low:
        return None
    fit_ref = np.polyfit(psnr_ref, np.log(rate_ref), 3)
    fit_test = np.polyfit(psnr_test, np.log(rate_test), 3)
    int_ref = np.polyval(np.polyint(fit_ref), high) - np.polyval(np.polyint(fit_ref), low)
    int_test = np.polyval(np.polyint(fit_test), high) - np.polyval(np.polyint(fit_test), low)
    return float((np.exp((int_test - int_ref) / (high - low)) - 1) * 100)


def bd_psnr(rate_ref, psnr_ref, rate_test, psnr_test) -> float | None:
    """Mean PSNR difference in dB of ``test`` over ``ref`` at equal rate (VCEG-M33).

    Fits PSNR as a cubic polynomial of log(rate) for each curve and integrates both over
    the common log-rate interval. Positive means ``test`` is better. Returns ``None`` when
    the curves have fewer than 4 points or their rates do not overlap.
    """
    log_ref, log_test = np.log(np.asarray(rate_ref, float)), np.log(np.asarray(rate_test, float))
    psnr_ref, psnr_test = np.asarray(psnr_ref, float), np.asarray(psnr_test, float)
    if min(len(log_ref), len(log_test)) < 4:
        return None
    low = max(log_ref.min(), log_test.min())
    high = min(log_ref.max(), log_test.max())
    if high <= low:
        return None
    fit_ref = np.polyint(np.polyfit(log_ref, psnr_ref, 3))
    fit_test = np.polyint(np.polyfit(log_test, psnr_test, 3))
    int_ref = np.polyval(fit_ref, high) - np.polyval(fit_ref, low)
    int_test = np.polyval(fit_test, high) - np.polyval(fit_test, low)
    return float((int_test - int_ref) / (high - low))
