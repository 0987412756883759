"""The runner's child process: `python -m runner.child`, one JSON request on stdin.

Results go out as JSON lines on the ORIGINAL stdout (fd 1 is then pointed at stderr, so
anything llama.cpp prints cannot corrupt the channel). One line per finished item, flushed
at once, so a crash or timeout mid-batch still leaves the results that were finished.

Ops:
  {"op": "info"}  -> {"type": "info", "version", "system_info", "gpu_offload"}
  {"op": "run", "model_path", "plan": {...}, "seed", "items": [item, ...]}
      item = {"id", "prompt", "chat": bool, "max_tokens", "top_k",
              "score": {"tokens": [...], "ref_ids": [[...], ...]} | absent}
      -> {"type": "loaded", "load_s", "n_vocab", ...} then {"type": "item", ...} per item
  {"op": "scan", "model_path", "plan", "frames", "candidates", ...}  -> see runner/scan.py
  {"op": "selftest", "action": "sleep"|"segv"|"alloc"|"env"|"exit", ...}  (for the runner's tests)
Decoding is greedy (argmax of the logits): deterministic for a given plan.
"""
from __future__ import annotations

import json
import os
import sys
import time


def _emit(chan, record: dict) -> None:
    chan.write(json.dumps(record, separators=(",", ":")) + "\n")
    chan.flush()


# The vocabulary is viewed as a matrix of _ROWS rows (padded with -inf to a multiple of
# _ROWS): the maxima of its columns take one vectorised pass, and they bound the top-k.
_ROWS = 64


def padded_length(n: int) -> int:
    return -(-n // _ROWS) * _ROWS


def padded_copy(x):
    """A copy of x (same dtype) followed by -inf up to padded_length(len(x))."""
    import numpy as np

    padded = np.full(padded_length(x.shape[0]), -np.inf, dtype=x.dtype)
    padded[: x.shape[0]] = x
    return padded


def column_max(padded):
    """Maximum of each column of `padded` (length a multiple of _ROWS) seen as a (_ROWS, -1) matrix."""
    return padded.reshape(_ROWS, -1).max(axis=0)


def top_indices(x, k: int, col_max=None):
    """Ids of the k largest values of the 1-D array x, by value (descending) then id; ties at the
    k-th value go to the lower ids, so the result is a function of x alone.

    Without a full selection over the vocabulary: the k-th largest column maximum is a lower bound
    of the k-th largest value (k columns each hold a value at least that large), so one comparison
    finds every candidate. It runs once per generated token."""
    import numpy as np

    n = x.shape[0]
    k = max(1, min(k, n))
    if col_max is None:
        col_max = column_max(padded_copy(x))
    if not np.isfinite(col_max.max()):  # NaN or +inf: keep the plain selection (NaN sorts last)
        idx = np.argpartition(x, -k)[-k:]
        return idx[np.lexsort((idx, -x[idx]))]
    n_col = col_max.shape[0]
    if n_col > k:
        cand = np.flatnonzero(x >= np.partition(col_max, n_col - k)[n_col - k])
    else:
        cand = np.arange(n)
    vals = x[cand]
    if cand.size > k:
        cut = cand.size - k
        kth = np.partition(vals, cut)[cut]
        above, ties = vals > kth, vals == kth
        keep = above | (ties & (np.cumsum(ties) <= k - int(above.sum())))
        cand, vals = cand[keep], vals[keep]
    return cand[np.lexsort((cand, -vals))]


class _Dist:
    """Next-token distribution: raw logits plus their log-sum-exp (the full softmax's
    normaliser), so a log-prob is logits[i] - lse without materialising the whole vector.
    It views the model's logits buffer: valid until the next read of the logits."""

    __slots__ = ("x", "col_max", "lse")

    def __init__(self, padded, n: int, scratch):
        import numpy as np

        self.x = x = padded[:n]
        self.col_max = column_max(padded)
        m = float(self.col_max.max())
        np.subtract(x, m, out=scratch)
        np.exp(scratch, out=scratch)
        self.lse = m + float(np.log(scratch.sum(dtype=np.float64)))

    def lp(self, i: int) -> float:
        return float(self.x[i]) - self.lse

    def top(self, k: int) -> list[list]:
        x, lse = self.x, self.lse
        return [[i, round(float(x[i]) - lse, 6)] for i in top_indices(x, k, self.col_max).tolist()]


def distribution(logits):
    """A _Dist over a copy of a 1-D logits array (for tests and one-off use)."""
    import numpy as np

    n = logits.shape[0]
    return _Dist(padded_copy(logits.astype(np.float32)), n, np.empty(n, dtype=np.float32))


class _Model:
    def __init__(self, model_path: str, plan: dict, seed: int):
        import llama_cpp
        import numpy as np

        from .llama_load import load_llama

        self.llama_cpp = llama_cpp
        self.llm = load_llama(
            model_path, plan,
            n_ctx=plan["n_ctx"], n_batch=plan["n_batch"], n_ubatch=plan["n_batch"],
            n_threads=plan["n_threads"], n_threads_batch=plan["n_threads"],
            seed=seed, logits_all=False,
        )
        self.n_vocab = self.llm.n_vocab()
        self.n_ctx = self.llm.n_ctx()
        self.vocab = self.llm._model.vocab
        self._formatter = None
        # Per-token buffers, allocated once: the padded logits and the softmax scratch.
        self._padded = padded_copy(np.zeros(self.n_vocab, dtype=np.float32))
        self._scratch = np.empty(self.n_vocab, dtype=np.float32)
        self._view_addr, self._view = None, None

    def next_dist(self) -> _Dist:
        """The distribution after the last evaluated token (valid until the next call)."""
        import ctypes

        import numpy as np

        ptr = self.llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, -1)
        addr = ctypes.cast(ptr, ctypes.c_void_p).value
        if not addr:
            raise RuntimeError("llama.cpp returned no logits")
        if addr != self._view_addr:  # llama.cpp reallocated its output buffer
            buf = (ctypes.c_float * self.n_vocab).from_address(addr)
            self._view_addr, self._view = addr, np.frombuffer(buf, dtype=np.float32)
        np.copyto(self._padded[: self.n_vocab], self._view)
        return _Dist(self._padded, self.n_vocab, self._scratch)

    def chat_prompt(self, text: str) -> str:
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            meta = self.llm.metadata
            template = meta.get("tokenizer.chat_template")
            if not template:
                raise ValueError("the model has no chat template")

            def tok(key):
                i = meta.get(key)
                return self.llm._model.token_get_text(int(i)) if i is not None else ""

            self._formatter = Jinja2ChatFormatter(
                template, eos_token=tok("tokenizer.ggml.eos_token_id"), bos_token=tok("tokenizer.ggml.bos_token_id"),
            )
        return self._formatter(messages=[{"role": "user", "content": text}]).prompt

    def run_item(self, item: dict) -> dict:
        llm = self.llm
        chat = bool(item.get("chat"))
        prompt = self.chat_prompt(item["prompt"]) if chat else item["prompt"]
        # add_bos follows the model's own setting; a chat template that already starts with
        # BOS is not doubled because llama.cpp's tokenizer checks that.
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=chat)
        top_k = int(item.get("top_k", 10))
        max_tokens = int(item.get("max_tokens", 0))
        score = item.get("score")
        budget = self.n_ctx - len(tokens)
        if budget <= 0:
            return {"error": f"prompt of {len(tokens)} tokens does not fit n_ctx={self.n_ctx}"}
        out: dict = {"n_prompt_tokens": len(tokens)}
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(tokens)
        t1 = time.perf_counter()
        out["prompt_s"] = t1 - t0
        lp = self.next_dist()
        if score is not None:
            forced = [int(t) for t in score.get("tokens", [])][: budget - 1]
            ref_ids = score.get("ref_ids") or []
            positions = []
            for j in range(min(len(ref_ids), len(forced) + 1)):
                ids = [int(i) for i in ref_ids[j] if 0 <= int(i) < self.n_vocab]
                positions.append({
                    "top": lp.top(top_k),
                    "ref": [[i, round(lp.lp(i), 6)] for i in ids],
                })
                if j < len(forced) and j + 1 < len(ref_ids):
                    llm.eval([forced[j]])
                    lp = self.next_dist()
            out["score"] = positions
            out["score_s"] = time.perf_counter() - t1
            t1 = time.perf_counter()
            if max_tokens:  # generation after scoring starts again from the prompt
                llm.reset()
                llm.eval(tokens)
                lp = self.next_dist()
                t1 = time.perf_counter()
        gen, tops, eog = [], [], False
        for _ in range(min(max_tokens, budget)):
            top = lp.top(top_k)
            tok = top[0][0]
            if self.llama_cpp.llama_vocab_is_eog(self.vocab, tok):
                eog = True
                break
            gen.append(tok)
            tops.append({"token": tok, "logprob": top[0][1], "top": top})
            if len(gen) >= min(max_tokens, budget):
                break
            llm.eval([tok])
            lp = self.next_dist()
        t2 = time.perf_counter()
        out.update({
            "tokens": gen,
            "text": llm.detokenize(gen).decode("utf-8", errors="replace") if gen else "",
            "positions": tops,
            "stopped": "eog" if eog else "length",
            "gen_s": t2 - t1,
        })
        return out


def _op_run(req: dict, chan) -> None:
    t0 = time.perf_counter()
    model = _Model(req["model_path"], req["plan"], int(req.get("seed", 0)))
    _emit(chan, {"type": "loaded", "load_s": time.perf_counter() - t0, "n_vocab": model.n_vocab,
                 "n_ctx": model.n_ctx})
    for item in req.get("items", []):
        try:
            res = model.run_item(item)
        except Exception as exc:  # a bad item (e.g. broken chat template) is that item's error
            res = {"error": f"{type(exc).__name__}: {exc}"}
        res.update({"type": "item", "id": item.get("id")})
        _emit(chan, res)


def _op_info(req: dict, chan) -> None:
    import llama_cpp

    llama_cpp.llama_backend_init()
    _emit(chan, {
        "type": "info",
        "version": getattr(llama_cpp, "__version__", None),
        "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
    })


def _op_selftest(req: dict, chan) -> None:
    action = req.get("action")
    _emit(chan, {"type": "selftest", "started": action})
    if action == "sleep":
        time.sleep(float(req.get("seconds", 3600)))
    elif action == "segv":
        import ctypes

        ctypes.string_at(0)
    elif action == "alloc":
        blob = bytearray(int(req["bytes"]))
        _emit(chan, {"type": "selftest", "allocated": len(blob)})
    elif action == "env":
        _emit(chan, {"type": "selftest", "env": dict(os.environ), "cwd": os.getcwd(),
                     "stdin_empty": os.read(0, 1) == b"",
                     "rlimit_as": __import__("resource").getrlimit(__import__("resource").RLIMIT_AS)[0]})
    elif action == "exit":
        os._exit(int(req.get("code", 3)))
    elif action == "spawn_sleeper":  # a grandchild that must die with the group on timeout
        import subprocess

        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        _emit(chan, {"type": "selftest", "grandchild_pid": p.pid})
        time.sleep(3600)


def _op_scan(req: dict, chan) -> None:
    from runner.scan import op_scan

    op_scan(req, lambda record: _emit(chan, record))


OPS = {"run": _op_run, "info": _op_info, "selftest": _op_selftest, "scan": _op_scan}


def _peak_memory() -> dict:
    """Peak virtual size and resident set of this process (Linux), for sizing the limits."""
    out = {}
    try:
        for line in open("/proc/self/status"):
            key, _, rest = line.partition(":")
            if key in ("VmPeak", "VmHWM"):
                out["peak_vm_bytes" if key == "VmPeak" else "peak_rss_bytes"] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return out


def _apply_limits(argv: list[str]) -> None:
    """--as-limit BYTES: RLIMIT_AS for this process (set here rather than in a preexec_fn,
    which is unsafe in a threaded parent such as a Celery worker); core dumps off."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):  # die with the parent (PR_SET_PDEATHSIG = 1)
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if "--as-limit" in argv:
        limit = int(argv[argv.index("--as-limit") + 1])
        if limit > 0:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def import_llama_before_numpy() -> None:
    """Load llama.cpp's libraries before NumPy is imported. Measured on a CUDA build (H100,
    CUDA 13, NumPy 2.5.2): with NumPy imported first, the model load segfaults inside std::regex
    (the tokenizer's pre-split) because libggml-cuda.so exports its own copies of libstdc++
    symbols and the process binds to the wrong ones; with llama_cpp imported first it loads
    and runs. The CPU build is indifferent to the order."""
    try:
        import llama_cpp.llama_cpp  # noqa: F401
    except ImportError:
        pass  # the op that needs it reports the missing package itself


def main() -> int:
    import faulthandler

    faulthandler.enable()  # a crash in llama.cpp leaves the Python stack in the stderr tail
    _apply_limits(sys.argv[1:])
    import_llama_before_numpy()
    chan = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)               # stray prints (Python or C) now go to stderr
    sys.stdout = sys.stderr
    req = json.loads(sys.stdin.read())
    sys.stdin.close()
    fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(fd, 0)
    os.close(fd)
    op = OPS.get(req.get("op"))
    if op is None:
        _emit(chan, {"type": "error", "error": f"unknown op {req.get('op')!r}"})
        return 2
    try:
        op(req, chan)
    except Exception as exc:
        _emit(chan, {"type": "error", "error": f"{type(exc).__name__}: {exc}"})
        return 1
    _emit(chan, {"type": "done", **_peak_memory()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
