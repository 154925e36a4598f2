"""Build the tiny Qwen-VL assets that the embedded default trains (offline, deterministic).

    python tools/build_tiny_mllm.py                       # writes geokit/assets/mllms/tiny-qwen3vl and tiny-qwen2_5vl
    python tools/build_tiny_mllm.py --out-root /tmp/assets --vocab-size 1024

What is written per architecture (no weights: the tiny models are random-init from ``config.json`` with a seed):
``config.json`` (a stock ``Qwen3VLConfig`` / ``Qwen2_5_VLConfig``), the Qwen2 byte-level BPE tokenizer
(``tokenizer.json``, ``tokenizer_config.json``) trained with ``tokenizers`` on SynthVSI-style question/answer text,
the Qwen chat template and the stock image/video processors with a small patch size, all loadable with
``AutoProcessor.from_pretrained(path)`` / ``AutoConfig.from_pretrained(path)``.

The tokenizer corpus comes from the SynthVSI question generator when ``geokit.datasets`` provides one
(``synthvsi_text_corpus``), otherwise from the VSI-Bench question phrasing below. The special tokens are Qwen-VL's,
in Qwen's order, after the BPE vocabulary; the geometry tokens are *not* in the saved tokenizer (as with a stock
Qwen checkpoint, :class:`geokit.models.mllms.QwenVLBackbone` adds them at build time into the spare embedding rows).
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import os.path as osp
import random
import shutil
import tempfile

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import (
    Qwen2_5_VLConfig,
    Qwen2_5_VLProcessor,
    Qwen2TokenizerFast,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
    Qwen3VLConfig,
    Qwen3VLProcessor,
    Qwen3VLVideoProcessor,
)
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

DEFAULT_OUT_ROOT = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'geokit', 'assets', 'mllms')

#: Qwen-VL's special tokens, in the order of the official vocabulary (ids follow the BPE vocabulary here).
QWEN_VL_SPECIAL_TOKENS = [
    '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|object_ref_start|>', '<|object_ref_end|>', '<|box_start|>',
    '<|box_end|>', '<|quad_start|>', '<|quad_end|>', '<|vision_start|>', '<|vision_end|>', '<|vision_pad|>',
    '<|image_pad|>', '<|video_pad|>',
]

#: Qwen-VL's chat template (Qwen3-VL behaviour: no default system turn; images/videos as vision blocks).
QWEN_VL_CHAT_TEMPLATE = (
    "{%- set image_count = namespace(value=0) %}{%- set video_count = namespace(value=0) %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}"
    "{%- else %}{%- for content in message['content'] %}"
    "{%- if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{%- set image_count.value = image_count.value + 1 %}"
    "{%- if add_vision_id %}{{- 'Picture ' + image_count.value|string + ': ' }}{%- endif %}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif content['type'] == 'video' or 'video' in content %}"
    "{%- set video_count.value = video_count.value + 1 %}"
    "{%- if add_vision_id %}{{- 'Video ' + video_count.value|string + ': ' }}{%- endif %}"
    "{{- '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{%- elif 'text' in content %}{{- content['text'] }}"
    "{%- endif %}{%- endfor %}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# ------------------------------------------------------------------------------------------ corpus
CATEGORIES = ['chair', 'table', 'sofa', 'bed', 'lamp', 'tv', 'door', 'window', 'cabinet', 'toilet', 'sink',
              'refrigerator', 'stool', 'desk', 'monitor', 'pillow', 'trash can', 'bathtub', 'shelf', 'plant',
              'box', 'backpack', 'cup', 'bottle', 'book', 'clock', 'mirror', 'towel', 'ceiling light', 'heater',
              'washer', 'stove', 'microwave', 'keyboard', 'fireplace', 'piano', 'suitcase', 'bicycle']
NA_POST = 'Please answer the question using a single word or phrase.'
MCA_POST = "Answer with the option's letter from the given choices directly."
PRE = 'These are frames of a video.'


def _vsibench_questions(rng: random.Random) -> list[str]:
    """One round of VSI-Bench-phrased questions (all eight task types) with answers."""
    a, b, c, d, e = rng.sample(CATEGORIES, 5)
    num = f'{rng.uniform(0.1, 60):.1f}'
    options = [f'{letter}. {name}' for letter, name in zip('ABCD', (b, c, d, e))]
    mca = '\n'.join(options)
    letter = rng.choice('ABCD')
    actions = ', '.join(rng.choice(['turn back', 'turn left', 'turn right']) for _ in range(2))
    return [
        f'{PRE}\nHow many {a}(s) are in this room?\n{NA_POST}\n{rng.randint(0, 9)}',
        f'{PRE}\nMeasuring from the closest point of each object, what is the direct distance between the {a} '
        f'and the {b} (in meters)?\n{NA_POST}\n{num}',
        f'{PRE}\nWhat is the length of the longest dimension (length, width, or height) of the {a}, measured in '
        f'centimeters?\n{NA_POST}\n{rng.randint(10, 300)}',
        f'{PRE}\nWhat is the size of this room (in square meters)? If multiple rooms are shown, estimate the size '
        f'of the combined space.\n{NA_POST}\n{num}',
        f'{PRE}\nMeasuring from the closest point of each object, which of these objects ({b}, {c}, {d}, {e}) is '
        f'the closest to the {a}?\n{mca}\n{MCA_POST}\n{letter}',
        f'{PRE}\nIf I am standing by the {a} and facing the {b}, is the {c} to the left or the right of the {b}?'
        f'\nA. left\nB. right\n{MCA_POST}\n{rng.choice("AB")}',
        f'{PRE}\nIf I am standing by the {a} and facing the {b}, is the {c} to my left, right, or back? An object '
        f'is to my back if I would have to turn at least 135 degrees in order to face it.\nA. left\nB. right\n'
        f'C. back\n{MCA_POST}\n{rng.choice("ABC")}',
        f'{PRE}\nIf I am standing by the {a} and facing the {b}, is the {c} to my front-left, front-right, '
        f'back-left, or back-right? The directions refer to the quadrants of a Cartesian plane (if I am standing '
        f'at the origin and facing along the positive y-axis).\nA. front-left\nB. front-right\nC. back-left\n'
        f'D. back-right\n{MCA_POST}\n{letter}',
        f"{PRE}\nYou are a robot beginning at the {a} facing the {b}. You want to navigate to the {c}. You will "
        f"perform the following actions (Note: for each [please fill in], choose either 'turn back,' 'turn left,' "
        f"or 'turn right.'): 1. Go forward until the {d}. 2. [please fill in] 3. Go forward until the {c}. "
        f"4. [please fill in] You have reached the final destination.\nA. {actions}\n{MCA_POST}\n{letter}",
        f'{PRE}\nWhat will be the first-time appearance order of the following categories in the video: {b}, {c}, '
        f'{d}, {e}?\n{mca}\n{MCA_POST}\n{letter}',
        ''.join(f'<{t / 2:.1f} seconds>' for t in range(rng.randint(1, 32))),
    ]


def tokenizer_corpus(num_rounds: int, seed: int) -> list[str]:
    """Training text for the tiny tokenizer: the SynthVSI generator's text if available, else VSI-Bench phrasing."""
    try:
        from geokit.datasets import synthvsi_text_corpus  # provided by the SynthVSI generator
    except ImportError:
        synthvsi_text_corpus = None
    if synthvsi_text_corpus is not None:
        return list(synthvsi_text_corpus(num_rounds=num_rounds, seed=seed))
    rng = random.Random(seed)
    return list(itertools.chain.from_iterable(_vsibench_questions(rng) for _ in range(num_rounds)))


# ------------------------------------------------------------------------------------------ builders
def train_tokenizer(corpus: list[str], vocab_size: int) -> Qwen2TokenizerFast:
    """A Qwen2 byte-level BPE tokenizer (Qwen's normaliser and pre-tokeniser regex) trained on ``corpus``."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior='isolated', invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(QWEN_VL_SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(corpus, trainer)
    bpe = json.loads(tok.to_str())['model']
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(' ')) for m in bpe['merges']]
    tokenizer = Qwen2TokenizerFast(vocab=bpe['vocab'], merges=merges, unk_token=None, bos_token=None,
                                   eos_token='<|im_end|>', pad_token='<|endoftext|>', model_max_length=32768)
    tokenizer.add_special_tokens({'extra_special_tokens': QWEN_VL_SPECIAL_TOKENS})
    tokenizer.chat_template = QWEN_VL_CHAT_TEMPLATE
    return tokenizer


def _special_ids(tokenizer: Qwen2TokenizerFast) -> dict[str, int]:
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in QWEN_VL_SPECIAL_TOKENS}
    return dict(image_token_id=ids['<|image_pad|>'], video_token_id=ids['<|video_pad|>'],
                vision_start_token_id=ids['<|vision_start|>'], vision_end_token_id=ids['<|vision_end|>'])


def _vocab_rows(tokenizer: Qwen2TokenizerFast, spare: int = 16, multiple: int = 64) -> int:
    """Embedding rows: the tokenizer plus spare rows for added tokens (as Qwen pads its vocabulary)."""
    return -(-(len(tokenizer) + spare) // multiple) * multiple


def tiny_qwen3vl_config(tokenizer: Qwen2TokenizerFast, hidden: int = 128, layers: int = 4) -> Qwen3VLConfig:
    """A Qwen3-VL of ~1M parameters: 4-layer text model (head_dim 32, interleaved M-RoPE) and a 2-block ViT."""
    pad_id = tokenizer.convert_tokens_to_ids('<|endoftext|>')
    text = dict(vocab_size=_vocab_rows(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                max_position_embeddings=8192, pad_token_id=pad_id,
                rope_parameters=dict(rope_type='default', rope_theta=500000.0, mrope_section=[6, 5, 5],
                                     mrope_interleaved=True))
    vision = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=4, patch_size=8, spatial_merge_size=2,
                  temporal_patch_size=2, out_hidden_size=hidden, num_position_embeddings=256,
                  deepstack_visual_indexes=[0])
    return Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False,
                         **_special_ids(tokenizer))


def tiny_qwen2_5vl_config(tokenizer: Qwen2TokenizerFast, hidden: int = 128, layers: int = 4) -> Qwen2_5_VLConfig:
    """A Qwen2.5-VL of ~1M parameters: 4-layer text model (head_dim 32, M-RoPE) and a 2-block windowed ViT."""
    pad_id = tokenizer.convert_tokens_to_ids('<|endoftext|>')
    text = dict(vocab_size=_vocab_rows(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                max_position_embeddings=8192, pad_token_id=pad_id, bos_token_id=pad_id,
                eos_token_id=tokenizer.convert_tokens_to_ids('<|im_end|>'),
                rope_parameters=dict(rope_type='default', rope_theta=1000000.0, mrope_section=[4, 6, 6]))
    vision = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=4, patch_size=8, spatial_merge_size=2,
                  temporal_patch_size=2, tokens_per_second=2, window_size=32, out_hidden_size=hidden,
                  fullatt_block_indexes=[1])
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False,
                            **_special_ids(tokenizer))


def _processor_kwargs() -> dict:
    # frames come pre-sampled from geokit's FRAME_SAMPLERS, so the processor never re-samples them
    pixels = dict(shortest_edge=32 * 32, longest_edge=128 * 128 * 32)
    return dict(patch_size=8, temporal_patch_size=2, merge_size=2, size=pixels)


def build_processor(arch: str, tokenizer: Qwen2TokenizerFast):
    image_processor = Qwen2VLImageProcessor(**_processor_kwargs())
    if arch == 'qwen3vl':
        video_processor = Qwen3VLVideoProcessor(do_sample_frames=False, cap_pixels_per_frame=False, min_frames=1,
                                                **_processor_kwargs())
        return Qwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                video_processor=video_processor, chat_template=QWEN_VL_CHAT_TEMPLATE)
    video_processor = Qwen2VLVideoProcessor(do_sample_frames=False, min_frames=1, cap_pixels_per_frame=False,
                                            **_processor_kwargs())
    return Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                               video_processor=video_processor, chat_template=QWEN_VL_CHAT_TEMPLATE)


ARCHITECTURES = {'qwen3vl': ('tiny-qwen3vl', tiny_qwen3vl_config), 'qwen2_5vl': ('tiny-qwen2_5vl',
                                                                                   tiny_qwen2_5vl_config)}


def build_assets(out_root: str = DEFAULT_OUT_ROOT, vocab_size: int = 1024, num_rounds: int = 400,
                 seed: int = 0) -> dict[str, str]:
    """Write every tiny asset directory under ``out_root``; returns ``{arch: directory}``.

    Each directory is written to a temporary sibling and moved into place, so a reader never sees half of it.
    """
    tokenizer = train_tokenizer(tokenizer_corpus(num_rounds, seed), vocab_size)
    written = {}
    for arch, (name, make_config) in ARCHITECTURES.items():
        final = osp.join(out_root, name)
        os.makedirs(out_root, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f'.{name}-', dir=out_root)
        make_config(tokenizer).save_pretrained(tmp)
        build_processor(arch, tokenizer).save_pretrained(tmp)
        os.chmod(tmp, 0o755)
        if osp.isdir(final):
            shutil.rmtree(final)
        os.replace(tmp, final)
        written[arch] = final
    return written


def directory_digest(path: str) -> str:
    """sha256 over the file names and bytes of a directory (to check that a rebuild is identical)."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(path)):
        digest.update(name.encode())
        with open(osp.join(path, name), 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out-root', default=DEFAULT_OUT_ROOT, help='where the asset directories go')
    parser.add_argument('--vocab-size', type=int, default=1024, help='BPE vocabulary incl. Qwen-VL special tokens')
    parser.add_argument('--num-rounds', type=int, default=400, help='corpus size (rounds of question templates)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    for arch, path in build_assets(args.out_root, args.vocab_size, args.num_rounds, args.seed).items():
        size = sum(osp.getsize(osp.join(path, f)) for f in os.listdir(path))
        print(f'{arch}: {path} ({size / 1024:.0f} KiB, sha256 {directory_digest(path)[:12]})')


if __name__ == '__main__':
    main()
