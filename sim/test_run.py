"""``fairyhw run`` reduced: the first two blocks of SmolLM2-135M and its lm_head, one decode step, every
linear layer on the simulated system top; the same checks as the full run (reports/rtl_decode.md)."""

import json

import pytest

from test_engine import BUILD


def test_two_blocks_and_lm_head_on_the_rtl(tmp_path, capsys):
    """Every layer's sums ``==`` the golden integer path, the logits ``torch.equal`` the golden int8
    path's, the same greedy token, and the cycle model exact for each layer (compute-bound memory)."""
    from fairyhw import FairyError
    from fairyhw.model.checkpoint import smollm2_gguf_path
    try:
        smollm2_gguf_path()
    except FairyError as e:
        pytest.skip(f"needs the SmolLM2-135M checkpoint: {e}")
    from fairyhw.__main__ import main
    rc = main(["run", "smollm2", "--blocks", "2", "--tokens", "1", "--prompt", "Hello",
               "--out", str(tmp_path), "--cache", str(BUILD / "bench")])
    out = capsys.readouterr().out
    assert rc == 0, out
    res = json.loads((tmp_path / "rtl_decode.json").read_text())
    c = res["checks"]
    assert res["linear_layers"] == 15 and res["descriptors"] == 16      # lm_head in two pieces
    assert c["steps"] == len(res["prompt_ids"]) >= 1
    assert c["layers_run"] == 15 * c["steps"] and c["layers_equal"] == c["layers_run"]
    assert c["logits_equal_steps"] == c["steps"] and c["tokens_equal"]
    assert res["tokens"]["rtl"] == res["tokens"]["int8"]
    for r in res["last_step_layers"]:
        assert r["cycles"] == r["predicted"], r
    for ext in (".md", ".png", ".timing.json"):
        assert (tmp_path / f"rtl_decode{ext}").stat().st_size > 0
