"""``tokzoo zoo list|info|download|convert|verify``: browse the catalogue, fill the cache, check it."""
from __future__ import annotations

import argparse
import sys


def _list(args) -> int:
    from vistok.hub.catalogue import list_cards

    cards = list_cards(args.pattern)
    if not cards:
        print(f"no zoo model matches {args.pattern!r}", file=sys.stderr)
        return 1
    from vistok.hub.zoo_table import card_shape

    rows = [(c, card_shape(c)) for c in cards]
    width = max(len(c.name) for c in cards)
    tokens = max(len(s.tokens) for _, s in rows)
    print(f"{'name':<{width}}  {'family':<14} {'params':>8}  {'tokens':<{tokens}}  {'codebook':<15} "
          f"{'bitrate':<11} reported")
    for card, shape in rows:
        params = f"{card.params_millions:7.1f}M" if card.params_millions else "-".rjust(8)
        print(f"{card.name:<{width}}  {card.family:<14} {params}  {shape.tokens:<{tokens}}  {shape.codebook:<15} "
              f"{shape.bitrate:<11} {_headline(card.reported)}".rstrip())
    return 0


# The one number per card that `zoo list` shows: the first of these the authors reported.
HEADLINE_METRICS = (("rfid", "rFID"), ("utmos", "UTMOS"), ("pesq", "PESQ"))


def _headline(reported: dict) -> str:
    for key, label in HEADLINE_METRICS:
        value = reported.get(key)
        if isinstance(value, (int, float)):
            return f"{label} {value}"
    return ""


def _info(args) -> int:
    import yaml

    from vistok.hub.catalogue import get_card
    from vistok.hub.loading import converted_dir

    card = get_card(args.name)
    print(f"{card.name}  ({card.family})\n{card.description}\n")
    print(f"source:     {card.source.describe()}")
    print(f"sha256:     {card.source.sha256 or 'not pinned'}")
    print(f"license:    {card.license}")
    print(f"converter:  {card.converter}")
    if card.params_millions:
        print(f"parameters: {card.params_millions}M")
    cached = converted_dir(card)
    print(f"cache:      {cached} ({'converted' if cached.is_dir() else 'not downloaded'})")
    print("config:\n  " + yaml.safe_dump(card.config, sort_keys=False).strip().replace("\n", "\n  "))
    if card.reported:
        print("reported by the authors:\n  " + yaml.safe_dump(card.reported, sort_keys=False).strip().replace("\n", "\n  "))
    for title, block in (("trained here", card.training), ("measured here", card.measured)):
        if block:
            print(f"{title}:\n  " + yaml.safe_dump(block, sort_keys=False).strip().replace("\n", "\n  "))
    for key, url in card.links.items():
        print(f"{key}: {url}")
    if card.notes:
        print(f"notes: {card.notes}")
    print(f"card: {card.path}")
    return 0


def _download(args) -> int:
    import json
    import warnings

    from vistok.hub.catalogue import get_card
    from vistok.hub.loading import NonCommercialLicenseWarning, convert_card

    for name in args.names:
        card = get_card(name)
        if "non-commercial" in card.license.lower():  # the user must see the terms before using the weights
            print(f"{name}: license: {card.license}")
        with warnings.catch_warnings():  # printed above; the library's warning would say it twice
            warnings.simplefilter("ignore", NonCommercialLicenseWarning)
            target = convert_card(card, force_download=args.force)
        source = json.loads((target / "source.json").read_text())
        checked = (source.get("checked") or {}).get(source["source"])
        print(f"{name}: {target}  (source sha256 {source['sha256']}{'; ' + checked if checked else ''})")
    return 0


def _convert(args) -> int:
    from pathlib import Path

    from vistok.hub.catalogue import get_card
    from vistok.hub.loading import convert_card
    from vistok.models.pretrained import load_pretrained_dir, save_pretrained

    target = convert_card(get_card(args.name), checkpoint=Path(args.checkpoint))
    if args.output:
        save_pretrained(load_pretrained_dir(target), args.output)
        target = Path(args.output)
    print(f"{args.name}: converted into {target}")
    return 0


def _verify(args) -> int:
    """Exit 0 when every downloaded file matches what it was checked against, 2 when one does not
    (one line per such file on stderr, naming it and both hashes), 1 when it is not downloaded."""
    from vistok.hub.catalogue import get_card
    from vistok.hub.sources import verify_cached

    card = get_card(args.name)
    try:
        verdicts = verify_cached(card)
    except FileNotFoundError as err:
        print(err, file=sys.stderr)
        return 1
    for verdict in verdicts:
        print(f"{card.name}: {verdict.describe}\n  file    {verdict.path}\n  sha256  {verdict.sha256}")
        for ref in verdict.matched:
            print(f"  ok      matches {ref.label}")
        for ref in verdict.mismatched:
            print(f"  DIFFERS from {ref.label}: {ref.sha256}")
        if not verdict.matched and not verdict.mismatched:
            print("  not checked: nothing to compare it with (no pin, no hub sha256, no record)")
        for note in verdict.notes:
            print(f"  note    {note}")
    bad = [v for v in verdicts if not v.ok]
    for verdict in bad:
        print(verdict.message(card.name), file=sys.stderr)
    if bad:
        return 2
    unchecked = sum(1 for v in verdicts if not v.matched)
    tail = f"; {unchecked} checked against nothing" if unchecked else ""
    print(f"{card.name}: verified, {len(verdicts)} file(s) match what they were checked against{tail}")
    return 0


def _table(args) -> int:
    from vistok.hub.catalogue import list_cards
    from vistok.hub.zoo_table import zoo_table

    print(zoo_table(list_cards()))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    zoo = subparsers.add_parser("zoo", help="list, inspect and download published tokenizers")
    sub = zoo.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="list zoo models (optionally matching a pattern such as 'titok-*')")
    p.add_argument("pattern", nargs="?")
    p.set_defaults(func=_list)
    p = sub.add_parser("info", help="show a zoo card: source, license, config, reported metrics")
    p.add_argument("name")
    p.set_defaults(func=_info)
    p = sub.add_parser("download", help="download, verify and convert zoo models into the cache")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--force", action="store_true", help="download again even if cached")
    p.set_defaults(func=_download)
    p = sub.add_parser("convert", help="convert a checkpoint file obtained by hand (checked against the card)")
    p.add_argument("name")
    p.add_argument("checkpoint", help="the official checkpoint file the card describes")
    p.add_argument("-o", "--output", help="also write a save_pretrained directory here")
    p.set_defaults(func=_convert)
    p = sub.add_parser("verify", help="recompute the sha256 of a model's downloaded files and compare them with "
                       "the card's pin, the hub's sha256 and the sha256 first seen (exit 2 on a mismatch)")
    p.add_argument("name")
    p.set_defaults(func=_verify)
    p = sub.add_parser("table", help="print the README's zoo table (markdown, generated from the cards)")
    p.set_defaults(func=_table)
