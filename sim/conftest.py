"""Fixtures shared by the co-simulation tests."""

import pytest


@pytest.fixture(scope="session")
def smollm2_vectors():
    """SmolLM2-135M q..down of blocks 0 and 1 with real activations (captured once a process); tests
    that need them skip, with the reason, where the package is missing."""
    from fairyhw import FairyError
    from fairyhw.model.vectors import capture_smollm2
    try:
        return capture_smollm2(blocks=(0, 1))
    except FairyError as e:
        pytest.skip(f"needs the SmolLM2-135M checkpoint: {e}")
