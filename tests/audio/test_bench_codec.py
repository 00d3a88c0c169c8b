"""eval/bench_codec.py without timing anything: what it selects, how it alternates the two sides, how
per-family results merge and how a missing peer or differing ids read in the table."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "eval"))

import bench_codec as bench  # noqa: E402
from codec_pairs import FAMILIES  # noqa: E402

ALL = [(f, c) for f, e in FAMILIES.items() for c in e.configs]


def test_selection_expands_orders_and_dedups():
    assert bench.selection(["all"]) == ALL
    assert bench.selection(["wavtokenizer:75", "dac", "dac:24khz"]) == [
        ("dac", "16khz"), ("dac", "24khz"), ("dac", "44khz"), ("wavtokenizer", "75")]


@pytest.mark.parametrize("value, words", [("dax", ["unknown family 'dax'", "dac"]),
                                          ("dac:48khz", ["dac has no config '48khz'", "16khz"])])
def test_selection_names_the_bad_value(value, words):
    with pytest.raises(ValueError) as err:
        bench.selection([value])
    assert all(w in str(err.value) for w in words)


def test_bad_arguments_are_refused(capsys):
    for argv, words in ((["--family", "dax"], "unknown family"), (["--seconds", "0"], "--seconds must be positive"),
                        (["--per-venv", "--python", "dac"], "FAMILY=PATH")):
        with pytest.raises(SystemExit):
            bench.parse(argv)
        assert words in capsys.readouterr().err


def test_interpreters_fall_back_to_this_one_when_a_venv_is_absent(tmp_path):
    python = tmp_path / "python"
    python.write_text("")
    chosen = bench.interpreters([f"dac={python}", f"snac={tmp_path / 'missing'}"])
    assert chosen["dac"] == str(python)
    assert chosen["snac"] == sys.executable
    assert set(chosen) == set(FAMILIES)


def test_alternate_flips_the_order_every_pass():
    calls = []
    out = bench.alternate({"ours": lambda: calls.append("o"), "official": lambda: calls.append("t")},
                          warmup=1, iters=3, device="cpu")
    assert "".join(calls) == "ot" + "ot" + "to" + "ot"
    assert set(out) == {"ours", "official"} and set(out["ours"]) == {"best", "median"}
    assert out["ours"]["best"] <= out["ours"]["median"]


def test_compare_ids():
    a = torch.arange(8).reshape(1, 2, 4)
    assert bench.compare_ids(a, a.clone()) == dict(equal=True, share=1.0, detail="equal")
    b = a.clone()
    b[0, 1, 3] = 0
    assert bench.compare_ids(a, b) == dict(equal=False, share=7 / 8, detail="1 of 8 differ")
    assert not bench.compare_ids(a, a[..., :3])["equal"]


def _row(family, config, peer=True, equal=True):
    rtf = {"ours": {"encode": 0.1, "decode": 0.2}}
    row = dict(family=family, config=config, model=f"{family} {config}", python=f"/venv-{family}/python",
               params_millions=1.0, rtf=rtf, gflops_per_audio_second={"ours": {"encode": 1.0, "decode": None}},
               peer=f"{family}pkg 1.0" if peer else f"{family}pkg not installed")
    if peer:
        rtf["official"] = {"encode": 0.2, "decode": 0.2}
        row["ours_over_official"] = {"encode": 0.5, "decode": 1.0}
        row["ids"] = dict(equal=equal, share=1.0 if equal else 0.75, detail="equal" if equal else "2 of 8 differ")
        row["gflops_per_audio_second"]["official"] = {"encode": 1.0, "decode": 2.0}
        if equal:
            row["audio_rel_diff"] = 0.0
    return row


META = dict(batch=1, seconds=3.0, input="speech", dtype="fp32", device_name="CPU", device="cpu", note="shared",
            torch="2", threads=2, iters=5, warmup=1, command="python eval/bench_codec.py", cores=2,
            load_average=[1.0, 1.0, 1.0])


def test_merge_orders_rows_keeps_each_parts_meta_and_refuses_duplicates():
    parts = [dict(META, python="/venv-snac/python", families=["snac"], rows=[_row("snac", "24khz")]),
             dict(META, python="/venv-dac/python", families=["dac"],
                  rows=[_row("dac", "44khz"), _row("dac", "16khz")])]
    merged = bench.merge(parts, dict(META, python="driver"))
    assert [(r["family"], r["config"]) for r in merged["rows"]] == [("dac", "16khz"), ("dac", "44khz"),
                                                                      ("snac", "24khz")]
    assert [p["python"] for p in merged["parts"]] == ["/venv-snac/python", "/venv-dac/python"]
    assert all("rows" not in p for p in merged["parts"]) and merged["python"] == "driver"
    with pytest.raises(ValueError, match="more than one part"):
        bench.merge(parts + [dict(META, python="x", rows=[_row("dac", "16khz")])], META)


def test_report_says_peer_not_installed_and_shows_the_share_of_differing_ids():
    parts = [dict(META, python="/venv-dac/python", families=["dac"], rows=[_row("dac", "16khz", peer=False)]),
             dict(META, python="/venv-mimi/python", families=["mimi"], rows=[_row("mimi", "full", equal=False)]),
             dict(META, python="/venv-snac/python", families=["snac"], rows=[_row("snac", "24khz")])]
    result = bench.merge(parts, META)
    lines = bench.report(result).splitlines()
    dac = next(line for line in lines if line.startswith("dac 16khz"))
    mimi = next(line for line in lines if line.startswith("mimi full"))
    snac = next(line for line in lines if line.startswith("snac 24khz"))
    assert "peer not installed" in dac and "0.50" not in dac
    assert "75.0000% equal" in mimi and "0.50" in mimi
    assert "equal" in snac and "0.0e+00" in snac
    assert "  dac: /venv-dac/python (1-min load average at its end 1.00 on 2 cores)" in lines


def test_merge_mode_adds_a_later_family_to_a_merged_result(tmp_path):
    import json

    first = bench.merge([dict(META, python="/venv-dac/python", families=["dac"], rows=[_row("dac", "16khz")]),
                         dict(META, python="/venv-snac/python", families=["snac"], rows=[_row("snac", "24khz")])],
                        dict(META, command="python eval/bench_codec.py --per-venv"))
    later = dict(META, python="/venv-mimi/python", families=["mimi"], rows=[_row("mimi", "full")],
                 command="python eval/bench_codec.py --family mimi")
    (tmp_path / "a.json").write_text(json.dumps(first))
    (tmp_path / "b.json").write_text(json.dumps(later))
    bench.main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "m")])
    merged = json.loads((tmp_path / "m.json").read_text())
    assert [r["family"] for r in merged["rows"]] == ["dac", "snac", "mimi"]
    assert [p["families"] for p in merged["parts"]] == [["dac"], ["snac"], ["mimi"]]
    assert merged["command"] == "python eval/bench_codec.py --per-venv + python eval/bench_codec.py --family mimi"
    assert "mimi full" in (tmp_path / "m.txt").read_text()
    with pytest.raises(SystemExit, match="no such file"):
        bench.main(["--merge", str(tmp_path / "absent.json"), "--out", str(tmp_path / "n")])
