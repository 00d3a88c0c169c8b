"""rFID of an image tokenizer (TiTok / RobusTok protocol): reconstructions of an evaluation set
against its originals, with PSNR, SSIM, LPIPS and codebook use. Same as `tokzoo eval rfid`.

    python eval/rfid.py --model titok-l32 --data /data/imagenet/val --out outputs/rfid_titok_l32

See eval/README.md for the published protocols and where the Inception weights come from.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from vistok.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["eval", "rfid", *sys.argv[1:]]))
