"""Fork (a DataLoader with 2 workers), several Python threads, the GIL released, nothing at import."""
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import vahanorm


class TileDataset:
    """What a torch Dataset does: a normalizer made once, used in each worker after fork."""

    def __init__(self, tiles, norm):
        self.tiles = tiles
        self.norm = norm

    def __getitem__(self, i):
        return self.norm.transform(self.tiles[i])


_DATASET = None


def _worker_item(i):
    return i, _DATASET[i]


def _crops(tile):
    return [np.ascontiguousarray(tile[y:y + 256, x:x + 256]) for y in (0, 256) for x in (0, 256)]


@pytest.mark.parametrize("used_before_fork", [False, True])
def test_fork_with_two_workers(target_file, tile, used_before_fork):
    global _DATASET
    crops = _crops(tile)
    norm = vahanorm.Normalizer(target=target_file, threads=2)
    if used_before_fork:
        norm.transform(crops[0])  # the parent's thread pool exists at fork time
    _DATASET = TileDataset(crops, norm)
    ctx = mp.get_context("fork")
    with ctx.Pool(2) as pool:
        result = pool.map_async(_worker_item, range(len(crops)))
        got = dict(result.get(timeout=300))  # a deadlock after fork fails here
    for i, c in enumerate(crops):
        np.testing.assert_array_equal(got[i], vahanorm.Normalizer(target=target_file, threads=1).transform(c))
    # The parent's normalizer still works after its children are gone.
    np.testing.assert_array_equal(norm.transform(crops[1]), got[1])


def test_several_python_threads(target_file, tile):
    crops = _crops(tile)
    expected = [vahanorm.Normalizer(target=target_file, threads=1).transform(c) for c in crops]
    shared = vahanorm.Normalizer(target=target_file, threads=2)
    errors = []
    results = {}

    def work(k):
        try:
            own = vahanorm.Normalizer(target=target_file, threads=1)
            for r in range(3):
                for i, c in enumerate(crops):
                    n = shared if (i + r + k) % 2 else own
                    results[(k, r, i)] = n.transform(c) if r != 1 else n.transform_batch(c[None])[0]
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and not any(t.is_alive() for t in threads)
    assert len(results) == 4 * 3 * len(crops)
    for (k, r, i), out in results.items():
        np.testing.assert_array_equal(out, expected[i])


def test_the_gil_is_released_while_the_core_runs(target_file, tile):
    norm = vahanorm.Normalizer(target=target_file, threads=1)
    norm.transform(tile)  # warm
    t0 = time.perf_counter()
    norm.transform(tile)
    one = time.perf_counter() - t0
    batch = np.stack([tile] * min(200, max(16, int(0.5 / one))))  # about half a second of work

    def spin(seconds):
        n, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            n += 1
        return n

    per_20ms = spin(0.02)
    started = threading.Event()
    done = threading.Event()

    def work():
        started.set()
        norm.transform_batch(batch)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    started.wait()
    t0 = time.perf_counter()
    count = 0
    while not done.is_set():
        count += 1
    elapsed = time.perf_counter() - t0
    t.join()
    # Holding the GIL for the whole call would leave this thread a switch interval (5 ms) at
    # most; released, it counts for most of the call.
    assert elapsed > 0.1, "the batch was too quick to tell"
    assert count > 3 * per_20ms, (count, per_20ms, elapsed)


def test_import_starts_no_threads_and_loads_neither_numpy_nor_cuda():
    code = (
        "import os, sys\n"
        "import vahanorm\n"
        "print(len(os.listdir('/proc/self/task')), 'numpy' in sys.modules,\n"
        "      any('vahanorm-cuda' in l or 'libcuda' in l for l in open('/proc/self/maps')))\n"
        "import numpy as np\n"
        "n = vahanorm.Normalizer(threads=3)\n"
        "print(len(os.listdir('/proc/self/task')))\n"
        "n.backend  # starts the backend\n"
        "print(len(os.listdir('/proc/self/task')),\n"
        "      any('vahanorm-cuda' in l or 'libcuda' in l for l in open('/proc/self/maps')))\n"
    )
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    assert lines[0] == "1 False False"  # one thread, no numpy, no CUDA after import
    assert lines[1] == "1"  # a Normalizer starts its threads on first use
    assert lines[2] == "3 False"  # then its pool: 2 workers + the caller


def test_a_forked_child_can_drop_a_used_normalizer(target_file, tile):
    """Deleting, in a child, a Normalizer whose thread pool ran in the parent neither joins
    threads that are not there nor hangs; a new one works there."""
    import gc

    crop = np.ascontiguousarray(tile[:256, :256])
    holder = [vahanorm.Normalizer(target=target_file, threads=2)]  # the only reference
    expected = holder[0].transform(crop)
    pid = os.fork()
    if pid == 0:  # the child: exits with 0 only if all went well
        code = 1
        try:
            holder.clear()  # the parent's normalizer is destroyed here
            gc.collect()
            other = vahanorm.Normalizer(target=target_file, threads=2)
            code = 0 if np.array_equal(other.transform(crop), expected) else 2
        finally:
            os._exit(code)
    deadline = time.time() + 120
    status = None
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the child hung")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    np.testing.assert_array_equal(holder[0].transform(crop), expected)
