"""Random crop and flip for a whole batch at once, on the batch's device.

Per-sample Python transforms make small-network training launch- and CPU-bound; one padded copy
and one gather do the same work for the batch in a handful of kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment_batch(
    x: torch.Tensor,
    crop_padding: int,
    horizontal_flip: bool,
    generator: torch.Generator,
    fill: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """Pad-and-crop then flip every image of an (N, C, H, W) batch independently.

    Sample by sample this is torchvision's ``RandomCrop((H, W), padding=crop_padding)`` followed by
    ``RandomHorizontalFlip(0.5)``: crop offsets are uniform on [0, 2 * crop_padding] along each
    axis and each image is mirrored with probability 0.5. ``fill`` is the value of padded pixels,
    a scalar or one value per channel: torchvision pads the raw image with 0, which after
    normalization is ``-mean / std`` per channel. Draws from ``generator`` (on x's device), in
    order: row offsets and column offsets (one (2, N) draw), then flip coins.
    """
    if x.dim() != 4:
        raise ValueError(f"augment_batch expects an (N, C, H, W) batch, got shape {tuple(x.shape)}")
    if generator.device != x.device:
        raise ValueError(f"generator is on {generator.device} but the batch is on {x.device}")
    if crop_padding < 0:
        raise ValueError(f"crop_padding must be non-negative, got {crop_padding}")
    if crop_padding == 0 and not horizontal_flip:
        return x
    n, c, h, w = x.shape
    rows = torch.arange(h, device=x.device).expand(n, h)
    cols = torch.arange(w, device=x.device).expand(n, w)
    source = x
    if crop_padding:
        source = _pad(x, crop_padding, fill)
        offsets = torch.randint(0, 2 * crop_padding + 1, (2, n, 1), generator=generator, device=x.device)
        rows = rows + offsets[0]
        cols = cols + offsets[1]
    if horizontal_flip:
        flips = torch.rand(n, 1, generator=generator, device=x.device) < 0.5
        cols = torch.where(flips, cols.flip(1), cols)
    batch_index = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel_index = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return source[batch_index, channel_index, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]


def _pad(x: torch.Tensor, padding: int, fill: float | torch.Tensor) -> torch.Tensor:
    if not isinstance(fill, torch.Tensor):
        return F.pad(x, (padding,) * 4, value=float(fill))
    n, c, h, w = x.shape
    per_channel = fill.to(device=x.device, dtype=x.dtype).reshape(1, c, 1, 1)
    padded = per_channel.expand(n, c, h + 2 * padding, w + 2 * padding).contiguous()
    padded[:, :, padding : padding + h, padding : padding + w] = x
    return padded
