"""Bad numbers and files through the real CLI end with one message naming the argument or file and
exit code 2, before any work (a subset of the bad-input cases; the rest are still to come)."""
import os

import numpy as np
import pytest
import torch

from tests.models.test_titok import tiny_config
from vistok.cli import main
from vistok.engine.recipe import RecipeError, load_recipe
from vistok.errors import InputError, UnknownNameError
from vistok.models.titok import TiTok

TINY = "train/demo/titok_tiny.yaml"


@pytest.mark.parametrize("argv,needle", [
    (["reconstruct", "x.jpg", "--model", "m", "-o", "o", "--batch-size", "-1"], "--batch-size: must be at least 1"),
    (["encode", "x.jpg", "--model", "m", "-o", "o", "--batch-size", "0"], "--batch-size: must be at least 1"),
    (["encode", "x.jpg", "--model", "m", "-o", "o", "--num-tokens", "0"], "--num-tokens: must be at least 1"),
    (["audio", "reconstruct", "x.wav", "--model", "m", "-o", "o", "--chunk-size", "zero"], "expected a whole number"),
    (["eval", "pfid", "--model", "m", "--data", "d", "--out", "o", "--workers", "-1"], "--workers: must be at least 0"),
    (["eval", "rfid", "--model", "m", "--data", "d", "--out", "o", "--num-images", "0"], "--num-images: must be at least 1"),
    (["eval", "rfid", "--model", "m", "--data", "d", "--out", "o", "--batch-size", "0"], "--batch-size: must be at least 1"),
    (["tokenize", "d", "--model", "m", "-o", "o", "--shard-size", "0"], "--shard-size: must be at least 1"),
    (["generate", "--generator", "g", "--model", "m", "-o", "o.npz", "--num-per-class", "0"],
     "--num-per-class: must be at least 1"),
    (["generate", "--generator", "g", "--model", "m", "-o", "o.npz", "--num-per-class", "1", "--top-k", "-3"],
     "--top-k: must be at least 0"),
])
def test_bad_numbers_are_refused_by_name(argv, needle, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and needle in capsys.readouterr().err


@pytest.mark.parametrize("ids,needle", [([[1, 2, -1]], "found -1..2"), ([[1, 999]], "found 1..999"),
                                        ([["a", "b"]], "expected numbers")])
def test_decode_refuses_ids_outside_the_codebook(tmp_path, ids, needle, capsys):
    torch.manual_seed(0)
    TiTok(tiny_config(True)).save_pretrained(tmp_path / "tok")
    np.save(tmp_path / "ids.npy", np.array(ids))
    code = main(["decode", str(tmp_path / "ids.npy"), "--model", str(tmp_path / "tok"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "ids.npy" in err and needle in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("override,needle", [
    ("data.batch_size=0", "data.batch_size must be >= 1"), ("training.max_steps=-5", "training.max_steps must be >= 1"),
    ("perturbation.alpha=2", "perturbation.alpha must be >= 0 and <= 1"),
    ("perturbation.alpha=0.5", "perturbs nothing with perturbation.beta=0.0"), ("optimizer.lr=0", "optimizer.lr must be > 0"),
])
def test_recipe_numbers_out_of_range_are_refused(override, needle):
    with pytest.raises(RecipeError, match=needle):
        load_recipe(TINY, [override])


def test_recipe_with_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  family: titok\n   config: [\n")
    with pytest.raises(RecipeError, match=r"bad\.yaml: not valid YAML at line 3"):
        load_recipe(bad)


def test_eval_workers_default_to_what_the_machine_has():
    """4 workers on a 2-core machine made PyTorch warn on every run: the default is the engine's rule."""
    from vistok.cli import build_parser
    from vistok.commands.arguments import workers_or_default
    from vistok.data.loader import default_num_workers

    args = build_parser().parse_args(["eval", "pfid", "--model", "m", "--data", "d", "--out", "o"])
    assert args.workers is None and workers_or_default(args.workers) == default_num_workers()
    assert default_num_workers() < max(2, len(os.sched_getaffinity(0)))
    assert workers_or_default(3) == 3


@pytest.mark.parametrize("error,caught", [
    (TypeError("unsupported operand"), False), (KeyError("state"), False), (ZeroDivisionError(), False),
    (RuntimeError("shape mismatch in a kernel"), False), (InputError("x.png: too small"), True),
    (UnknownNameError("no zoo model named 'x'"), True), (FileNotFoundError(2, "No such file", "x.png"), True),
])
def test_only_user_errors_become_one_line_messages(monkeypatch, capsys, error, caught):
    """A project error or a file error is one line and exit 2; anything else is a bug: its traceback stays."""
    def broken(args):
        raise error
    monkeypatch.setattr("vistok.commands.zoo._list", broken)
    monkeypatch.delenv("TOKZOO_TRACEBACK", raising=False)
    if caught:
        assert main(["zoo", "list"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("tokzoo zoo: error: ") and "x" in err and '"' not in err
    else:
        with pytest.raises(type(error)):
            main(["zoo", "list"])
