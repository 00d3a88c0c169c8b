import pytest

from vistok.data import expand_braces


def test_numeric_range_keeps_zero_padding():
    assert expand_braces("data/train-{0000..0003}.tar") == [f"data/train-{i:04d}.tar" for i in range(4)]
    assert expand_braces("{8..11}") == ["8", "9", "10", "11"]
    assert expand_braces("{3..1}") == ["3", "2", "1"]


def test_lists_products_and_nesting():
    assert expand_braces("{a,b}-{1..2}.tar") == ["a-1.tar", "a-2.tar", "b-1.tar", "b-2.tar"]
    assert expand_braces("x{a,{b,c}}y") == ["xay", "xby", "xcy"]
    assert expand_braces("{a,}z") == ["az", "z"]


def test_literals_and_errors():
    assert expand_braces("plain.tar") == ["plain.tar"]
    assert expand_braces("{x}.tar") == ["{x}.tar"]
    with pytest.raises(ValueError, match="unbalanced"):
        expand_braces("train-{0..3.tar")
