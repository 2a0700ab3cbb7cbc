"""LLaMA-2 7B shapes as data."""

from fairyhw.model.llama import LLAMA2_7B, linear_shapes, parameter_count, weight_bytes_per_token


def test_llama2_7b_parameter_count():
    assert parameter_count(LLAMA2_7B) == 6_738_415_616
    blocks = sum(s.params * s.count for s in linear_shapes(LLAMA2_7B, lm_head=False))
    assert blocks == 6_476_005_376 and blocks // 32 == 202_375_168


def test_llama2_7b_weight_bytes_per_token():
    assert round(weight_bytes_per_token(LLAMA2_7B, 2) / 1e9, 3) == 1.652
    assert round(weight_bytes_per_token(LLAMA2_7B, 2, lm_head_bits=16) / 1e9, 3) == 1.881


def test_every_shape_even():
    for s in linear_shapes(LLAMA2_7B):
        assert s.out_features % 2 == 0 and s.in_features % 2 == 0
    assert [s.name for s in linear_shapes()][-1] == "lm_head"
