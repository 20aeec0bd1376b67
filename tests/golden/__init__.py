"""What the contracts produce today, kept as data: the DDL of every migration, the gateway's envelope bytes, the
worker's rows and topic records, the exclusion rows. ``tests/test_golden.py`` holds the code to them, so a
refactoring of the contracts (or of the code that fills them) that changes one byte fails.

    .venv/bin/python -m tests.golden              # check (what the test does), print the first difference
    .venv/bin/python -m tests.golden --write      # a change meant to alter the contract: record its new outputs
    .venv/bin/python -m tests.golden --new-inputs # rebuild the inputs too (the corpus), then their outputs

The inputs (frames, records) are stored beside the outputs, so the check does not depend on the test helpers that
made them.
"""
