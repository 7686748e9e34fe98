"""Session 43, devolens's Python API embedded in Dask, joblib, multiprocessing and napari: segmentation results and the
nuclei, membrane and population predictors pickle (before and after a first prediction, at every precision, and an
int8 predictor unpickled in a fresh spawned process predicts), deep-copy, and give the parent's results; calls made
together in threads leave the host's torch thread count as it was (``diameter="auto"`` left the whole process in one
thread) and build the int8 network once (each thread built its own)."""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import threading
import warnings

import numpy as np
import pytest
import torch

from _zoo_helpers import shipped
from devolens.models.quantize import int8_supported

needs_nuclei = pytest.mark.skipif(not shipped("nuclei"), reason="the zoo's nuclei weights are not installed")
needs_int8 = pytest.mark.skipif(not int8_supported(), reason="this PyTorch build has no oneDNN int8 engine")


def _frame(h: int = 192, w: int = 192, seed: int = 0, n: int = 24) -> np.ndarray:
    """A grey frame of ``n`` blurred nuclei about 30 px across (uint8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = np.zeros((h, w), np.float32)
    for _ in range(n):
        cy, cx = rng.uniform(12, h - 12), rng.uniform(12, w - 12)
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 7.0 ** 2))
    return (np.clip(img, 0, 1) * 220 + rng.normal(0, 3, (h, w)).clip(-10, 10) + 10).astype(np.uint8)


def _load(name: str, **options):
    from devolens.models import load

    with warnings.catch_warnings():  # (bf16 on a CPU without it: a note that it runs emulated)
        warnings.simplefilter("ignore")
        return load(name, **options)


def _predict(predictor, image):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return predictor.predict(image)


def _same(a, b) -> None:
    """Two segmentation results are the same: labels, objects, probability and mask."""
    assert np.array_equal(a.labels, b.labels)
    for key in ("label", "x", "y", "area"):
        assert np.array_equal(a.objects[key], b.objects[key])
    assert np.array_equal(a.probability, b.probability)
    assert np.array_equal(a.mask, b.mask)
    assert a.extra.keys() == b.extra.keys()


# ---------------------------------------------------------------------------------------------------- results


@needs_nuclei
@pytest.mark.parametrize("name", ["nuclei", "membrane"])
def test_results_pickle_and_stay_lazy(name):
    """A result pickles ("Can't pickle local object 'NucleiPredictor._finish.<locals>.<lambda>'" before), its maps
    still computed on first use (no work when nobody asks for them or pickles), the same after the round trip."""
    if not shipped(name):
        pytest.skip(f"the zoo's {name} weights are not installed")
    pred = _load(name)
    res = _predict(pred, _frame())
    assert callable(res._probability)  # lazy: nothing at the input size made yet
    back = pickle.loads(pickle.dumps(res))
    assert callable(res._probability) and callable(back._probability)  # (pickling did not compute it either)
    assert back.count == res.count > 0
    _same(back, res)
    # asked for first, then pickled: the computed maps travel
    _same(pickle.loads(pickle.dumps(res)), res)
    _same(copy.deepcopy(res), res)


@needs_nuclei
def test_block_result_pickles():
    """A giant image's result (segmented block by block: its maps assembled again from its run when asked for)
    pickles with its maps computed."""
    pred = _load("nuclei", block_pixels=64 * 64, diameter=None)
    res = _predict(pred, _frame(256, 256, n=40))
    assert "blocks" in res.extra  # (segmented by the block path)
    back = pickle.loads(pickle.dumps(res))
    assert not callable(back._probability)
    _same(back, res)


# ---------------------------------------------------------------------------------------------------- predictors


@needs_nuclei
@pytest.mark.parametrize("precision", ["int8", "bf16", "fp32"])
def test_nuclei_predictor_pickles_and_copies(precision):
    """A nuclei predictor pickles and deep-copies (``cannot pickle '_thread.lock'`` before) before and after its first
    prediction; the copies give the parent's results; the int8 network built on first use is left out (rebuilt)."""
    if precision == "int8" and not int8_supported():
        pytest.skip("this PyTorch build has no oneDNN int8 engine")
    pred = _load("nuclei", precision=precision, diameter="auto")
    frame = _frame()
    fresh = pickle.loads(pickle.dumps(pred))  # before any prediction
    want = _predict(pred, frame)
    after = pickle.loads(pickle.dumps(pred))
    if precision == "int8":
        assert pred.network._network._int8 is not None and after.network._network._int8 is None
    deep = copy.deepcopy(pred)
    for other in (fresh, after, deep):
        assert other.network.precision == precision
        _same(_predict(other, frame), want)
    # each copy has its own lock; the parent still works
    assert after.network._lazy_lock is not pred.network._lazy_lock
    _same(_predict(pred, frame), want)


@needs_nuclei
def test_views_share_lazies_after_pickling():
    """A network's at_scale views share what is built on first use and its lock, before and after pickling."""
    net = _load("nuclei").network
    view = net.at_scale(0.25)
    assert view._lazy is net._lazy and view._lazy_lock is net._lazy_lock
    net2, view2 = pickle.loads(pickle.dumps((net, view)))
    assert view2._lazy is net2._lazy and view2._lazy_lock is net2._lazy_lock
    assert view2.scale == 0.25 and net2.scale == net.scale


@needs_nuclei
def test_membrane_and_population_predictors_pickle():
    if not (shipped("membrane") and shipped("population")):
        pytest.skip("the zoo's membrane or population weights are not installed")
    frame = _frame()
    membrane = _load("membrane")
    want = _predict(membrane, frame)
    _same(_predict(pickle.loads(pickle.dumps(membrane)), frame), want)
    _same(_predict(copy.deepcopy(membrane), frame), want)
    population = _load("population")
    counts = _predict(population, frame)
    for other in (pickle.loads(pickle.dumps(population)), copy.deepcopy(population)):
        got = _predict(other, frame)
        assert got.keys() == counts.keys()
        for key in counts:
            assert np.array_equal(np.asarray(got[key]), np.asarray(counts[key]), equal_nan=True), key


@needs_nuclei
@needs_int8
def test_int8_predictor_after_prediction_in_spawned_process():
    """An int8 predictor pickled after its first prediction runs in a fresh (spawned) process ('ConvReLU2d' object
    has no attribute '_backward_hooks', in a pool a PyTorch internal assertion and a hang, before), and the result
    it sends back is the parent's."""
    pred = _load("nuclei", precision="int8")
    frame = _frame()
    want = _predict(pred, frame)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        got = pool.apply(pred.predict, (frame,))
    _same(got, want)


# ---------------------------------------------------------------------------------------------------- threads


def _fresh_thread_count() -> int:
    """The torch thread count a new thread starts with (what torch.set_num_threads set last, in any thread)."""
    out = []
    t = threading.Thread(target=lambda: out.append(torch.get_num_threads()))
    t.start()
    t.join()
    return out[0]


@pytest.fixture
def host_threads():
    """The host sets its own torch thread count (one the tests do not otherwise use); restored afterwards."""
    before = torch.get_num_threads()
    host = 3 if before != 3 else 5
    torch.set_num_threads(host)
    try:
        yield host
    finally:
        torch.set_num_threads(before)


@needs_nuclei
def test_size_estimates_in_threads_keep_the_hosts_thread_count(host_threads):
    """Two estimates overlapping in threads: the second thread started while the first had set one thread, saved
    that 1 and restored it last, leaving every new thread of the process in one thread (deterministic here)."""
    from devolens.predict.sizing import _features, _prepared

    pred = _load("nuclei", precision="fp32")
    arr = _prepared(pred, _frame())
    first_in, second_in, first_done = threading.Event(), threading.Event(), threading.Event()
    state = threading.local()

    def hold(module, args):  # inside the encoder: after the estimate set its thread count, before it restores it
        if getattr(state, "role", None) == "first":
            first_in.set()
            second_in.wait(30)
        elif getattr(state, "role", None) == "second":
            second_in.set()
            first_done.wait(30)

    def run(role):
        state.role = role
        _features(pred, arr)
        state.role = None

    handle = pred.network.model.encoder.register_forward_pre_hook(hold)
    try:
        a = threading.Thread(target=run, args=("first",))
        a.start()
        first_in.wait(30)
        b = threading.Thread(target=run, args=("second",))
        b.start()
        a.join()
        first_done.set()
        b.join()
    finally:
        handle.remove()
    assert _fresh_thread_count() == host_threads
    assert torch.get_num_threads() == host_threads


@needs_nuclei
def test_auto_diameter_in_thread_pool_keeps_thread_count(host_threads):
    """4 threads x 3 rounds of predict with diameter="auto" (the walkthrough's race): the host's count stays."""
    from concurrent.futures import ThreadPoolExecutor

    pred = _load("nuclei", diameter="auto")
    frames = [_frame(128, 128, seed=s, n=12) for s in range(4)]
    for _ in range(3):
        with ThreadPoolExecutor(4) as pool:
            counts = list(pool.map(lambda f: _predict(pred, f).count, frames))
        assert all(c > 0 for c in counts)
        assert _fresh_thread_count() == host_threads
    assert torch.get_num_threads() == host_threads
    # the main thread's own estimates still run in one thread and give the count back
    _predict(pred, frames[0])
    assert torch.get_num_threads() == host_threads == _fresh_thread_count()


@needs_nuclei
@needs_int8
def test_int8_network_built_once_by_threads(monkeypatch):
    """Threads making their first predictions together build the int8 network once (each built its own before)."""
    import devolens.models.quantize as q

    pred = _load("nuclei", precision="int8")
    network = pred.network._network
    assert network._int8 is None
    original, calls = q.quantize, []
    crowd = threading.Event()

    def counting(*args, **kwargs):
        calls.append(threading.get_ident())
        if len(calls) >= 4:
            crowd.set()
        crowd.wait(1.0)  # lets every thread that would build one get here (1 s at most: with the lock, only one)
        return original(*args, **kwargs)

    monkeypatch.setattr(q, "quantize", counting)
    start = threading.Barrier(4)
    x = torch.from_numpy(np.random.default_rng(0).random((1, 1, 64, 64), np.float32))
    outs = [None] * 4

    def run(i):
        start.wait(30)
        outs[i] = network(x)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert all(torch.equal(o, outs[0]) for o in outs)
