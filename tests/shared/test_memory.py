import platform
import subprocess
import sys

import pytest

from shared.memory import keep_freed_memory

# Page faults of the transforms per 640x480 float32 frame, before and after the call, in a
# fresh process (the setting is process-wide and cannot be undone).
_COUNT_FAULTS = """
import resource, sys
import numpy as np
from shared.codec import ImageCodec, configure_threads
from shared.memory import keep_freed_memory

configure_threads(1)
codec = ImageCodec.load("realtime", precision="fp32")
rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)

def faults_per_frame():
    for _ in range(3):  # settle
        codec.synthesize(codec.analyze(rgb, 4), 4, 480, 640)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        codec.synthesize(codec.analyze(rgb, 4), 4, 480, 640)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5

default = faults_per_frame()
applied = keep_freed_memory()
print(default, faults_per_frame(), applied)
"""


def test_keep_freed_memory_applies_on_glibc_and_nowhere_else():
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is glibc


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_freed_tensors_are_reused_instead_of_faulting_in_new_pages():
    result = subprocess.run(
        [sys.executable, "-c", _COUNT_FAULTS], capture_output=True, text=True, check=True
    )
    default, kept, applied = result.stdout.split()
    if applied != "True":
        pytest.skip("not glibc")
    # Measured: about 4,400 faults per frame by default, under 100 after.
    assert float(kept) < float(default) / 10
