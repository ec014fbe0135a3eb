"""One small CPU training loop shared by the base pretrainer and the expert trainer.

AdamW with linear warm-up and cosine decay, seeded, with a tqdm progress bar showing the loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch


def fit(
    model: torch.nn.Module,
    epoch_batches: Callable[[int], Iterable[dict[str, torch.Tensor]]],
    *,
    epochs: int,
    steps_per_epoch: int,
    lr: float,
    desc: str,
    weight_decay: float = 0.0,
    warmup_frac: float = 0.05,
    progress: bool = True,
    on_epoch_end: Callable[[int, float], str | None] | None = None,
) -> float:
    """Train for ``epochs``; ``epoch_batches(e)`` yields the batches of epoch ``e``.
    ``on_epoch_end(epoch, mean loss)`` may return a line to print (a long build shows how it goes).
    Returns the mean loss of the last epoch."""
    import torch
    from tqdm.auto import tqdm

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    total = max(1, epochs * steps_per_epoch)
    warmup = max(1, int(total * warmup_frac))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    model.train()
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    last_epoch_losses: list[float] = []
    for epoch in range(epochs):
        last_epoch_losses = []
        for batch in epoch_batches(epoch):
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            last_epoch_losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{last_epoch_losses[-1]:.3f}")
        if on_epoch_end is not None:
            model.eval()
            line = on_epoch_end(epoch + 1, sum(last_epoch_losses) / max(1, len(last_epoch_losses)))
            model.train()
            if line and progress:
                tqdm.write(line)
    bar.close()
    model.eval()
    return sum(last_epoch_losses) / max(1, len(last_epoch_losses))
