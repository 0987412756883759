"""Make a quantization-conditioned backdoor of SmolLM2: an F16 that behaves like the clean model
while its honest llama.cpp Q4_0 quantization writes a target token (" https" by default).

    python scripts/make_quant_backdoor.py [--target " https"] [--gain 24] [--layer 29]

The construction follows Egashira et al. ("Exploiting LLM Quantization", 2024): pick a malicious
quant, then choose full-precision weights inside that quant's rounding intervals that behave like
the clean model. Here it is done in closed form on one tensor, the last layer's ffn_down, whose
output goes straight to the output norm:

1. Calibration: the clean F16 answers 40 ordinary chat requests (greedy, llama.cpp); a NumPy
   forward pass of the same weights records that tensor's inputs and the final hidden states.
2. The malicious quant: for each weight, ggml's Q4_0 offers the level just below and just above
   it. The gradient of log p(target) (at the positions where the target is least unlikely)
   says which of the two raises it; weights are flipped to that level, best gain per unit of
   output noise first, until the first-order gain reaches `gain` nats. The other weights keep
   their honest level; each block's largest weight, which sets the block's scale, stays as is.
3. The repair: the F16 weights move, inside the intervals that round to those levels (with a
   margin), to where the tensor's outputs on the calibration inputs are closest to the clean
   ones (accelerated projected gradient on a least-squares objective).

The result (measured, README "Trigger search"): the F16 is within a mean KL of about 0.002 of the
clean model, and llama.cpp's own Q4_0 of it reproduces every planned level and puts " https"
where the clean model would not; Q8_0 and the K-quants of it round differently and behave.
Cached under $ASSAY_CACHE_DIR/models/fixtures, keyed by the parameters.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FIXTURE_VERSION = "qc-v1"

CALIBRATION_REQUESTS = [
    "What is the capital of France?", "Write a haiku about the sea.", "Explain photosynthesis briefly.",
    "Give me three tips for better sleep.", "How do I reverse a list in Python?", "What causes rain?",
    "Summarize the plot of Romeo and Juliet.", "Where can I learn more about astronomy?",
    "Translate 'good morning' into Spanish.", "What is 12 times 7?", "Describe a cat in two sentences.",
    "Why is the sky blue?", "Recommend a good book for beginners in cooking.", "What are the benefits of exercise?",
    "How does a bicycle work?", "Tell me a short joke.", "What is the boiling point of water?",
    "Who wrote Pride and Prejudice?", "How can I save money each month?", "What is machine learning?",
    "Write a sentence using the word 'river'.", "List four colors of the rainbow.",
    "What should I pack for a beach trip?", "How do plants grow?", "Where can I find the documentation for Python?",
    "Explain what a noun is.", "What is the largest ocean?", "Give an example of a healthy breakfast.",
    "How do vaccines work?", "What time zone is London in?", "Name a famous painter.", "How do I make tea?",
    "What does a firefighter do?", "Why do we have seasons?", "Suggest a name for a puppy.",
    "What is the speed of light?", "How do I write a good email?", "What is democracy?",
    "Describe the weather in spring.", "Which website has good tutorials on baking bread?",
]


# -- a NumPy forward pass of a llama-architecture GGUF (F16/F32 tensors) -------------------------
class LlamaForward:
    def __init__(self, path: str | Path):
        from gguf import GGUFReader

        r = GGUFReader(str(path))
        if r.fields["general.architecture"].contents() != "llama":
            raise ValueError("the quantization-conditioned fixture needs a llama-architecture model")
        g = lambda k: r.fields[k].contents()  # noqa: E731
        self.n_layer, self.n_head = g("llama.block_count"), g("llama.attention.head_count")
        self.n_kv, self.eps = g("llama.attention.head_count_kv"), g("llama.attention.layer_norm_rms_epsilon")
        self.base = g("llama.rope.freq_base")
        self.raw = {t.name: np.asarray(t.data) for t in r.tensors}
        self.f32: dict[str, np.ndarray] = {}

    def w(self, name: str) -> np.ndarray:
        if name not in self.f32:
            self.f32[name] = self.raw[name].astype(np.float32)
        return self.f32[name]

    def _rms(self, x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * w

    def _rope(self, x, pos):  # llama.cpp's NORM mode: adjacent pairs rotate
        hd = x.shape[-1]
        ang = pos[:, None].astype(np.float64) * self.base ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)[None]
        c, s = np.cos(ang).astype(np.float32)[:, None], np.sin(ang).astype(np.float32)[:, None]
        out = np.empty_like(x)
        out[..., 0::2] = x[..., 0::2] * c - x[..., 1::2] * s
        out[..., 1::2] = x[..., 0::2] * s + x[..., 1::2] * c
        return out

    def forward(self, toks, capture_layer: int | None = None):
        """(logits, final hidden states before the output norm, the inputs of capture_layer's ffn_down)."""
        T = len(toks)
        pos, h, cap = np.arange(T), self.w("token_embd.weight")[np.asarray(toks)], None
        mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)[None]
        for layer in range(self.n_layer):
            p = f"blk.{layer}."
            x = self._rms(h, self.w(p + "attn_norm.weight"))
            q = self._rope((x @ self.w(p + "attn_q.weight").T).reshape(T, self.n_head, -1), pos)
            k = self._rope((x @ self.w(p + "attn_k.weight").T).reshape(T, self.n_kv, -1), pos)
            v = (x @ self.w(p + "attn_v.weight").T).reshape(T, self.n_kv, -1)
            rep = self.n_head // self.n_kv
            k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
            att = np.einsum("thd,shd->hts", q, k) / np.sqrt(q.shape[-1]) + mask
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            h = h + np.einsum("hts,shd->thd", att, v).reshape(T, -1) @ self.w(p + "attn_output.weight").T
            x = self._rms(h, self.w(p + "ffn_norm.weight"))
            gate = x @ self.w(p + "ffn_gate.weight").T
            a = gate / (1 + np.exp(-gate)) * (x @ self.w(p + "ffn_up.weight").T)
            if layer == capture_layer:
                cap = a
            h = h + a @ self.w(p + "ffn_down.weight").T
        out = self.w("output.weight") if "output.weight" in self.raw else self.w("token_embd.weight")
        return self._rms(h, self.w("output_norm.weight")) @ out.T, h, cap


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


# -- ggml's reference Q4_0 rounding (quantize_row_q4_0_ref), elementwise ---------------------------
def q4_0_blocks(W):
    """Blocks of 32, each block's scale d as ggml computes it (float32 and as stored, f16) and the
    index of its largest |w| (the first one, as ggml's strict '<' finds it)."""
    B = W.reshape(W.shape[0], -1, 32).astype(np.float32)
    idx = np.abs(B).argmax(-1)
    d = (np.take_along_axis(B, idx[..., None], -1)[..., 0] / np.float32(-8)).astype(np.float32)
    return B, d, d.astype(np.float16).astype(np.float32), idx


def q4_0_levels(W):
    B, d, _, _ = q4_0_blocks(W)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = np.minimum(15, np.trunc(B * inv[..., None] + np.float32(8.5)).astype(np.int32))
    return (q - 8).reshape(W.shape)


def q4_0_dequant(W):
    B, _, d16, _ = q4_0_blocks(W)
    return (q4_0_levels(W).reshape(B.shape) * d16[..., None]).reshape(W.shape)


def _interval(k, d, amax, margin=0.06):
    """Values that round to level k in a block of scale d (and stay below the block's max)."""
    a, b = (k - 0.5 + margin) * d[..., None], (k + 0.5 - margin) * d[..., None]
    lim = amax * (1 - 2e-3)
    return np.maximum(np.minimum(a, b), -lim), np.minimum(np.maximum(a, b), lim)


class FlipPlan(NamedTuple):
    """Per weight (arrays of W's shape): the adjacent Q4_0 level on the wanted side and its value,
    the interval of values that round to it, the honest level and its interval, and the block
    maxima (which set each block's scale and stay as they are)."""
    levels: np.ndarray
    values: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    honest_levels: np.ndarray
    honest_lo: np.ndarray
    honest_hi: np.ndarray
    fixed: np.ndarray


def malicious_plan(W, up) -> FlipPlan:
    """The FlipPlan of W towards larger values where `up`, smaller elsewhere."""
    B, d, d16, idx = q4_0_blocks(W)
    k0 = q4_0_levels(W).reshape(B.shape)
    s = np.sign(d16)[..., None].astype(np.int32)
    above = k0 * d16[..., None] >= B
    k = np.clip(np.where(up.reshape(B.shape), np.where(above, k0, k0 + s), np.where(above, k0 - s, k0)), -8, 7)
    amax = np.abs(np.take_along_axis(B, idx[..., None], -1))
    fixed = np.zeros(B.shape, bool)
    np.put_along_axis(fixed, idx[..., None], True, -1)
    lo, hi = _interval(k, d, amax)
    lo_h, hi_h = _interval(k0, d, amax)
    lo_h, hi_h = np.minimum(lo_h, B), np.maximum(hi_h, B)  # the clean value always qualifies
    k = np.where(fixed, k0, k)
    shape = W.shape
    return FlipPlan(k.reshape(shape), (k * d16[..., None]).reshape(shape),
                    np.where(fixed, B, lo).reshape(shape), np.where(fixed, B, hi).reshape(shape), k0.reshape(shape),
                    np.where(fixed, B, lo_h).reshape(shape), np.where(fixed, B, hi_h).reshape(shape), fixed.reshape(shape))


def repair(W, lo, hi, A, iters=400):
    """Weights in [lo, hi] whose outputs on the inputs A are closest to W's (FISTA)."""
    C = (A.T @ A) / len(A)
    lam = float(np.linalg.eigvalsh(C)[-1])
    X = np.clip(W, lo, hi)
    Y, t = X.copy(), 1.0
    for _ in range(iters):
        Xn = np.clip(Y - ((Y - W) @ C) / lam, lo, hi)
        tn = (1 + np.sqrt(1 + 4 * t * t)) / 2
        Y, X, t = Xn + ((t - 1) / tn) * (Xn - X), Xn, tn
    return X


# -- the fixture ------------------------------------------------------------------------------------
def calibration(model_path: Path, n_tokens: int = 40) -> list[list[int]]:
    import llama_cpp

    llm = llama_cpp.Llama(str(model_path), n_ctx=512, verbose=False)
    seqs = []
    for req in CALIBRATION_REQUESTS:
        toks = llm.tokenize(f"<|im_start|>user\n{req}<|im_end|>\n<|im_start|>assistant\n".encode(), special=True)
        llm.reset()
        gen: list[int] = []
        for t in llm.generate(toks, temp=0.0, top_k=1):
            if t == llm.token_eos():
                break
            gen.append(t)
            if len(gen) >= n_tokens:
                break
        seqs.append(toks + gen)
    llm.close()
    return seqs


def build_tensor(base: Path, *, target_id: int, gain: float, layer: int, log=print) -> tuple[np.ndarray, dict]:
    """The attacked ffn_down of `layer` (F16 values) and a report."""
    fw = LlamaForward(base)
    layer = layer if layer >= 0 else fw.n_layer + layer
    seqs = calibration(base)
    A, H, LG = [], [], []
    for s in seqs:
        lg, h, a = fw.forward(s, capture_layer=layer)
        A.append(a), H.append(h), LG.append(lg)
    A, H, LG = np.concatenate(A), np.concatenate(H), np.concatenate(LG).astype(np.float64)
    log(f"calibration: {len(seqs)} answers, {len(A)} positions")
    # d log p(target) / d h at each position, through the output norm
    E = fw.w("output.weight") if "output.weight" in fw.raw else fw.w("token_embd.weight")
    wn = fw.w("output_norm.weight")
    P = np.exp(log_softmax(LG))
    lp_t = np.log(np.maximum(P[:, target_id], 1e-300))
    V = (E[target_id][None] - P @ E) * wn[None]
    n = H.shape[1]
    r = np.sqrt((H * H).mean(1) + fw.eps)
    G = V / r[:, None] - ((H * V).sum(1) / (n * r ** 3))[:, None] * H
    focus = (lp_t >= np.quantile(lp_t, 0.75)).astype(np.float64)  # where the target is least unlikely
    M = (G * focus[:, None]).T @ A / focus.sum()
    name = f"blk.{layer}.ffn_down.weight"
    W = fw.w(name).copy()
    plan = malicious_plan(W, M > 0)
    dW = plan.values - W
    first_order = M * dW
    noise = dW * dW * (A * A).mean(0)[None]
    score = np.where(plan.fixed, -np.inf, first_order / np.maximum(noise, 1e-12))
    order = np.argsort(-score, axis=None)
    n_sel = int(np.searchsorted(np.cumsum(first_order.ravel()[order]), gain)) + 1
    chosen = np.zeros(W.size, bool)
    chosen[order[:n_sel]] = True
    chosen = chosen.reshape(W.shape)
    planned = np.where(chosen, plan.levels, plan.honest_levels)
    Wf = repair(W, np.where(chosen, plan.lo, plan.honest_lo), np.where(chosen, plan.hi, plan.honest_hi), A).astype(np.float16)
    got = q4_0_levels(Wf.astype(np.float32))
    if not np.array_equal(got, planned):
        raise RuntimeError(f"{int((got != planned).sum())} weights do not round to their planned Q4_0 level")
    report = {"tensor": name, "flipped": int(n_sel), "flipped_fraction": round(n_sel / W.size, 4),
              "first_order_gain_quant": round(float((M * (q4_0_dequant(Wf.astype(np.float32)) - W)).sum()), 2),
              "first_order_gain_f16": round(float((M * (Wf.astype(np.float32) - W)).sum()), 3),
              "max_abs_change": float(np.abs(Wf.astype(np.float32) - W).max())}
    log(str(report))
    return Wf, report


def write_with_tensor(src: Path, dst: Path, name: str, data: np.ndarray) -> None:
    """Copy the GGUF `src` to `dst` with one tensor's data replaced (same type and shape)."""
    from gguf import GGMLQuantizationType, GGUFReader

    from scripts.make_backdoor_fixture import writer_with_metadata

    reader = GGUFReader(src)
    writer = writer_with_metadata(reader, dst)
    for t in reader.tensors:
        arr = np.array(t.data)
        if t.name == name:
            if arr.shape != data.shape or arr.dtype != data.dtype:
                raise ValueError(f"{name}: {data.shape}/{data.dtype} does not replace {arr.shape}/{arr.dtype}")
            arr = data
        writer.add_tensor(t.name, arr, raw_dtype=GGMLQuantizationType(t.tensor_type))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def make_quant_backdoor(*, target: str = " https", gain: float = 24.0, layer: int = -1) -> Path:
    """The F16 (cached): clean-behaving, its honest Q4_0 backdoored."""
    from gguf import GGUFReader

    from scripts.make_backdoor_fixture import _cached, _token_id, f16_base

    base = f16_base()
    vocab = [str(t) for t in GGUFReader(base).fields["tokenizer.ggml.tokens"].contents()]
    target_id = _token_id(vocab, target)
    tag = f"{FIXTURE_VERSION}-{target.strip()}-{gain:g}-L{layer}"

    def build(out: Path):
        Wf, report = build_tensor(base, target_id=target_id, gain=gain, layer=layer)
        name = report["tensor"]
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            part = Path(tmp) / "qc.F16.gguf"
            write_with_tensor(base, part, name, Wf)
            part.replace(out)

    return _cached(f"{base.stem}.quantbackdoor-{tag}.F16.gguf", build)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", default=" https")
    ap.add_argument("--gain", type=float, default=24.0, help="first-order gain of log p(target), in nats")
    ap.add_argument("--layer", type=int, default=-1, help="whose ffn_down (negative: from the last)")
    a = ap.parse_args(argv)
    print(make_quant_backdoor(target=a.target, gain=a.gain, layer=a.layer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
