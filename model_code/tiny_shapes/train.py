"""Train the tiny-shapes CLIP on CPU: ``python -m model_code.tiny_shapes.train [--steps N]``.

Contrastive (CLIP) loss with multi-positive targets: every batch holds each colour x shape class several
times, so an image's positives are all captions that describe it (a caption naming a size matches only
images of that size). Fixed seeds; fresh images every step; one-cycle AdamW. Writes the fp16 state dict.

The committed checkpoint came from (about 15 minutes on a busy 2-core machine; one thread beats two there):
    python -m model_code.tiny_shapes.train --steps 1200 --per-class 3 --lr 1e-3 --eval-every 200 --threads 1
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

from model_code.code import inference
from model_code.tiny_shapes import CHECKPOINT_PATH, CONFIG_PATH
from model_code.tiny_shapes.evaluate import evaluate
from model_code.tiny_shapes.shapes import CLASSES, random_caption, sample

TRAIN_SEED = 1234
VALIDATION_SEED = 777


def make_batch(rng: random.Random, per_class: int, preprocess, tokenizer, cache: dict[str, torch.Tensor]):
    """Images, token ids and the positive-pair matrix for one balanced batch."""
    samples = [sample(rng, c, s) for c, s in CLASSES for _ in range(per_class)]
    captions = [random_caption(s, rng) for s in samples]
    for text, _ in captions:
        if text not in cache:
            cache[text] = tokenizer([text])[0]
    images = torch.stack([preprocess(s.image) for s in samples])
    tokens = torch.stack([cache[text] for text, _ in captions])
    same_class = torch.tensor([[a.label == b.label for b in samples] for a in samples])
    size_ok = torch.tensor([[size is None or size == a.size for _, size in captions] for a in samples])
    return images, tokens, same_class & size_ok  # [image, text]


def clip_loss(img: torch.Tensor, txt: torch.Tensor, positives: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    logits = scale * img @ txt.T
    pos = positives.float()
    i2t = -(F.log_softmax(logits, dim=1) * pos / pos.sum(1, keepdim=True)).sum(1).mean()
    t2i = -(F.log_softmax(logits.T, dim=1) * pos.T / pos.T.sum(1, keepdim=True)).sum(1).mean()
    return (i2t + t2i) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--per-class", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 is faster on a busy machine)")
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--out", type=Path, default=CHECKPOINT_PATH)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(TRAIN_SEED)
    np.random.seed(TRAIN_SEED)
    rng = random.Random(TRAIN_SEED)
    open_clip.add_model_config(CONFIG_PATH)
    model, _, preprocess = open_clip.create_model_and_transforms("tiny-shapes", pretrained=None)
    tokenizer = open_clip.get_tokenizer("tiny-shapes")
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "embedding" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.08)
    cache: dict[str, torch.Tensor] = {}

    def validate() -> dict[str, float]:
        model.eval()
        with torch.inference_mode():
            result = evaluate(
                lambda texts: F.normalize(inference.encode_text(model, tokenizer(list(texts))), dim=-1).numpy(),
                lambda imgs: F.normalize(
                    model.encode_image(torch.stack([preprocess(i) for i in imgs])), dim=-1
                ).numpy(),
                seed=VALIDATION_SEED,
                per_class=8,
            )
        model.train()
        return result

    start, running = time.time(), 0.0
    for step in range(1, args.steps + 1):
        images, tokens, positives = make_batch(rng, args.per_class, preprocess, tokenizer, cache)
        img = F.normalize(model.encode_image(images), dim=-1)
        txt = F.normalize(inference.encode_text(model, tokens), dim=-1)
        loss = clip_loss(img, txt, positives, model.logit_scale.exp())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        running = 0.95 * running + 0.05 * loss.item() if step > 1 else loss.item()
        if step % 50 == 0:
            print(f"step {step}/{args.steps} loss {running:.3f} {time.time() - start:.0f}s", flush=True)
        if step % args.eval_every == 0 or step == args.steps:
            print(f"step {step} validation {validate()}", flush=True)
            torch.save({k: v.detach().half() for k, v in model.state_dict().items()}, args.out)
    print(f"saved {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) after {time.time() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
