"""The demo's speech section: a codec from the zoo on the bundled speech clips.

Each clip is encoded to ids and decoded; :func:`audiotok.evaluation.evaluate_codec` scores it
(PESQ-WB, STOI, SI-SDR, mel and multi-resolution STFT distances) with its protocol and writes the
reconstructions and spectrograms. The bundled originals are copied beside them so the page plays both.
"""
from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict, List

import torch

from vistok.hub.loading import load_tokenizer


def bundled_clips() -> List[Path]:
    folder = Path(str(resources.files("audiotok") / "assets" / "samples"))
    return sorted(folder.glob("*.flac"))


def run(name: str, out_dir: Path, emit: Callable[[str], None] = print) -> Dict[str, Any]:
    from audiotok.data import load_audio
    from audiotok.evaluation import evaluate_codec

    model = load_tokenizer(name)
    clips = bundled_clips()
    rate = model.config.sample_rate
    levels = getattr(model.config, "num_quantizers", 1)
    emit(f"Speech codec {name}: {rate} Hz, {model.config.token_rate:g} frames/s x {levels} codebook(s) of "
         f"{model.config.codebook_size}")
    results = evaluate_codec(model, clips, clips[0].parent, out_dir, name, "cpu", log=lambda line: emit(f"  {line}"))
    originals = out_dir / "originals"
    originals.mkdir(parents=True, exist_ok=True)
    for row, clip in zip(results["files"], clips):
        shutil.copyfile(clip, originals / clip.name)  # the bundled files (24 kHz FLAC), so the page can move
        with torch.inference_mode():  # the evaluation keeps no ids; the page shows the first ones
            ids = model.encode(load_audio(clip, rate), rate)
        row.update(original=f"{out_dir.name}/originals/{clip.name}",
                   reconstruction=f"{out_dir.name}/report/audio/{clip.stem}.wav",
                   spectrogram=f"{out_dir.name}/report/spectrograms/{clip.stem}.png",
                   ids_shape=list(ids.shape[1:]), ids_head=ids[0].reshape(-1, ids.shape[-1])[:, :24].tolist())
    return {"model": name, "sample_rate": rate, "frames_per_second": model.config.token_rate,
            "codebooks": levels, **results}
