"""Issue 16: every malformed or unusual input in ``cases.py`` (526 cases as root, made from a fixed seed
at test time: 152 image, 103 audio, 99 recipe, 75 + 11 model directory, 39 + 24 token-id array and 23
real one-step training runs) through the real command line: ``tokzoo reconstruct``, ``encode``, ``decode``, ``tokzoo
audio reconstruct`` / ``decode``, ``tokzoo train`` (``--print-recipe`` and a few real one-step runs)
and ``--model DIR``, on a tiny TiTok and a tiny WavTokenizer.

Each case must end cleanly:

- exit code 0 (accepted) or 2 (refused), as the case requires where the outcome is certain; an
  exception out of ``main()`` is a failure with its traceback, and a hang is one too (an alarm
  in-process, a timeout for the cases run in a subprocess);
- a refusal is one message on stderr whose first line is ``tokzoo CMD: error: ...`` and names the
  file or argument at fault (further lines only as indented detail), with no traceback;
- on refusal the output path is exactly as before (absent, or unchanged); on acceptance it holds
  one file per input and no temporary leftovers;
- a planted pickle never runs (its marker file never appears);
- an accepted input with NaN/Inf writes only finite audio, and any metric printed as nan is
  explained ("X is NaN: why").

The whole suite takes about 70 s on one core (the two cases run in a subprocess take 4-5 s each).
"""
from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.bad_inputs.cases import CASES, Workspace, tiny_recipe
from vistok.cli import main

pytest.importorskip("soundfile")
pytest.importorskip("soxr")

REPO = Path(__file__).resolve().parents[2]
HANG_S = 30


def test_there_are_at_least_200_distinct_cases():
    assert len(CASES) >= 200
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="session")
def shared(tmp_path_factory):
    from tests.audio.test_wavtokenizer import tiny_model
    from tests.models.test_titok import tiny_config
    from vistok.models.titok import TiTok

    root = tmp_path_factory.mktemp("bad-input-models")
    torch.manual_seed(0)
    TiTok(tiny_config(True)).save_pretrained(root / "titok")
    torch.manual_seed(0)
    tiny_model().save_pretrained(root / "wavtok")
    from PIL import Image

    samples = sorted((REPO / "vistok/assets/samples").glob("*.jpg"))
    for split, n in (("train", 4), ("val", 2)):
        (root / "images" / split).mkdir(parents=True)
        for i in range(n):
            with Image.open(samples[i % len(samples)]) as img:
                crop = img.convert("RGB").crop((8 * i, 8 * i, 8 * i + 48, 8 * i + 48))
                crop.save(root / "images" / split / f"{i}.png")
    return {"titok": root / "titok", "wavtok": root / "wavtok", "images_root": root / "images",
            "image": samples[0], "speech": sorted((REPO / "tests/assets/audio").glob("*.flac"))[0], "root": root}


@pytest.fixture(scope="session")
def checkpoint(shared):
    """A real one-step run of the tiny recipe: its checkpoint directory, for the resume cases."""
    root = shared["root"] / "trained"
    ws = Workspace(root, "checkpoint", shared["titok"], shared["wavtok"], shared["image"], shared["speech"],
                   shared["images_root"])
    root.mkdir()
    recipe = root / "recipe.yaml"
    recipe.write_text(tiny_recipe(ws))
    assert main(["train", str(recipe), f"experiment.output_dir={root / 'run'}"]) == 0
    return root / "run" / "checkpoints" / "step-00000001"


class Hang(Exception):
    pass


@contextmanager
def alarm(seconds: int):
    def ring(signum, frame):
        raise Hang(f"no answer after {seconds} s")
    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_cli(argv, isolate: bool, capsys):
    """(exit code, stdout, stderr + warnings) of ``tokzoo ARGV``."""
    if isolate:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1",
               "PYTHONWARNINGS": "ignore"}
        code = "import sys; from vistok.cli import main; sys.exit(main(sys.argv[1:]))"
        try:
            proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env,
                                  timeout=HANG_S, cwd=REPO)
        except subprocess.TimeoutExpired:
            pytest.fail(f"tokzoo {' '.join(argv)}: hung for {HANG_S} s")
        return proc.returncode, proc.stdout, proc.stderr, ""
    with warnings.catch_warnings(record=True) as caught, alarm(HANG_S):
        warnings.simplefilter("always")
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse
            code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err, "\n".join(str(w.message) for w in caught)


def snapshot(path: Path):
    if not os.path.lexists(path):
        return None
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return {str(p.relative_to(path)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(path.rglob("*"))}


def check_refusal(err: str, names):
    assert "Traceback" not in err, err
    lines = err.rstrip("\n").splitlines()
    if lines and lines[0].startswith("usage:"):  # argparse: usage block, then its one error line
        lines = [line for line in lines if not line.startswith(("usage:", " "))]
    assert lines, "refused without a message"
    assert re.match(r"tokzoo [\w -]+: error: \S", lines[0]), err
    assert all(line.startswith((" ", "\t")) for line in lines[1:]), f"more than one message:\n{err}"
    assert any(name in lines[0] for name in names), f"the message names none of {names}:\n{err}"


def check_nan_is_explained(text: str):
    for metric in set(re.findall(r"([\w-]+) nan\b", text)) - {"mean"}:
        assert f"{metric} is NaN" in text, f"{metric} printed as nan without a reason:\n{text}"


def check_accepted_outputs(prep, text: str):
    if prep.nonfinite:  # an accepted NaN/Inf input: its outputs exist and are checked below
        assert os.path.lexists(prep.output), "a NaN/Inf input was accepted but nothing was written"
    if prep.outputs is None or not prep.output.is_dir():
        return
    files = [p for p in prep.output.rglob("*") if p.is_file()]
    leftovers = [p.name for p in files if p.name.startswith(".")]
    assert not leftovers, f"temporary files left in {prep.output}: {leftovers}"
    assert len(files) == prep.outputs, f"{prep.output}: {sorted(p.name for p in files)}; expected {prep.outputs}"
    import soundfile as sf

    for path in files:
        if path.suffix == ".wav":
            data, _ = sf.read(str(path), dtype="float32")
            if not np.isfinite(data).all():
                assert re.search(r"NaN|non-finite|infinite", text), f"{path}: NaN/Inf written without a word"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, shared, capsys, request):
    ws = Workspace(tmp_path, case.id, shared["titok"], shared["wavtok"], shared["image"], shared["speech"],
                   shared["images_root"], fixture=request.getfixturevalue)
    prep = case.make(ws)
    capsys.readouterr()
    before = snapshot(prep.output)
    code, out, err, warned = run_cli(prep.argv, case.isolate, capsys)
    assert not ws.marker.exists(), "a planted pickle was unpickled"
    assert code in (0, 2), f"exit code {code!r}\n{out[-2000:]}\n{err[-4000:]}"
    if prep.expect == "accept":
        assert code == 0, f"refused a valid input:\n{err}"
    if prep.expect == "refuse":
        assert code == 2, f"accepted what must be refused:\n{out[-2000:]}"
    text = "\n".join((out, err, warned))
    if code == 2:
        check_refusal(err, prep.names)
        assert snapshot(prep.output) == before, f"{prep.output} changed although the command refused"
    else:
        check_nan_is_explained(text)
        check_accepted_outputs(prep, text)
