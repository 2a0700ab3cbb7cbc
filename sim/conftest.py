"""Fixtures shared by the co-simulation tests."""

import hashlib
import os
from pathlib import Path

import pytest
import torch

from fairyhw.cosim.build import build_lock

BUILD = Path(__file__).resolve().parents[1] / "sim_build"


@pytest.fixture(scope="session")
def smollm2_vectors():
    """SmolLM2-135M q..down of blocks 0 and 1 with real activations; tests that need them skip, with
    the reason, where the package is missing. Captured once, then kept in ``sim_build/`` (keyed by
    the checkpoint file and the capture code) for the other test processes (``pytest -n``)."""
    from fairyhw import FairyError
    from fairyhw.model import vectors
    from fairyhw.model.checkpoint import smollm2_gguf_path
    try:
        path = smollm2_gguf_path()
    except FairyError as e:
        pytest.skip(f"needs the SmolLM2-135M checkpoint: {e}")
    st = os.stat(path)
    key = hashlib.sha256(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0".encode()
                         + Path(vectors.__file__).read_bytes()).hexdigest()[:16]
    cache = BUILD / "vectors" / f"smollm2_b01_{key}.pt"
    with build_lock(cache.parent):
        if cache.exists():
            return torch.load(cache, weights_only=True)
        got = vectors.capture_smollm2(blocks=(0, 1))
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        torch.save(got, tmp)
        os.replace(tmp, cache)
        return got
