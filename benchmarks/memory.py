"""Peak resident memory of a framework worker on the largest cases, against 4x the logits' size.

For each framework, in a fresh process: import it and run the case once (kernels compiled,
allocator pools and caches filled: the framework's baseline), free it, reset the peak
(/proc/self/clear_refs), run the case again, and read the new peak (VmHWM). Prints the peak above
the baseline beside 4x the logits' bytes, the target of issue 7.

    python benchmarks/memory.py [--frameworks torch,tensorflow,jax,numpy] [--timing-case]

--timing-case also measures the 4096 x 32000 float32 timing case (512 MiB of logits).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = """
import sys, math
sys.path.insert(0, {root!r})
from adapters import registry
from cases.generator import default_cases, timing_cases
def kb(field):
    for line in open('/proc/self/status'):
        if line.startswith(field):
            return int(line.split()[1])
adapter = registry.load({framework!r})
cases = default_cases() + (timing_cases() if {timing} else [])
big = max(cases, key=lambda c: math.prod(c.shape) * (8 if c.dtype == 'float64' else 4))
import gc
for r in adapter.iter_case(big, 'cpu'):
    del r
gc.collect()
base = kb('VmRSS:')
open('/proc/self/clear_refs', 'w').write('5')  # reset the peak to the current RSS
ran = 0
for r in adapter.iter_case(big, 'cpu'):  # as the worker does: each result sent on, then dropped
    ran += r.outcome is None
    del r
print(big.id, math.prod(big.shape), base, kb('VmHWM:'), ran)
"""

ITEM = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frameworks", default="numpy,torch,tensorflow,jax")
    p.add_argument("--timing-case", action="store_true")
    args = p.parse_args()
    print(f"{'framework':<11} {'case':<44} {'baseline':>10} {'peak-base':>10} {'4x logits':>10}  verdict")
    worst = 0
    for fw in args.frameworks.split(","):
        code = CHILD.format(root=str(ROOT), framework=fw, timing=args.timing_case)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            print(f"{fw:<11} failed: {out.stderr.strip().splitlines()[-1] if out.stderr else out.returncode}")
            worst = 1
            continue
        case_id, elements, base_kb, peak_kb, ran = out.stdout.split()
        dtype = next(d for t, d in (("-f64-", "float64"), ("-f32-", "float32")) if t in case_id)
        logits = int(elements) * ITEM[dtype]
        extra = (int(peak_kb) - int(base_kb)) * 1024
        ok = extra <= 4 * logits
        worst |= not ok
        print(f"{fw:<11} {case_id:<44} {int(base_kb) / 1024:>8.0f}MB {extra / 2**20:>8.1f}MB "
              f"{4 * logits / 2**20:>8.1f}MB  {'ok' if ok else 'OVER'} ({ran} recipes ran)")  # fmt: skip
    return worst


if __name__ == "__main__":
    sys.exit(main())
