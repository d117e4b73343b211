"""HFTextEncoder(memo_frozen=True): the frozen bottom's states memoized per query give the same
outputs and gradients as recomputing them, hit the memo on repeats, stay out of the state dict,
and train inside RouterDC. Tiny random models (config=), so the whole file takes seconds."""

import pytest
import torch

from conftest import FAST
from routerbench.config import ConfigError, compose
from routerbench.encoders.text_encoder import MEMO_MODEL_TYPES, HFTextEncoder

TEXTS = [
    "What is 2 + 2?",
    "Write a Python function that reverses a string.",
    "Which planet is closest to the sun?",
    "Solve for x: 3x + 5 = 20.",
    "中国的首都是哪个城市?",
    "ok",
]
# dropout 0 so train mode is deterministic and the two paths can be compared exactly
TINY = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 64, "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0}


def _enc(memo: bool, pooling: str = "mean", k: int | None = 1, buckets: int = 1, **cfg) -> HFTextEncoder:
    torch.manual_seed(0)
    return HFTextEncoder(model="minilm", pooling=pooling, max_length=24, trainable_layers=k,
                         config={**TINY, **cfg}, memo_frozen=memo, length_buckets=buckets)


def _out_and_grads(enc: HFTextEncoder, texts: list[str]):
    enc.train()
    enc.zero_grad()
    y = enc(**enc.tokenize(texts))
    (y * torch.linspace(-1, 1, y.shape[1])).pow(2).sum().backward()
    grads = {n: p.grad.clone() for n, p in enc.named_parameters() if p.grad is not None}
    return y.detach(), grads


@pytest.mark.parametrize("model_type", MEMO_MODEL_TYPES)
@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_memo_gives_the_same_outputs_and_gradients(model_type, pooling):
    extra = {"pad_token_id": 0} if "roberta" in model_type else {}  # the BERT tokenizer pads with 0
    if model_type == "electra":
        extra["embedding_size"] = 16  # exercises embeddings_project
    texts = TEXTS + [TEXTS[1]]  # different lengths (padding) and a repeated query
    y0, g0 = _out_and_grads(_enc(False, pooling, **extra), texts)
    memo = _enc(True, pooling, **extra)
    for _ in range(2):  # cold memo, then warm
        y1, g1 = _out_and_grads(memo, texts)
        torch.testing.assert_close(y1, y0, atol=1e-5, rtol=1e-5)
        assert g1.keys() == g0.keys() and all(".layer.2." in n for n in g1)
        for n in g0:
            torch.testing.assert_close(g1[n], g0[n], atol=1e-5, rtol=1e-4)


def test_eval_mode_with_dropout_and_padding_to_max_length():
    """A pretrained-like config (dropout on) in eval mode, batch padded beyond its longest row."""
    plain, memo = _enc(False, hidden_dropout_prob=0.1), _enc(True, hidden_dropout_prob=0.1)
    batch = plain.tokenizer(TEXTS, truncation=True, max_length=24, padding="max_length", return_tensors="pt")
    args = (batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(memo.eval()(*args), plain.eval()(*args), atol=1e-5, rtol=1e-5)


def test_repeats_hit_the_memo_and_new_rows_are_added():
    enc = _enc(True)
    enc(**enc.tokenize(TEXTS[:4] + [TEXTS[0]]))
    assert (enc.memo_misses, enc.memo_hits, len(enc.memo)) == (4, 1, 4)  # in-batch repeat computed once
    enc(**enc.tokenize(TEXTS[:4]))
    assert (enc.memo_misses, enc.memo_hits) == (4, 5)
    mixed = [TEXTS[4], TEXTS[0], TEXTS[5], TEXTS[2]]
    y = enc(**enc.tokenize(mixed))
    assert (enc.memo_misses, enc.memo_hits, len(enc.memo)) == (6, 7, 6)
    torch.testing.assert_close(y, _enc(False)(**enc.tokenize(mixed)), atol=1e-5, rtol=1e-5)
    h = enc.memo[next(iter(enc.memo))]
    assert h.device.type == "cpu" and h.dtype == torch.float32 and h.shape[1] == 32


def test_memo_is_not_in_the_state_dict_and_loading_clears_it():
    enc = _enc(True)
    enc(**enc.tokenize(TEXTS))
    state = enc.state_dict()
    assert enc.memo and not any("memo" in k for k in state)
    assert state.keys() == _enc(False).state_dict().keys()
    enc.load_state_dict(state)
    assert not enc.memo  # new frozen weights would make the memo stale


@pytest.mark.parametrize("k", [None, 0, 3])
def test_memo_needs_some_frozen_and_some_trainable_layers(k):
    with pytest.raises(ConfigError, match="memo_frozen needs 0 < trainable_layers < 3"):
        _enc(True, k=k)


def test_memo_rejects_unsupported_model_types():
    cfg = {"model_type": "deberta-v2", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
           "intermediate_size": 64, "max_position_embeddings": 64}
    with pytest.raises(ConfigError, match="'deberta-v2'.*memo_frozen: false"):
        HFTextEncoder(model="minilm", trainable_layers=1, config=cfg, memo_frozen=True)


def test_memo_rejects_left_padding():
    enc = _enc(True)
    enc.tokenizer.padding_side = "left"
    with pytest.raises(ValueError, match="memo_frozen needs right-padded.*memo_frozen: false"):
        enc(**enc.tokenize(TEXTS[:3]))


@pytest.mark.parametrize("memo,k", [(False, None), (False, 0), (True, 1), (True, 2)])
@pytest.mark.parametrize("buckets", [2, 3, 50])
def test_length_buckets_give_the_same_outputs_and_gradients(memo, k, buckets):
    """Rows sorted by length and run in parts (fewer padded tokens) come back in their own order
    with the outputs and gradients of the whole batch; more parts than rows is one row each."""
    texts = TEXTS + [TEXTS[1], "a much longer question about " * 3]
    ref = _enc(memo, k=k)
    y0, g0 = _out_and_grads(ref, texts) if k != 0 else (ref(**ref.tokenize(texts)), {})
    enc = _enc(memo, k=k, buckets=buckets)
    y1, g1 = _out_and_grads(enc, texts) if k != 0 else (enc(**enc.tokenize(texts)), {})
    torch.testing.assert_close(y1, y0, atol=1e-5, rtol=1e-5)
    assert g1.keys() == g0.keys()
    for n in g0:
        torch.testing.assert_close(g1[n], g0[n], atol=1e-5, rtol=1e-4)
    assert enc.length_buckets == buckets and ref.length_buckets == 1


def test_length_buckets_pad_each_part_to_its_own_longest_row():
    enc = _enc(False, k=0, buckets=2)
    widths = []
    enc.model.register_forward_pre_hook(lambda m, a, kw: widths.append(tuple(kw["input_ids"].shape)),
                                        with_kwargs=True)
    batch = enc.tokenize(["ok", "a much longer question about " * 3, "hi", "what is two plus two?"])
    enc(**batch)
    lengths = sorted(batch["attention_mask"].sum(1).tolist())
    assert widths == [(2, lengths[1]), (2, lengths[3])] and lengths[1] < lengths[3]


def test_length_buckets_need_right_padding_and_a_positive_count():
    enc = _enc(False, k=None, buckets=2)
    enc.tokenizer.padding_side = "left"
    with pytest.raises(ValueError, match="length_buckets needs right-padded.*length_buckets: 1"):
        enc(**enc.tokenize(TEXTS[:3]))
    with pytest.raises(ConfigError, match="length_buckets must be >= 1, got 0"):
        _enc(False, buckets=0)


TINY_MEMO = {"model": "minilm", "pooling": "mean", "max_length": 32, "trainable_layers": 1, "memo_frozen": True,
             "config": {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2,
                        "num_attention_heads": 2, "intermediate_size": 64, "vocab_size": 30522}}
SMALL = ["router=routerdc", "trainer.max_steps=12", "trainer.val_every_n_steps=6", "batch_size=16",
         "data.synthetic.n_train_per_topic=20", "data.synthetic.n_test_per_topic=5"]


def test_routerdc_trains_with_a_memoized_text_encoder(tmp_path):
    """A few manual optimiser steps (the memo warms up, only the top layer moves), then a Lightning fit."""
    from routerbench.data.prepare import prepare
    from routerbench.runs.fit import build_router, fit, make_datamodule

    cfg = compose(FAST + SMALL + [f"output_dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'c'}"])
    cfg.router.text_encoder = TINY_MEMO
    prep = prepare(cfg, need_features=False)
    router = build_router(cfg, prep)
    enc = router.text_encoder
    batch = next(iter(make_datamodule(cfg, prep, router).train_dataloader()))
    bottom = enc.model.encoder.layer[0].attention.self.query.weight.clone()
    top = enc.model.encoder.layer[1].attention.self.query.weight.clone()
    opt = router.configure_optimizers()
    router.train()
    for _ in range(3):
        loss = sum(router.compute_losses(router(batch), batch).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
    n = len(batch["input_ids"])
    assert enc.memo_misses == len(enc.memo) <= n and enc.memo_hits == 3 * n - enc.memo_misses
    assert torch.equal(enc.model.encoder.layer[0].attention.self.query.weight, bottom)
    assert not torch.equal(enc.model.encoder.layer[1].attention.self.query.weight, top)

    m = fit(cfg)
    assert m["n"] > 0 and m["router"] == "RouterDC"
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=False, map_location="cpu")
    assert not any("memo" in k for k in ckpt["state_dict"])


def test_the_partial_finetuning_experiment_builds_its_encoder():
    """configs/experiment/routerdc_partial_ft.yaml: its text_encoder arguments construct (real MiniLM)."""
    cfg = compose(["experiment=routerdc_partial_ft"])
    enc = HFTextEncoder(**cfg.router.text_encoder)
    assert enc.memo_frozen and enc.model.config.model_type == "bert" and len(enc._top) == 1
    assert cfg.router._target_.endswith("RouterDC") and cfg.router.encoder_lr == 2.0e-5


def test_memo_stays_within_its_bound_and_evicts_the_oldest():
    enc = _enc(True)
    enc(**enc.tokenize(TEXTS[:2]))
    per_row = enc._memo_bytes / 2
    enc.memo_max_bytes = 3.5 * per_row  # room for about 3 rows of this length
    enc(**enc.tokenize(TEXTS[2:4]))
    assert enc._memo_bytes <= enc.memo_max_bytes + per_row and len(enc.memo) < 4
    newest = enc.tokenize(TEXTS[2:4])
    keys = [ids[m.bool()].numpy().tobytes() for ids, m in zip(newest["input_ids"], newest["attention_mask"])]
    assert list(enc.memo)[-2:] == keys  # the newest batch is kept, the oldest rows went first
    y = enc(**enc.tokenize(TEXTS[:4]))  # evicted rows are recomputed: same outputs
    torch.testing.assert_close(y, _enc(False)(**enc.tokenize(TEXTS[:4])), atol=1e-5, rtol=1e-5)
    assert enc._memo_bytes == sum(h.numel() * 4 for h in enc.memo.values())


def test_dropout_option_sets_every_dropout_of_a_pretrained_model():
    enc = HFTextEncoder(model="minilm", trainable_layers=1, dropout=0.0)
    probs = [m.p for m in enc.model.modules() if isinstance(m, torch.nn.Dropout)]
    assert probs and all(p == 0.0 for p in probs)
    assert enc.model.config.attention_probs_dropout_prob == 0.0 and enc.model.config.hidden_dropout_prob == 0.0
    default = HFTextEncoder(model="minilm", trainable_layers=1)
    assert any(m.p > 0 for m in default.model.modules() if isinstance(m, torch.nn.Dropout))
    with pytest.raises(ConfigError, match="dropout"):
        HFTextEncoder(model="minilm", config=TINY, dropout=0.0)
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        HFTextEncoder(model="minilm", dropout=1.5)


def test_memo_eviction_is_least_recently_used_and_spares_the_batch():
    """A batch that hits the oldest entry while adding new ones must not evict what it reads."""
    enc = _enc(True)
    enc(**enc.tokenize(TEXTS[:1]))
    enc(**enc.tokenize(TEXTS[1:3]))
    enc.memo_max_bytes = enc._memo_bytes  # full: any new row forces an eviction
    y = enc(**enc.tokenize([TEXTS[0], TEXTS[3]]))  # TEXTS[0] is the oldest entry and is read here
    torch.testing.assert_close(y, _enc(False)(**enc.tokenize([TEXTS[0], TEXTS[3]])), atol=1e-5, rtol=1e-5)
    first = enc.tokenize(TEXTS[:1])["input_ids"][0]
    assert first[first != 0].numpy().tobytes() in enc.memo  # used again, so not the one evicted
