"""Export a trained GeometricMLLM as a stock Hugging Face checkpoint plus what stock transformers cannot run.

    python tools/export_hf.py projects/geovr/config.py work_dirs/geovr/config/iter_400.safetensors --out exported/
    # GeoVR: plain transformers is the whole inference model (heads in a separate file):
    #   model = AutoModelForImageTextToText.from_pretrained('exported/'); processor = AutoProcessor.from_pretrained(...)
    # Spatial-MLLM (fusion): spatial encoder + connector are saved beside it; one call rebuilds the model:
    #   model = geokit.load_exported('exported/')
"""
from __future__ import annotations

import argparse

from mmengine.config import DictAction

from geokit.engine.launch import load_config
from geokit.inference import load_training_weights
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
    cfg = load_config(args.config, args.cfg_options)
    model_cfg = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(cfg.model)
    model_cfg['teacher'] = None          # targets are not needed to export
    model_cfg['backbone']['load_weights'] = False
    model = MODELS.build(model_cfg)
    load_training_weights(model, args.checkpoint)
    written = export_hf(model.eval(), args.out, objectives_cfg=model_cfg.get('objectives'),
                        fusion_cfg=model_cfg.get('fusion'), data_preprocessor_cfg=model_cfg.get('data_preprocessor'))
    extra = f", spatial encoder + connector: {written['fusion']}" if 'fusion' in written else ''
    print(f"exported {written['model']} (heads: {written['heads']}{extra})")
    return written


if __name__ == '__main__':
    main()
