"""Turn a downloaded copy of VSI-Bench / VSI-590K / Spatial-MLLM training data into what the configs read.

    python tools/prepare_data.py vsibench /data/VSI-Bench            # -> /data/VSI-Bench/geokit_test.jsonl
    python tools/prepare_data.py vsi590k /data/VSI-590K              # -> /data/VSI-590K/geokit_train.jsonl
    python tools/prepare_data.py spatial_mllm /data/spatial_mllm --ann-file annotations/spatial-mllm-mix-133k.jsonl
    python tools/prepare_data.py vsibench /data/VSI-Bench --check-only   # report, write nothing

Every referenced video must exist and decode: missing ones are listed by name (and in ``missing_videos.txt`` next to
the output) and nothing is written unless ``--allow-missing``. Each row gets the video's frame rate, frame count and
duration. Exit status: 0 when every video is readable, 1 otherwise. Then point the config at the output, e.g.
``test_dataloader.dataset.data_root=/data/VSI-Bench test_dataloader.dataset.ann_file=geokit_test.jsonl``.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from collections import Counter

from geokit.datasets.published import LAYOUTS, prepare_published


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Prepare a published dataset for geokit and check its videos.')
    parser.add_argument('layout', choices=sorted(LAYOUTS), help='which published dataset the download is')
    parser.add_argument('root', help="the download's root folder (videos are relative to it)")
    parser.add_argument('--ann-file', help="annotation file (default: the layout's usual file name)")
    parser.add_argument('--out', help='output JSONL (default: <root>/geokit_<split>.jsonl)')
    parser.add_argument('--check-only', action='store_true', help='report only, write nothing')
    parser.add_argument('--allow-missing', action='store_true',
                        help='write the rows with readable videos even if some videos are missing')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    split = LAYOUTS[args.layout].split
    out = None if args.check_only else (args.out or f'geokit_{split}.jsonl')
    result = prepare_published(args.root, args.layout, ann_file=args.ann_file, out_file=out,
                               allow_missing=args.allow_missing)
    types = Counter(row.get('question_type') for row in result.rows)
    durations = [v['duration'] for v in result.videos.values() if v['duration']]
    print(f'{result.annotation_file}: {len(result.rows)} rows with readable videos, {len(result.videos)} videos '
          f'({sum(durations) / 60:.1f} min)' + (f', {result.left_out} image-only rows left out' if result.left_out
                                                 else ''))
    for question_type, count in sorted(types.items(), key=lambda item: str(item[0])):
        print(f'  {question_type}: {count}')
    for name, path in result.subset_files.items():
        print(f'subset {name}: {path} (test_evaluator.subset_file={path})')
    problems = [f'missing video: {video}' for video in result.missing]
    problems += [f'unreadable video: {video} ({error})' for video, error in result.unreadable.items()]
    for line in problems:
        print(line)
    if problems:
        report = osp.join(args.root, 'missing_videos.txt') if out is None or not osp.isabs(out) else \
            osp.join(osp.dirname(out), 'missing_videos.txt')
        with open(report, 'w', encoding='utf-8') as handle:
            handle.writelines(line + '\n' for line in problems)
        print(f'{len(problems)} of {len(result.videos) + len(problems)} videos missing or unreadable '
              f'(listed in {report}).')
    if result.out_file:
        print(f'wrote {result.out_file}')
    elif out is not None:
        print('nothing written: fix the videos above or pass --allow-missing.')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
