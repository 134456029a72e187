"""Image artifacts as pictures: an SR run's image strip (LR | bicubic | SR | HR) per epoch.

The task records the strip as one float array (panels, H, W, 3) in [0, 1] and the PSNR of each
panel against the last (HR) in a second array (tasks/sisr.py, artifact kinds `image_strip` and
`image_strip_scores`); this module turns them into what a page shows: uint8 pictures enlarged
by pixel repetition (a browser's smooth scaling would blur exactly the detail SR is about) and
one caption per panel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..train.srmetrics import PSNR_MAX_DB


def strip_panels(strip: np.ndarray, scores: np.ndarray | None = None,
                 titles: Sequence[str] = (), zoom: int = 4) -> list[tuple[np.ndarray, str]]:
    """(picture uint8 (H·zoom, W·zoom, 3), caption) per panel of one epoch's strip.

    strip: (panels, H, W, 3) float in [0, 1]; scores: (panels,) PSNR in dB against the last
    panel (the HR reference, whose own score is shown as "reference")."""
    strip = np.asarray(strip, dtype=np.float64)
    if strip.ndim != 4 or strip.shape[-1] != 3:
        raise ValueError(f"an image strip is (panels, H, W, 3), got shape {strip.shape}")
    if zoom < 1:
        raise ValueError(f"zoom must be >= 1, got {zoom}")
    out = []
    for k, panel in enumerate(strip):
        picture = np.round(np.clip(panel, 0.0, 1.0) * 255).astype(np.uint8)
        picture = picture.repeat(zoom, axis=0).repeat(zoom, axis=1)
        title = titles[k] if k < len(titles) else f"panel {k + 1}"
        if scores is not None and k < len(scores):
            score = float(scores[k])
            title += (" · reference" if k == len(strip) - 1 and score >= PSNR_MAX_DB
                      else f" · {score:.2f} dB")
        out.append((picture, title))
    return out
