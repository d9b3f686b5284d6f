#!/usr/bin/env bash
# Run a command as it would run on an AVX2-only CPU, on a CPU that has AVX-512. The kernels of
# PyTorch (ATen's vectorised ops, oneDNN's convolutions, MKL's matmuls) and of TensorFlow (oneDNN,
# and the code XLA generates for Keras's jit_compile) are capped to AVX2. Native bf16 goes with
# AVX-512: torch's oneDNN then reports none, so `--precision auto` stays in fp32, as on such a CPU.
# What it cannot emulate: an AVX2 CPU's own cores, caches, clocks and memory. Every bench table
# measured under it says so in its CPU line, and facesketch's autotune cache keeps its choices
# apart from the uncapped CPU's.
#
#   bash bench/as_avx2.sh python bench/loop_bench.py --models conv_ae --keras-python /tmp/tf/bin/python
set -euo pipefail
case "${1:-}" in
    "") echo "usage: bash bench/as_avx2.sh COMMAND [ARGS...]" >&2; exit 2 ;;
    -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
esac
command -v "$1" >/dev/null || { echo "bench/as_avx2.sh: $1: no such command (expected a command to run, e.g. python bench/loop_bench.py)" >&2; exit 2; }
export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_cpu_max_isa=AVX2"
exec -- "$@"
