#!/usr/bin/env bash
# The strict nvcc check: compile every csrc/cuda/*.cu for sm_80 and sm_90 with all nvcc warnings as
# errors and ptxas reporting (and failing on) register spills and local-memory use. The ptxas
# resource report (registers, shared memory, spills per kernel) is kept in build/ptxas-report.txt.
#   usage: .ci/nvcc_strict.sh            (NVCC=/path/to/nvcc to choose the compiler)
set -euo pipefail
cd "$(dirname "$0")/.."

nvcc="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
out=build/nvcc-strict
report=build/ptxas-report.txt
mkdir -p "$out"
: > "$report"

status=0
for cu in csrc/cuda/*.cu; do
  obj="$out/$(basename "$cu").o"
  echo "== $cu" | tee -a "$report"
  if ! "$nvcc" -std=c++17 --Werror all-warnings \
      -Xptxas -v,-warn-spills,-warn-lmem-usage,-Werror \
      -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
      -Icsrc -c "$cu" -o "$obj" >>"$report" 2>&1; then
    status=1
  fi
done

# --Werror all-warnings and ptxas -Werror turn warnings into failures; a warning that slipped
# through anyway (from the host compiler, say) fails the check too.
if grep -qiE 'warning|error' "$report"; then
  grep -iE 'warning|error' "$report" >&2
  status=1
fi
echo "ptxas resource report: $report"
if [ "$status" -ne 0 ]; then
  echo "nvcc strict check FAILED" >&2
else
  echo "nvcc strict check passed"
fi
exit "$status"
