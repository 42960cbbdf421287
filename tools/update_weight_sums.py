#!/usr/bin/env python
"""Record the SHA-256 of the shipped weights, after adding or replacing one.

    python tools/update_weight_sums.py [FOLDER]

rewrites ``FOLDER/SHA256SUMS`` (default: ``mmagic_cm/weights/digits``; the
``sha256sum`` format, so ``cd FOLDER && sha256sum -c SHA256SUMS`` checks it)
from every file there. Loading a shipped weight file refuses one whose digest
is not the recorded one. The file is replaced atomically.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    from mmagic_cm.files.checkpoint import SHIPPED_WEIGHTS_DIR, WEIGHT_SUMS_NAME, update_weight_sums
    p = argparse.ArgumentParser(description=f'Rewrite {WEIGHT_SUMS_NAME} of a weights folder')
    p.add_argument('folder', nargs='?', default=SHIPPED_WEIGHTS_DIR,
                   help='folder of the weights (default: the shipped digits weights)')
    args = p.parse_args(argv)
    changes = update_weight_sums(args.folder)
    said = '; '.join(f'{what} {", ".join(names)}' for what, names in changes.items() if names)
    print(f'wrote {args.folder}/{WEIGHT_SUMS_NAME}: {said or "no change"}')
    return 0


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
