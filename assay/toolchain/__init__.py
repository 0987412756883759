"""llama.cpp's tools run in contained child processes: quantization, importance matrices,
conversion from safetensors, GGUF split and merge. Imports core only."""
