"""`make demo`: the embedded default tokenizers on real images and speech, offline, as one HTML page.

Both defaults load with ``vistok.load_tokenizer`` by zoo name, the path a published model takes:
their weights ship inside the package and their cards pin the files' sha256. The run writes
``index.html`` with the reconstructions, token ids, audio players, spectrograms, metric tables and
plots (every number with its protocol), ``results.json`` with the same numbers, and prints the
commands that go further (official checkpoints, training, fine-tuning, pFID).
"""
