"""What a device is called in records and reports: the GPU's model name, or the CPU's processor."""

from __future__ import annotations

import platform

import torch


def device_name(device: str) -> str:
    return torch.cuda.get_device_name(device) if device.startswith("cuda") else platform.processor() or "cpu"
