"""Export a trained GeoVR model as a stock Hugging Face checkpoint; the heads go to a separate safetensors file.

    python tools/export_hf.py projects/geovr/config.py work_dirs/config/iter_400.safetensors --out exported/
    # then, with plain transformers:
    #   model = AutoModelForImageTextToText.from_pretrained('exported/'); processor = AutoProcessor.from_pretrained(...)
"""
from __future__ import annotations

import argparse

from mmengine.config import Config, DictAction
from mmengine.runner.checkpoint import load_state_dict

from geokit.engine.runner import load_checkpoint_file
from geokit.models.mllms.export import export_hf
from geokit.registry import MODELS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export a GeometricMLLM as a stock Hugging Face checkpoint.')
    parser.add_argument('config', help='the training config')
    parser.add_argument('checkpoint', help='trained checkpoint (.safetensors)')
    parser.add_argument('--out', required=True, help='output directory (config.json, model.safetensors, processor)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, str]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model_cfg = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(cfg.model)
    model_cfg['teacher'] = None          # targets are not needed to export
    model_cfg['backbone']['load_weights'] = False
    model = MODELS.build(model_cfg)
    state_dict = load_checkpoint_file(args.checkpoint)['state_dict']
    missing = sorted(set(model.state_dict()) - set(state_dict))
    if missing:
        raise KeyError(f'{args.checkpoint} lacks {len(missing)} weights of the model built from {args.config}, e.g. '
                       f'{missing[:5]}. Export with the config the checkpoint was trained with.')
    load_state_dict(model, state_dict, strict=True)
    written = export_hf(model.eval(), args.out, objectives_cfg=model_cfg.get('objectives'))
    print(f"exported {written['model']} (heads: {written['heads']})")
    return written


if __name__ == '__main__':
    main()
