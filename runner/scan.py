"""Vocabulary scan inside the runner child: every candidate token sequence, in every frame, in
batches of many sequences that share their frame's prefix through the KV cache.

Request (op "scan", see runner.api.scan_vocabulary):
  {"frames": [{"name", "prefix", "suffix"}, ...], "top_k": K (0: none),
   "candidates": [[id, ...], ...] | "vocabulary" | "words", "controls": N, "max_seqs": S}
A sequence is  BOS? + prefix + candidate + suffix;  the logits are read after its last token.
Every read gives the same measures (see the row below); KL(p_candidate || p_control) uses the
frame's mean next-token distribution over N control candidates spread evenly over the list:
how far the continuation departs from what the frame gives for an ordinary token.
"vocabulary" = every token llama.cpp types NORMAL whose text has a letter or a digit (special,
control, byte and unused tokens cannot occur in ordinary text, so they are not triggers of it);
"words" = those of them that begin a word (a space, then a letter or digit).
The prefixes are evaluated once; each candidate's sequences copy them (kv_unified: shared cells).

With "budget_s", the scan projects its whole time after the first chunks and, when that is over
the budget, stops with {"type": "scan_over_budget", "projected_s", "budget_s"} instead of running
for hours to be killed. Emits {"type": "scan_meta", ...} then per chunk {"type": "scan_chunk", "start", "reads": {frame name:
[row, ...]}} with row = [kl_vs_controls, top_id, top_lp, self_lp, word_id, word_lp(, top_k list)]:
self_lp = log-prob of the tokens that spell the candidate (runner.scan.Spellings); word = the most
likely token that starts a new word and is no spelling of the candidate, then {"type": "scan_done", "tokens_evaluated", "eval_s"}.
"""
from __future__ import annotations

import ctypes
import time


def normal_text(text: str) -> str:
    return "".join(text.split()).lower()


class Spellings:
    """Which tokens spell the start of a text, or a longer word that the text begins (case and
    spaces ignored): a model that repeats "Patagon" may write " Patagonia"."""

    def __init__(self, pieces: list[str]):
        import bisect

        self._bisect = bisect
        self.index: dict[str, list[int]] = {}
        for i, p in enumerate(pieces):
            n = normal_text(p)
            if n:
                self.index.setdefault(n, []).append(i)
        self.sorted = sorted(self.index)

    def ids(self, text: str, limit: int = 48) -> list[int]:
        n = normal_text(text)
        out: list[int] = []
        for k in range(1, min(len(n), limit) + 1):   # tokens that are a prefix of the text
            out.extend(self.index.get(n[:k], ()))
        if n:                                        # tokens that the text is a prefix of
            i = self._bisect.bisect_right(self.sorted, n)
            while i < len(self.sorted) and self.sorted[i].startswith(n) and len(out) < 4096:
                out.extend(self.index[self.sorted[i]])
                i += 1
        return out


def word_starts(pieces: list[str]) -> list[int]:
    """Tokens that begin a new word: a leading space and a letter or digit after it."""
    return [i for i, p in enumerate(pieces) if len(p) > 1 and p[0] == " " and p[1:2].isalnum()]


def is_word_like(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


class Scanner:
    def __init__(self, model_path: str, plan: dict, max_seqs: int, flash_attn: bool | None = None):
        import llama_cpp as L
        from llama_cpp._logger import set_verbose

        from .llama_load import load_llama

        set_verbose(False)  # llama.cpp's load chatter would bury a real error in the stderr tail
        self.L = L
        self.llm = load_llama(model_path, plan, n_ctx=64, n_batch=64, n_ubatch=64,
                              n_threads=int(plan.get("n_threads", 1)))
        self.model = self.llm._model.model
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self.max_seqs = max(2, min(int(max_seqs), int(L.llama_max_parallel_sequences())))
        self.n_batch = int(plan.get("scan_batch", 512))
        self.n_threads = int(plan.get("n_threads", 1))
        self.plan = plan
        self.flash_attn = flash_attn
        self.ctx = None

    def open_context(self, prefix_tokens: int):
        L = self.L
        cp = L.llama_context_default_params()
        cp.n_ctx = prefix_tokens + 2 * self.n_batch + 64
        cp.n_batch = cp.n_ubatch = self.n_batch
        cp.n_seq_max = self.max_seqs
        cp.kv_unified = True
        cp.n_threads = cp.n_threads_batch = self.n_threads
        if self.flash_attn is not None:  # None: llama.cpp decides (auto)
            cp.flash_attn_type = 1 if self.flash_attn else 0
        self.ctx = L.llama_init_from_model(self.model, cp)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a context for the scan")
        self.mem = L.llama_get_memory(self.ctx)
        self.batch = L.llama_batch_init(self.n_batch, 0, 1)

    def close(self):
        L = self.L
        if self.ctx:
            L.llama_batch_free(self.batch)
            L.llama_free(self.ctx)
            self.ctx = None
        self.llm.close()

    def piece(self, tok: int) -> str:
        buf = ctypes.create_string_buffer(256)
        n = self.L.llama_token_to_piece(self.vocab, tok, buf, len(buf), 0, False)
        return buf.raw[: max(n, 0)].decode("utf-8", errors="replace")

    def tokenize(self, text: str, add_bos: bool) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=False)

    def normal_tokens(self, words_only: bool) -> tuple[list[int], dict]:
        """NORMAL tokens with a letter or digit; with words_only, only those that begin a word
        (a leading space: a piece from inside a word, repeated alone, means nothing)."""
        L = self.L
        normal = getattr(L, "LLAMA_TOKEN_ATTR_NORMAL", 1 << 1)
        ids, skipped = [], {"not normal": 0, "no letter or digit": 0, "inside a word": 0}
        for t in range(self.n_vocab):
            piece = self.piece(t)
            if not (L.llama_vocab_get_attr(self.vocab, t) & normal):
                skipped["not normal"] += 1
            elif not is_word_like(piece):
                skipped["no letter or digit"] += 1
            elif words_only and not (len(piece) > 1 and piece[0] == " " and piece[1].isalnum()):
                skipped["inside a word"] += 1
            else:
                ids.append(t)
        return ids, skipped

    # -- batched evaluation --------------------------------------------------------------------
    def _add(self, n: int, tok: int, pos: int, seq: int, logits: bool) -> None:
        b = self.batch
        b.token[n] = tok
        b.pos[n] = pos
        b.n_seq_id[n] = 1
        b.seq_id[n][0] = seq
        b.logits[n] = logits

    def _decode(self, n: int) -> None:
        self.batch.n_tokens = n
        rc = self.L.llama_decode(self.ctx, self.batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def eval_prefixes(self, prefixes: list[list[int]]) -> None:
        """Prefix f goes into sequence f (evaluated once, in n_batch pieces)."""
        for f, toks in enumerate(prefixes):
            for start in range(0, len(toks), self.n_batch):
                part = toks[start:start + self.n_batch]
                for j, t in enumerate(part):
                    self._add(j, t, start + j, f, False)
                self._decode(len(part))

    def eval_chunk(self, seqs: list[tuple[int, list[int], int]]):
        """seqs: (frame index = prefix sequence, tokens after the prefix, prefix length).
        Returns the logits after each sequence's last token, as a (len(seqs), n_vocab) array."""
        import numpy as np

        L, n_frames = self.L, self.n_frames
        n = 0
        for i, (f, toks, plen) in enumerate(seqs):
            seq = n_frames + i
            L.llama_memory_seq_cp(self.mem, f, seq, -1, -1)
            for j, t in enumerate(toks):
                self._add(n, t, plen + j, seq, j == len(toks) - 1)
                n += 1
        self._decode(n)
        ptr = L.llama_get_logits(self.ctx)
        out = np.ctypeslib.as_array(ptr, shape=(len(seqs), self.n_vocab)).copy()
        for i in range(len(seqs)):
            L.llama_memory_seq_rm(self.mem, n_frames + i, -1, -1)
        return out, n


def readers_for(plan: dict) -> int:
    """Threads that read chunks while the model evaluates: several where a GPU evaluates and
    the CPU cores are free, one where the CPU cores evaluate."""
    if int(plan.get("n_gpu_layers", 0)) <= 0:
        return 1
    return max(1, min(4, int(plan.get("n_threads", 1)) // 2))


def log_softmax(x):
    import numpy as np

    m = x.max(axis=1, keepdims=True)
    y = x - m
    return y - np.log(np.exp(y).sum(axis=1, keepdims=True))


class ChunkReader:
    """Turns one chunk's log-probabilities (candidates x frames x vocabulary) into the rows that
    op_scan emits (see the module's docstring), a frame at a time over the whole chunk."""

    def __init__(self, frames, control, starts, spellings, pieces, top_k, np):
        self.frames, self.control, self.starts = frames, control, starts
        self.spellings, self.pieces, self.top_k, self.np = spellings, pieces, top_k, np

    def read(self, start: int, chunk: list, lp) -> dict:
        np = self.np
        spelled = [self.spellings.ids("".join(self.pieces[t] for t in c)) for c in chunk]
        rec = {"type": "scan_chunk", "start": start, "reads": {}}
        at = np.arange(len(chunk))
        for fi, f in enumerate(self.frames):
            rows = lp[:, fi, :]
            top = rows.argmax(axis=1)
            top_lp = rows[at, top]
            kl = (np.exp(rows) * (rows - self.control[fi])).sum(axis=1)
            masked = np.where(self.starts, rows, np.float32(-np.inf))
            self_lp = []
            for k, ids in enumerate(spelled):
                self_lp.append(float(np.logaddexp.reduce(rows[k, ids])) if ids else -1e9)
                masked[k, ids] = -np.inf
            ws = masked.argmax(axis=1)
            ws_lp = rows[at, ws]
            out = rec["reads"][f["name"]] = []
            for k in range(len(chunk)):
                item = [round(float(kl[k]), 4), int(top[k]), round(float(top_lp[k]), 4), round(self_lp[k], 4),
                        int(ws[k]), round(float(ws_lp[k]), 4)]
                if self.top_k:
                    row = rows[k]
                    best = np.argpartition(row, -self.top_k)[-self.top_k:]
                    best = best[np.argsort(-row[best])]
                    item.append([[int(i), round(float(row[i]), 5)] for i in best])
                out.append(item)
        return rec


def op_scan(req: dict, emit) -> None:
    import numpy as np

    t0 = time.perf_counter()
    sc = Scanner(req["model_path"], req["plan"], int(req.get("max_seqs", 64)), req.get("flash_attn"))
    try:
        _scan(sc, req, emit, t0, np)
    finally:
        sc.close()


def _scan(sc: Scanner, req: dict, emit, t0: float, np) -> None:
    L = sc.L
    frames = req["frames"]
    sc.n_frames = len(frames)
    add_bos = bool(L.llama_vocab_get_add_bos(sc.vocab))
    prefixes = [sc.tokenize(f["prefix"], add_bos) for f in frames]
    suffixes = [sc.tokenize(f["suffix"], False) for f in frames]
    pieces = [sc.piece(t) for t in range(sc.n_vocab)]
    skipped: dict = {}
    listed = req.get("candidates") in ("vocabulary", "words")
    if listed:
        ids, skipped = sc.normal_tokens(words_only=req["candidates"] == "words")
        candidates = [[t] for t in ids]
    else:
        candidates = [[int(t) for t in c] for c in req["candidates"]]
    spellings = Spellings(pieces)
    per_cand = sum(len(s) for s in suffixes) + len(frames) * max((len(c) for c in candidates), default=1)
    if per_cand > sc.n_batch:
        raise RuntimeError("a candidate's sequences do not fit one batch")
    sc.open_context(sum(len(p) for p in prefixes))
    sc.eval_prefixes(prefixes)
    emit({"type": "scan_meta", "load_s": time.perf_counter() - t0, "n_vocab": sc.n_vocab,
          "candidates": candidates if listed else None,
          "pieces": pieces if req.get("pieces") else None,
          "skipped": skipped, "prefix_tokens": [len(p) for p in prefixes], "suffix_tokens": [len(s) for s in suffixes]})
    per_chunk = max(1, min((sc.max_seqs - len(frames)) // len(frames), sc.n_batch // per_cand))
    tokens_evaluated = sum(len(p) for p in prefixes)
    t_eval = time.perf_counter()

    def run(cands):
        nonlocal tokens_evaluated
        seqs = [(f, list(c) + suffixes[f], len(prefixes[f])) for c in cands for f in range(len(frames))]
        logits, n = sc.eval_chunk(seqs)
        tokens_evaluated += n
        return logits

    def log_probs(cands, logits):
        return log_softmax(logits).reshape(len(cands), len(frames), sc.n_vocab)

    # Controls: each frame's mean distribution over candidates spread evenly over the list.
    n_ctrl = max(1, min(int(req.get("controls", 128)), len(candidates)))
    step = len(candidates) / n_ctrl
    ctrl_cands = [candidates[int(i * step)] for i in range(n_ctrl)]
    acc = np.zeros((len(frames), sc.n_vocab), dtype=np.float64)
    for s in range(0, len(ctrl_cands), per_chunk):
        cands = ctrl_cands[s:s + per_chunk]
        acc += np.exp(log_probs(cands, run(cands))).sum(axis=0)
    control = np.log(np.maximum(acc / n_ctrl, 1e-30)).astype(np.float32)
    starts = np.zeros(sc.n_vocab, dtype=bool)
    starts[word_starts(pieces)] = True
    top_k = int(req.get("top_k", 0))
    reads = ChunkReader(frames, control, starts, spellings, pieces, top_k, np)
    # The host's reading of a chunk's logits overlaps the model's evaluation of the next ones
    # (NumPy and llama_decode release the GIL); rows are emitted in chunk order. On a GPU the
    # reading is most of the time per chunk, so it gets several threads (each holding one chunk's
    # logits: 254 rows x the vocabulary); on a CPU one, which hides under the evaluation.
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    readers = readers_for(sc.plan)
    budget = float(req.get("budget_s") or 0)
    n_chunks = -(-len(candidates) // per_chunk)
    check_at = min(n_chunks, max(8, n_chunks // 50))  # project the whole scan's time once, early
    with ThreadPoolExecutor(max_workers=readers) as pool:
        pending: deque = deque()
        for k, s in enumerate(range(0, len(candidates), per_chunk)):
            if budget and k == check_at and k < n_chunks:
                projected = (time.perf_counter() - t0) + (time.perf_counter() - t_eval) / k * (n_chunks - k)
                if projected > budget:
                    emit({"type": "scan_over_budget", "projected_s": round(projected, 1), "budget_s": budget,
                          "candidates": len(candidates), "chunks_done": k})
                    return
            chunk = candidates[s:s + per_chunk]
            logits = run(chunk)
            pending.append(pool.submit(lambda s=s, chunk=chunk, x=logits: reads.read(s, chunk, log_probs(chunk, x))))
            while len(pending) > readers or (pending and pending[0].done()):
                emit(pending.popleft().result())  # re-raises a reading's error here
        while pending:
            emit(pending.popleft().result())
    emit({"type": "scan_done", "tokens_evaluated": tokens_evaluated, "eval_s": time.perf_counter() - t_eval,
          "sequences": len(candidates) * len(frames)})
