"""Checkpoints: exact round trips, loading by name, strict and partial loading, atomic writes,
and hostile files that must be refused without running anything they contain."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import descentlab.optim as optim

CONFIGS = [(name, {}) for name in optim.OPTIMIZERS] + [
    ("Adam", {"amsgrad": True}),
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("RMSprop", {"centered": True, "momentum": 0.5}),
]


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((3, 4)), rng.standard_normal(4).astype(np.float32),
            rng.standard_normal(())]


def _grads(step):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal((3, 4)), rng.standard_normal(4).astype(np.float32),
            np.asarray(rng.standard_normal())]


def _make(name, params, kwargs, **extra):
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": 0.02}]
    return optim.OPTIMIZERS[name](groups, lr=0.01, **kwargs, **extra)


def _snapshot(opt, params):
    return ([p.tobytes() for p in params], opt.skipped_steps,
            [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups],
            {k: {n: (v.tobytes() if isinstance(v, np.ndarray) else v) for n, v in s.items()}
             for k, s in opt.state.items()})


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=[f"{n}{k or ''}" for n, k in CONFIGS])
def test_a_loaded_checkpoint_continues_bit_identically(tmp_path, name, kwargs):
    params = _params()
    opt = _make(name, params, kwargs, nonfinite="skip")
    for step in range(5):
        opt.step(_grads(step))
    opt.step([np.full((3, 4), np.nan), *_grads(5)[1:]])  # a skipped step is saved too
    opt.param_groups[1]["lr"] = 0.005  # as a schedule would
    optim.save(tmp_path / "opt.npz", opt)
    restored_params = [p.copy() for p in params]
    restored = _make(name, restored_params, kwargs, nonfinite="skip")
    assert optim.load(tmp_path / "opt.npz", restored) == ([], [])
    assert restored.skipped_steps == 1 and restored.param_groups[1]["lr"] == 0.005
    for step in range(6, 11):
        opt.step(_grads(step))
        restored.step(_grads(step))
    for mine, theirs in zip(params, restored_params, strict=True):
        assert mine.tobytes() == theirs.tobytes()
    assert _snapshot(opt, params)[1:] == _snapshot(restored, restored_params)[1:]


def test_the_file_is_a_plain_npz_numpy_reads_without_pickle(tmp_path):
    w = np.ones(3)
    opt = optim.Adam([w])
    opt.step([np.ones(3)])
    optim.save(tmp_path / "opt.npz", opt)
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as data:
        meta = json.loads(data["meta"].tobytes())
        assert meta["format"] == "descentlab.optim checkpoint" and meta["version"] == 1
        np.testing.assert_array_equal(data["state/0/exp_avg"], opt.state[0]["exp_avg"])


def test_named_checkpoints_load_by_name_in_any_order(tmp_path):
    w, b = np.ones((2, 3)), np.zeros(3)
    opt = optim.Adam([("fc.weight", w), ("fc.bias", b)], lr=0.1)
    opt.step([np.full((2, 3), 2.0), np.full(3, 3.0)])
    optim.save(tmp_path / "opt.npz", opt)
    other = optim.Adam([("fc.bias", np.zeros(3)), ("fc.weight", np.ones((2, 3)))], lr=0.1)
    # one group of two: the group's parameters are the same set but in another order
    with pytest.raises(ValueError, match="group 0 holds other parameters"):
        optim.load(tmp_path / "opt.npz", other)
    assert other.state == {}
    result = optim.load(tmp_path / "opt.npz", other, strict=False)
    assert result == ([], [])
    np.testing.assert_array_equal(other.state[0]["exp_avg"], opt.state[1]["exp_avg"])
    np.testing.assert_array_equal(other.state[1]["exp_avg"], opt.state[0]["exp_avg"])
    # names given at save time to an optimizer that has none
    plain = optim.Adam([np.ones((2, 3)), np.zeros(3)], lr=0.1)
    plain.step([np.ones((2, 3)), np.ones(3)])
    optim.save(tmp_path / "plain.npz", plain, names=["a", "b"])
    again = optim.Adam([np.ones((2, 3)), np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="keys its parameters by name; give names"):
        optim.load(tmp_path / "plain.npz", again)
    optim.load(tmp_path / "plain.npz", again, names=["a", "b"])
    assert again.state[1]["step"] == 1
    # a file keyed by position loads by position into an optimizer that has names
    optim.save(tmp_path / "positions.npz", plain)
    named = optim.Adam([("x", np.ones((2, 3))), ("y", np.zeros(3))], lr=0.1)
    optim.load(tmp_path / "positions.npz", named)
    np.testing.assert_array_equal(named.state[0]["exp_avg"], plain.state[0]["exp_avg"])


def test_partial_loading_reports_what_did_not_match(tmp_path):
    opt = optim.Adam([("encoder.w", np.ones(3)), ("head.w", np.ones(2))], lr=0.1)
    opt.step([np.ones(3), np.ones(2)])
    optim.save(tmp_path / "opt.npz", opt)
    new = optim.Adam([("encoder.w", np.ones(3)), ("new_head.w", np.ones(4))], lr=0.1)
    new.step([np.ones(3), np.full(4, 5.0)])
    head_state = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                  for k, v in new.state[1].items()}
    with pytest.raises(ValueError, match=r"missing 'new_head.w'; unexpected 'head.w'"):
        optim.load(tmp_path / "opt.npz", new)
    result = optim.load(tmp_path / "opt.npz", new, strict=False)
    assert result == optim.LoadResult(missing=["new_head.w"], unexpected=["head.w"])
    np.testing.assert_array_equal(new.state[0]["exp_avg"], opt.state[0]["exp_avg"])
    np.testing.assert_array_equal(new.state[1]["exp_avg"], head_state["exp_avg"])


@pytest.mark.parametrize("make_other, match", [
    (lambda: optim.SGD([np.ones((2, 3)), np.ones(3)], lr=0.1), "holds the state of Adam"),
    (lambda: optim.Adam([np.ones((3, 2)), np.ones(3)]), r"parameter 0 has shape \(2, 3\)"),
    (lambda: optim.Adam([np.ones((2, 3), np.float32), np.ones(3)]), "dtype float64 there"),
    (lambda: optim.Adam([np.ones((2, 3))]), "missing|unexpected"),
    (lambda: optim.Adam([{"params": [np.ones((2, 3))]}, {"params": [np.ones(3)]}]),
     "1 parameter groups"),
])
def test_mismatched_checkpoints_are_refused_and_change_nothing(tmp_path, make_other, match):
    opt = optim.Adam([np.ones((2, 3)), np.ones(3)], lr=0.1)
    opt.step([np.ones((2, 3)), np.ones(3)])
    optim.save(tmp_path / "opt.npz", opt)
    other = make_other()
    params = [p for g in other.param_groups for p in g["params"]]
    other.step([np.ones_like(p) for p in params])
    before = _snapshot(other, params)
    with pytest.raises(ValueError, match=match):
        optim.load(tmp_path / "opt.npz", other)
    assert _snapshot(other, params) == before


# -- hostile files ---------------------------------------------------------------------------


class _Payload:
    """Unpickling this creates ``marker``: proof that the file's code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _saved(tmp_path):
    opt = optim.Adam([np.ones((2, 3)), np.ones(3)], lr=0.1)
    opt.step([np.ones((2, 3)), np.ones(3)])
    return optim.save(tmp_path / "good.npz", opt), opt


def _members(path):
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def _rezip(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _npy(array, header_shape=None, **kwargs):
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    data = buffer.getvalue()
    if header_shape is not None:
        data = data.replace(repr(array.shape).encode(), repr(header_shape).encode(), 1)
    return data


def _meta(path, **changes):
    members = _members(path)
    meta = json.loads(np.load(io.BytesIO(members["meta.npy"])).tobytes())
    meta.update(changes)
    members["meta.npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    return members


HOSTILE = {
    "a pickle file": (lambda tmp, good, marker: tmp.joinpath("x.npz").write_bytes(
        pickle.dumps(_Payload(marker))), "not an .npz archive"),
    "a pickled object array as state": (lambda tmp, good, marker: _rezip(
        tmp / "x.npz", {**_members(good), "state/0/exp_avg.npy": _npy(
            np.array([_Payload(marker)] * 6, dtype=object).reshape(2, 3),
            allow_pickle=True)}), "holds Python objects"),
    "a pickled object array as metadata": (lambda tmp, good, marker: _rezip(
        tmp / "x.npz", {**_members(good), "meta.npy": _npy(
            np.array([_Payload(marker)], dtype=object), allow_pickle=True)}),
        "holds Python objects"),
    "an absurd shape": (lambda tmp, good, marker: _rezip(
        tmp / "x.npz", {**_members(good), "state/0/exp_avg.npy": _npy(
            np.zeros((2, 3)), header_shape=(10**6, 10**7))}), r"shape \(1000000, 10000000\)"),
    "a header that lies about the size": (lambda tmp, good, marker: _rezip(
        tmp / "x.npz", {**_members(good), "state/1/exp_avg.npy": _npy(np.zeros(3))[:-8]}),
        "holds 16 bytes, not 24"),
    "a newer format version": (lambda tmp, good, marker: _rezip(
        tmp / "x.npz", _meta(good, version=2)), "format version 2; this descentlab reads"),
    "another format": (lambda tmp, good, marker: _rezip(
        tmp / "x.npz", _meta(good, format="something else")), "not a descentlab checkpoint"),
    "malformed metadata": (lambda tmp, good, marker: _rezip(
        tmp / "x.npz", _meta(good, params=[{"key": 0, "shape": [-1], "dtype": "float64",
                                            "scalars": {}, "has_state": True}])),
        "malformed"),
    "no metadata": (lambda tmp, good, marker: _rezip(
        tmp / "x.npz", {k: v for k, v in _members(good).items() if k != "meta.npy"}),
        r"no meta\.npy"),
    "an empty file": (lambda tmp, good, marker: tmp.joinpath("x.npz").write_bytes(b""),
                      "not an .npz archive"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_files_are_refused_and_nothing_in_them_runs(tmp_path, case):
    good, _ = _saved(tmp_path)
    marker = tmp_path / "pwned"
    make, match = HOSTILE[case]
    make(tmp_path, good, marker)
    assert not marker.exists()
    victim = optim.Adam([np.ones((2, 3)), np.ones(3)], lr=0.1)
    params = [p for g in victim.param_groups for p in g["params"]]
    before = _snapshot(victim, params)
    with pytest.raises(ValueError, match=match):
        optim.load(tmp_path / "x.npz", victim)
    assert not marker.exists()
    assert _snapshot(victim, params) == before


def test_truncated_files_are_refused_at_every_length(tmp_path):
    good, _ = _saved(tmp_path)
    data = good.read_bytes()
    victim = optim.Adam([np.ones((2, 3)), np.ones(3)], lr=0.1)
    for length in range(0, len(data), max(1, len(data) // 60)):
        (tmp_path / "cut.npz").write_bytes(data[:length])
        with pytest.raises(ValueError):
            optim.load(tmp_path / "cut.npz", victim)
        assert victim.state == {}


def test_save_refuses_bad_names(tmp_path):
    opt = optim.SGD([np.ones(2), np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="2 strings"):
        optim.save(tmp_path / "x.npz", opt, names=["a"])
    with pytest.raises(ValueError, match="distinct"):
        optim.save(tmp_path / "x.npz", opt, names=["a", "a"])
    assert not any(tmp_path.iterdir())


# -- a crash mid-write -----------------------------------------------------------------------

_WRITER = textwrap.dedent("""
    import io, sys, time
    import numpy as np
    import descentlab.optim as optim
    from descentlab.optim import checkpoint

    path = sys.argv[1]
    params = [np.zeros(1_000_000), np.zeros(3)]
    opt = optim.Adam(params, lr=0.1)
    opt.step([np.ones(1_000_000), np.ones(3)])
    optim.save(path, opt)                       # the checkpoint that must survive
    real = np.savez

    def half_then_hang(f, **arrays):            # the next save is killed half-way
        buffer = io.BytesIO()
        real(buffer, **arrays)
        data = buffer.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        print("midway", flush=True)
        time.sleep(600)

    checkpoint.np.savez = half_then_hang
    opt.step([np.full(1_000_000, 7.0), np.ones(3)])
    optim.save(path, opt)
""")


def test_a_kill_mid_write_leaves_the_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "opt.npz"
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "midway"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=60)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "opt.npz"]
    assert leftovers, "the second write should have been cut off mid-way"
    params = [np.zeros(1_000_000), np.zeros(3)]
    opt = optim.Adam(params, lr=0.1)
    optim.load(path, opt)
    assert opt.state[0]["step"] == 1
    np.testing.assert_allclose(opt.state[0]["exp_avg"], 0.1)  # (1 − β₁) · 1, the first step
