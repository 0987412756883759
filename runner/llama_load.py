"""Loading a GGUF model into llama-cpp-python the way a runner plan says (one place for the
run op and the scan op)."""
from __future__ import annotations


def load_llama(model_path: str, plan: dict, **kwargs):
    """llama_cpp.Llama for `model_path` with the plan's GPU layers, mmap and weight repacking.

    Llama() has no argument for llama.cpp's "extra buffer types" (weight repacking, AMX): it takes
    the model parameters from llama_cpp.llama_cpp.llama_model_default_params, so a plan that
    turns repacking off replaces that function in the low-level module (where Llama looks it up;
    the package's re-export is a different name binding and patching it changes nothing)."""
    import llama_cpp
    import llama_cpp.llama_cpp as low

    if not plan.get("use_extra_bufts", True) and not getattr(low.llama_model_default_params, "_assay_no_repack", False):
        default = low.llama_model_default_params

        def params():
            p = default()
            p.use_extra_bufts = False
            return p

        params._assay_no_repack = True
        low.llama_model_default_params = params
    return llama_cpp.Llama(model_path=model_path, n_gpu_layers=int(plan.get("n_gpu_layers", 0)),
                           use_mmap=bool(plan.get("use_mmap", True)), verbose=False, **kwargs)
