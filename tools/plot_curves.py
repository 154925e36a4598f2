"""Plot a run's training curves (mmengine's local log) as a PNG.

    python tools/plot_curves.py work_dirs/geovr/config --out docs/images/geovr_training_curves.png
    python tools/plot_curves.py work_dirs/geovr/config/20261201_090320/vis_data/scalars.json --keys loss loss_lm lr
"""
from __future__ import annotations

import argparse

from geokit.visualization.curves import find_scalars, plot_training_curves, read_scalars


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Plot training curves from a work dir or a scalars.json.')
    parser.add_argument('path', help='work dir (the newest <timestamp>/vis_data/scalars.json is used) or the file')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--keys', nargs='+', help='scalars to plot (default: every loss* key and lr)')
    parser.add_argument('--title', help='figure title')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[str]:
    args = parse_args(argv)
    scalars = find_scalars(args.path)
    keys = plot_training_curves(read_scalars(scalars), args.out, keys=args.keys, title=args.title)
    print(f'{scalars}: plotted {", ".join(keys)} -> {args.out}')
    return keys


if __name__ == '__main__':
    main()
