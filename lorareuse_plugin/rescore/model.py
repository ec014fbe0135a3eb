"""The light rescorer: a ≤ 4-layer BERT pretrained from scratch (MLM + next sentence) on chains of
background entities, judging whether a chain of thought is faithful.

Three scores, all reported: **pll** and **nsp** need no task fine-tuning (the seed's setting) — pll:
every named word of the chain, masked whole, must be predictable from the rest; nsp: every sentence of
the chain must be the *next sentence* of the question and the sentences before it; a chain's score is
the smallest of those probabilities — and **head**, a small classification head fine-tuned on
synthetic faithful/unfaithful chains of background entities. The pretraining negatives are the
standard BERT ones: a random sentence of the corpus (here: the same sentence of another chain of the
same family), so telling them apart *is* checking subject, bridge and conclusion.

Built once per configuration and cached like the base, by a hash of its recipe and corpus.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from lorareuse_plugin.cache import cache_root
from lorareuse_plugin.errors import ConfigError
from lorareuse_plugin.io import atomic_dir
from lorareuse_plugin.rescore.chains import Chain, background_chains, gold_test_chains, iter_pairs, labelled

RESCORER_VERSION = 1
MARKER = "lorareuse_rescorer.json"
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_TOKENS = 128
# the default build ships inside the package (as the base does): a demo need not pretrain it
SHIPPED = Path(__file__).resolve().parent / "shipped" / "default"
SCORERS = ("rule", "pll", "nsp", "head")
ENTITY = re.compile(r"[A-Z0-9]")  # a word that names something: a capitalised word or a number


@dataclass(frozen=True)
class RescorerConfig:
    layers: int = 4
    hidden: int = 128
    heads: int = 4
    intermediate: int = 256
    dropout: float = 0.1
    nsp: bool = True  # False: MLM only (the study's ablation; the nsp score is then not available)
    vocab: int = 800
    chains: int = 1500  # pretraining chains per family
    steps: int = 1200
    batch: int = 32
    lr: float = 1e-3
    head_chains: int = 300  # per family, each faithful and perturbed
    head_steps: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.layers <= 12:
            raise ConfigError(f"rescorer layers={self.layers}: use 1 to 12 (the light rescorer has at most 4)")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"rescorer dropout={self.dropout}: use a number in [0, 1)")


def corpus_chains(cfg: RescorerConfig) -> list[Chain]:
    return background_chains("pretrain", cfg.chains, cfg.seed)


@functools.cache  # the corpus is a pure function of cfg; the key is asked for at every lookup
def rescorer_key(cfg: RescorerConfig) -> str:
    corpus = hashlib.sha256("\n".join(c.question + " " + c.text for c in corpus_chains(cfg)).encode()).hexdigest()
    blob = json.dumps({"v": RESCORER_VERSION, "cfg": asdict(cfg), "corpus": corpus}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def rescorer_dir(cfg: RescorerConfig) -> Path:
    return cache_root() / "rescorer" / f"L{cfg.layers}-{rescorer_key(cfg)[:16]}"


def _tokenizer(texts: Sequence[str], vocab: int):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.BertPreTokenizer(), pre_tokenizers.Digits(individual_digits=True)]
    )
    tok.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=vocab, special_tokens=list(SPECIAL), show_progress=False)
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=False, model_max_length=MAX_TOKENS)


def load_tokenizer(path: Path):
    """The saved tokenizer exactly as trained. ``BertTokenizerFast.from_pretrained`` rebuilds the
    pipeline from the vocabulary and drops the digit splitting: every number of two or more digits
    then reads as ``[UNK]`` (the shipped rescorer judged arithmetic blind until this)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(
        path, model_input_names=["input_ids", "token_type_ids", "attention_mask"], model_max_length=MAX_TOKENS
    )


def _pairs(chains: list[Chain], r: random.Random) -> list[tuple[str, str, int]]:
    """(before, sentence, 0 = is next / 1 = not next): every sentence once as itself and once
    replaced — half the time by any sentence of the corpus (BERT's negatives: mostly another kind of
    sentence, easy), half the time by the same sentence of another chain of its family (hard: only
    the subject, bridge or conclusion differs)."""
    by_family: dict[str, list[Chain]] = {}
    for c in chains:
        by_family.setdefault(c.family, []).append(c)
    out = []
    for c in chains:
        for i, (before, sentence) in enumerate(iter_pairs(c)):
            out.append((before, sentence, 0))
            for _ in range(20):
                if r.random() < 0.5:
                    pick = r.choice(chains)
                    other = r.choice(pick.sentences)
                else:
                    other = r.choice(by_family[c.family]).sentences[i]
                if other != sentence:
                    out.append((before, other, 1))
                    break
    return out


def _mask(enc, tok, r: random.Random, share: float = 0.15):
    """Whole-word masking (every piece of a chosen word), ``share`` of the words plus one named word
    (capitalised or a number) per sequence: predicting a masked name from its other mention is the
    copying a faithful chain needs, and what the ``pll`` score reads."""
    ids = enc["input_ids"].clone()
    labels = ids.clone().fill_(-100)
    for b in range(ids.shape[0]):
        words = _word_spans(enc, b)
        named = [k for k, (text, _) in enumerate(words) if ENTITY.search(text)]
        chosen = {k for k in range(len(words)) if r.random() < share}
        if named:
            chosen.add(r.choice(named))
        for k in chosen:
            for t in words[k][1]:
                labels[b, t] = ids[b, t]
                ids[b, t] = tok.mask_token_id
    return ids, labels


def _word_spans(enc, b: int) -> list[tuple[str, list[int]]]:
    """(word as its pieces joined, token positions) of every word of sequence ``b``, both segments."""
    spans: dict[tuple[int, int], list[int]] = {}
    seq, tokens = enc.sequence_ids(b), enc.tokens(b)
    for t, w in enumerate(enc.word_ids(b)):
        if w is not None:
            spans.setdefault((seq[t], w), []).append(t)
    return [("".join(tokens[t].removeprefix("##") for t in pos), pos) for pos in spans.values()]


def _bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)


def _optimizer(model, lr: float, steps: int):
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, 1 - s / steps))
    return opt, sched


def pretrain(cfg: RescorerConfig, progress: bool = True):
    """Tokenizer + BertForPreTraining from scratch on the background chains."""
    import torch
    from transformers import BertConfig, BertForPreTraining

    torch.manual_seed(cfg.seed)
    chains = corpus_chains(cfg)
    tok = _tokenizer([c.question + " " + c.text for c in chains], cfg.vocab)
    bert = BertConfig(
        vocab_size=len(tok),
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.intermediate,
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
        max_position_embeddings=MAX_TOKENS,
        pad_token_id=tok.pad_token_id,
    )
    model = BertForPreTraining(bert)
    r = random.Random(cfg.seed)
    # next-sentence pairs (MLM + NSP), and every whole chain after its question (MLM only: -100)
    texts = _pairs(chains, r) + [(c.question, c.text, -100) for c in chains]
    opt, sched = _optimizer(model, cfg.lr, cfg.steps)
    model.train()
    bar = _bar(cfg.steps, "rescorer pretraining", progress)
    ce = torch.nn.functional.cross_entropy
    for _ in range(cfg.steps):
        batch = r.sample(texts, cfg.batch)
        enc = tok([b[0] for b in batch], [b[1] for b in batch], padding=True, truncation=True, return_tensors="pt")
        ids, mlm_labels = _mask(enc, tok, r)
        out = model(input_ids=ids, attention_mask=enc["attention_mask"], token_type_ids=enc["token_type_ids"])
        loss = ce(out.prediction_logits.view(-1, len(tok)), mlm_labels.view(-1), ignore_index=-100)
        if cfg.nsp:
            loss = loss + ce(out.seq_relationship_logits, torch.tensor([b[2] for b in batch]), ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return tok, model.eval()


def train_head(cfg: RescorerConfig, tok, pretrained, progress: bool = True):
    """A faithful/unfaithful classification head on the pretrained encoder (fine-tuned together)."""
    import copy

    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(cfg.seed)
    config = copy.deepcopy(pretrained.config)
    config.num_labels = 2
    model = BertForSequenceClassification(config)
    model.bert.load_state_dict(pretrained.bert.state_dict())
    chains = labelled(background_chains("head", cfg.head_chains, cfg.seed), cfg.seed)
    r = random.Random(cfg.seed)
    opt, sched = _optimizer(model, cfg.lr / 2, cfg.head_steps)
    model.train()
    bar = _bar(cfg.head_steps, "rescorer head", progress)
    for _ in range(cfg.head_steps):
        batch = r.sample(chains, cfg.batch)
        enc = tok(
            [c.question for c in batch], [c.text for c in batch], padding=True, truncation=True, return_tensors="pt"
        )
        out = model(**enc, labels=torch.tensor([int(c.faithful) for c in batch]))
        out.loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        bar.update(1)
    bar.close()
    return model.eval()


class Rescorer:
    """A built rescorer: ``faithful(questions, responses, scorer)`` → probabilities in [0, 1]
    (``rule``: 0 or 1)."""

    def __init__(self, path: Path, tok, pretrained, head, info: dict):
        self.path, self.tok, self.pretrained, self.head, self.info = path, tok, pretrained, head, info

    @classmethod
    def load(cls, path: Path) -> Rescorer:
        from transformers import BertForPreTraining, BertForSequenceClassification

        path = Path(path)
        info = read_info(path)
        if info is None:
            raise ConfigError(f"{path} holds no built rescorer: run `lorareuse rescorer build` first")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        tok = load_tokenizer(path / "pretrained")
        return cls(
            path,
            tok,
            BertForPreTraining.from_pretrained(path / "pretrained").eval(),
            BertForSequenceClassification.from_pretrained(path / "head").eval(),
            info,
        )

    def faithful(self, questions: Sequence[str], responses: Sequence[str], scorer: str = "nsp") -> list[float]:
        import torch

        with torch.no_grad():
            return self._faithful(questions, responses, scorer)

    def _faithful(self, questions: Sequence[str], responses: Sequence[str], scorer: str) -> list[float]:
        from lorareuse_plugin.rescore.rule import judge, sentences

        if scorer == "rule":
            return [float(f) for f in judge(questions, responses)]
        chains = [Chain("", q, tuple(sentences(r))) for q, r in zip(questions, responses, strict=True)]
        if scorer == "head":
            return self._batched([(c.question, c.text) for c in chains], self._head_prob)
        if scorer == "pll":
            return self._pll(chains)
        if scorer == "nsp":
            if not self.info["config"]["nsp"]:
                raise ConfigError(f"the rescorer at {self.path} was pretrained without next sentence: use scorer head")
            pairs = [(i, p) for i, c in enumerate(chains) for p in iter_pairs(c)]
            probs = self._batched([p for _, p in pairs], self._next_prob)
            out = [1.0 if c.sentences else 0.0 for c in chains]
            for (i, _), p in zip(pairs, probs, strict=True):
                out[i] = min(out[i], p)
            return out
        raise ConfigError(f"unknown rescorer score {scorer!r}: use one of {', '.join(SCORERS)}")

    def _batched(self, pairs: list[tuple[str, str]], fn: Callable, size: int = 64) -> list[float]:
        out: list[float] = []
        for i in range(0, len(pairs), size):
            chunk = pairs[i : i + size]
            enc = self.tok(
                [a for a, _ in chunk], [b for _, b in chunk], padding=True, truncation=True, return_tensors="pt"
            )
            out += fn(enc)
        return out

    def _pll(self, chains: list[Chain], size: int = 128) -> list[float]:
        """No fine-tuning: every named word of the chain (capitalised, or a number), masked whole, must
        be predictable from the question and the rest of the chain — in a faithful chain each one has
        another mention to copy (subject ← question, bridge ← the other step, answer ← the conclusion).
        A word's probability is the geometric mean over its pieces; the chain's score the smallest."""
        import torch

        jobs: list[tuple[int, dict, list[int]]] = []  # (chain, its encoding, positions of one masked word)
        encs = [self.tok(c.question, c.text, truncation=True) for c in chains] if chains else []
        for i, enc in enumerate(encs):
            for text, positions in _word_spans(enc, 0):
                if enc.sequence_ids(0)[positions[0]] == 1 and ENTITY.search(text):
                    jobs.append((i, enc, positions))
        out = [1.0 if c.sentences else 0.0 for c in chains]
        for k in range(0, len(jobs), size):
            chunk = jobs[k : k + size]
            batch = self.tok.pad(
                [{key: e[key] for key in ("input_ids", "token_type_ids", "attention_mask")} for _, e, _ in chunk],
                return_tensors="pt",
            )
            ids = batch["input_ids"].clone()
            for row, (_, _, positions) in enumerate(chunk):
                ids[row, positions] = self.tok.mask_token_id
            logp = self.pretrained(
                input_ids=ids, attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"]
            ).prediction_logits.log_softmax(-1)
            for row, (i, _, positions) in enumerate(chunk):
                gold = batch["input_ids"][row, positions]
                p = float(torch.exp(logp[row, positions, gold].mean()))
                out[i] = min(out[i], p)
        return out

    def _next_prob(self, enc) -> list[float]:
        return self.pretrained(**enc).seq_relationship_logits.softmax(-1)[:, 0].tolist()

    def _head_prob(self, enc) -> list[float]:
        return self.head(**enc).logits.softmax(-1)[:, 1].tolist()


def ship(built: Path) -> Path:
    """Copy a current default build into the package (developer tool: `make ship-rescorer`)."""
    import shutil

    info = read_info(built)
    if not info or info.get("key") != rescorer_key(RescorerConfig()):
        raise ConfigError(f"{built} is not a current default rescorer: run `lorareuse rescorer build --force` first")
    with atomic_dir(SHIPPED, MARKER) as tmp:
        shutil.copytree(built, tmp, dirs_exist_ok=True)
        for p in [tmp, *tmp.rglob("*")]:  # package data: readable by everyone
            p.chmod(0o755 if p.is_dir() else 0o644)
    return SHIPPED


def default_rescorer() -> Path | None:
    """The default configuration's build, when it exists."""
    path = rescorer_dir(RescorerConfig())
    return path if read_info(path) else None


def best_score(info: dict) -> str:
    """The model score (``pll``, ``nsp`` or ``head``) with the higher accuracy on the test worlds' chains."""
    acc = info.get("accuracy", {}).get("test worlds", {})
    scores = [s for s in ("pll", "nsp", "head") if s in acc] or ["head"]
    return max(scores, key=lambda s: acc[s]["accuracy"] if s in acc else 0.0)


def read_info(path: Path) -> dict | None:
    marker = Path(path) / MARKER
    return json.loads(marker.read_text()) if marker.is_file() else None


def evaluate(rescorer: Rescorer, chains: list[Chain]) -> dict[str, dict]:
    """Accuracy of every available score on labelled ``chains`` (threshold 0.5), with Wilson 95 %."""
    from lorareuse_plugin.stats.intervals import wilson

    scorers = [s for s in SCORERS if s != "nsp" or rescorer.info["config"]["nsp"]]
    gold = [c.faithful for c in chains]
    out = {}
    for s in scorers:
        probs = rescorer.faithful([c.question for c in chains], [c.text for c in chains], s)
        hits = sum((p >= 0.5) == g for p, g in zip(probs, gold, strict=True))
        lo, hi = wilson(hits, len(gold))
        out[s] = {"n": len(gold), "accuracy": hits / len(gold), "ci95": [lo, hi]}
    return out


EVAL_SETS = {
    "held-out background": lambda cfg: labelled(background_chains("heldout", 100, cfg.seed), cfg.seed + 1),
    "test worlds": lambda cfg: labelled(gold_test_chains(100, cfg.seed), cfg.seed + 2),
}


def build_rescorer(
    cfg: RescorerConfig = RescorerConfig(),
    out: Path | None = None,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Build (or reuse) the rescorer of ``cfg``; its held-out accuracies go into the marker."""
    import torch

    default_out = out is None
    out = Path(out) if out else rescorer_dir(cfg)
    key = rescorer_key(cfg)
    info = read_info(out)
    if info and info.get("key") == key and not force:
        log(f"rescorer up to date: {out}")
        return out
    shipped = read_info(SHIPPED)
    if default_out and not force and shipped and shipped.get("key") == key:
        import shutil

        with atomic_dir(out, MARKER) as tmp:
            shutil.copytree(SHIPPED, tmp, dirs_exist_ok=True)
        log(f"rescorer: the shipped build, copied to {out} (`lorareuse rescorer build --force` trains it here)")
        log(format_accuracy(shipped))
        return out
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Writing model shards" / "Loading weights" once per save and load
    t0 = time.time()
    tok, pretrained = pretrain(cfg, progress)
    head = train_head(cfg, tok, pretrained, progress)
    seconds = time.time() - t0
    with atomic_dir(out, MARKER) as tmp:
        tok.save_pretrained(tmp / "pretrained")
        pretrained.save_pretrained(tmp / "pretrained")
        tok.save_pretrained(tmp / "head")
        head.save_pretrained(tmp / "head")
        marker = {"key": rescorer_key(cfg), "config": asdict(cfg), "train_seconds": round(seconds, 1)}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
        scorer = Rescorer(tmp, tok, pretrained, head, marker)
        with torch.no_grad():
            marker["accuracy"] = {name: evaluate(scorer, make(cfg)) for name, make in EVAL_SETS.items()}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    log(f"rescorer built in {seconds:.0f} s: {out}")
    log(format_accuracy(marker))
    return out


def _accuracy_cell(score: dict | None) -> str:
    if score is None:
        return "n/a"
    lo, hi = score["ci95"]
    return f"{score['accuracy']:.2f} [{lo:.2f}, {hi:.2f}]"


def accuracy_rows(info: dict) -> list[str]:
    """``chains | n | rule | pll | nsp | head`` (Markdown cells) per evaluation set of a build's marker."""
    rows = []
    for name, scores in info.get("accuracy", {}).items():
        n = next(iter(scores.values()))["n"]
        rows.append(f"{name} | {n} | " + " | ".join(_accuracy_cell(scores.get(s)) for s in SCORERS))
    return rows


def format_accuracy(info: dict) -> str:
    """The build's held-out table (Markdown)."""
    lines = [
        "| chains | n | rule | rescorer, no fine-tuning: pll | no fine-tuning: nsp | fine-tuned head |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    return "\n".join(lines + [f"| {row} |" for row in accuracy_rows(info)])
