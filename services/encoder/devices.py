"""Where torch work runs: the one reading of a device setting, for the text model and the behavior refresh."""

from __future__ import annotations


def resolve_device(device: str) -> str:
    """'auto' is cuda when torch is installed and sees a GPU, else cpu; anything else is taken as it is.

    torch is imported only to answer 'auto', so a process configured for 'cpu' never loads it.
    """
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"
