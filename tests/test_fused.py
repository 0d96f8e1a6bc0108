"""The fused executor against the array-wise reference, and the properties it promises.

The array-wise executor is checked against torch.optim (test_against_torch.py); here the fused
one must give the same numbers over the whole configuration table, whatever the layout of the
arrays and the number of threads, without allocating memory in proportion to the parameters.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import tracemalloc

import numba
import numpy as np
import pytest
from conftest import max_relative_difference, outputs_of_two_processes
from optim_cases import CASES
from trajectories import descentlab_trajectory

import descentlab.optim as optim
from descentlab.optim.executors import fused, kernels, ndarray_fields

TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-6}
DTYPES = list(TOLERANCE)


def _case_ids(cases):
    return [c.name for c in cases]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("case", CASES, ids=_case_ids(CASES))
def test_fused_equals_arraywise_over_the_table(case, dtype):
    """Every configuration, with None gradients, a 0-d and a size-0 parameter (the table's)."""
    ours = descentlab_trajectory(case, dtype, executor="fused")
    ref = descentlab_trajectory(case, dtype, executor="arraywise")
    assert ours.keys() == ref.keys()
    for key, expected in ref.items():
        if key.endswith("/step"):
            np.testing.assert_array_equal(ours[key], expected, err_msg=key)
            continue
        err = max_relative_difference(ours[key], expected)
        assert err <= TOLERANCE[dtype], f"{case.name} {key}: {err:.3g}"


def _run(cls, params, grads_seq, executor, **kwargs):
    params = [p.copy(order="K") for p in params]  # keeps Fortran order
    opt = cls(params, executor=executor, **kwargs)
    for grads in grads_seq:
        opt.step(grads)
    return params, opt


def _grads(rng, params, steps=4):
    return [[rng.standard_normal(p.shape).astype(p.dtype) for p in params] for _ in range(steps)]


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_many_arrays_of_mixed_sizes_and_dtypes_in_one_group(name):
    """One group mixing float32 and float64 arrays of sizes around the block boundary."""
    rng = np.random.default_rng(1)
    sizes = [1, 7, fused.BLOCK - 1, fused.BLOCK, fused.BLOCK + 1, 3 * fused.BLOCK + 5, 0, 100]
    params = [rng.standard_normal(n).astype(np.float32 if i % 2 else np.float64)
              for i, n in enumerate(sizes)]
    grads = _grads(rng, params)
    ours, opt = _run(optim.OPTIMIZERS[name], params, grads, "fused")
    ref, _ = _run(optim.OPTIMIZERS[name], params, grads, "arraywise")
    (plan,) = opt.executor._plans.values()  # one batch, both dtypes fused, none left over
    assert sorted(part.dtype.name for part in plan.parts) == ["float32", "float64"]
    assert plan.slow == []
    for a, b in zip(ours, ref, strict=True):
        assert max_relative_difference(a, b) <= TOLERANCE[a.dtype], name


def test_groups_whose_constant_flags_differ_get_their_own_kernels():
    """Adam's ε placement is compiled into the kernel (``Rule.constant_flags``): two groups with
    different placements, stepped together, must each get the kernel of their own."""
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(n) for n in (1000, 3000)]
    grads = _grads(rng, params)
    results = {}
    for executor in ("fused", "arraywise"):
        mine = [p.copy() for p in params]
        opt = optim.Adam([{"params": [mine[0]], "eps_placement": "inside", "eps": 1e-3},
                          {"params": [mine[1]], "eps_placement": "outside", "eps": 1e-3}],
                         executor=executor)
        for step in grads:
            opt.step(step)
        results[executor] = mine
    for a, b in zip(results["fused"], results["arraywise"], strict=True):
        assert max_relative_difference(a, b) <= 1e-12


def test_constants_replace_the_value_they_are_given():
    """``with_constants`` sets each field its codes name to the constant of its code (two bits
    a field: 1 False or 0.0, 2 True or 1.0, 3 -0.0), whatever the record held, and leaves the
    other fields alone."""
    from collections import namedtuple

    Record = namedtuple("Record", "x flag y other")

    @numba.njit
    def fixed(h):
        return (kernels.with_constants(h, 1 << 2),  # flag False
                kernels.with_constants(h, 2 << 2 | 2 << 6),  # flag and other True
                kernels.with_constants(h, 2 | 3 << 4),  # x 1.0, y -0.0
                kernels.with_constants(h, 1 << 4),  # y 0.0
                kernels.with_constants(h, 0))

    record = Record(1.5, True, 2.5, False)
    found = fixed(record)
    assert found == (Record(1.5, False, 2.5, False), Record(1.5, True, 2.5, True),
                     Record(1.0, True, 0.0, False), Record(1.5, True, 0.0, False), record)
    assert math.copysign(1.0, found[2].y) == -1.0  # -0.0, not 0.0
    assert math.copysign(1.0, found[3].y) == 1.0


def test_a_constant_flag_must_be_a_bool():
    """Checked where a bit pattern of the flags and neutral fields is first seen (``constants``
    keeps its answers by pattern, and 1 packs as True does): a copy of the rule has none."""
    rule = dataclasses.replace(optim.Adam([np.ones(2)]).rule)
    h = rule.coefficients(optim.Adam([np.ones(2)]).param_groups[0], {"step": 0})
    assert kernels.constants(rule, h) != 0
    with pytest.raises(TypeError, match="constant flag divide_first=1 is not a bool"):
        kernels.constants(rule, h._replace(divide_first=1))
    with pytest.raises(TypeError, match="constant flag amsgrad='no' is not a bool"):
        kernels.constants(rule, h._replace(amsgrad="no"))


def test_constants_are_kept_by_bit_pattern_and_the_store_stays_bounded():
    """A decay factor that an lr schedule moves at every step gives a new pattern each time:
    the answers stay right (0.0 and -0.0 told apart) and the store does not grow past its
    bound."""
    rule = dataclasses.replace(optim.RMSprop([np.ones(2)]).rule)
    h = rule.coefficients(optim.RMSprop([np.ones(2)]).param_groups[0], {"step": 0})
    neutral = kernels.constants(rule, h)
    assert _code(h, neutral, "eps_root") == 3
    assert _code(h, kernels.constants(rule, h._replace(eps_root=0.0)), "eps_root") == 0
    assert kernels.constants(rule, h._replace(eps_root=-0.0)) == neutral
    for step in range(3 * kernels._KEPT_CODES):
        codes = kernels.constants(rule, h._replace(decay=1.0 - 1e-6 * (step + 1)))
        assert _code(h, codes, "decay") == 0 and _code(h, codes, "eps_root") == 3
    assert len(kernels._layout(rule, type(h)).codes) <= kernels._KEPT_CODES
    assert kernels.constants(rule, h) == neutral


def _code(h, codes: int, name: str) -> int:
    """The two-bit code ``codes`` holds for ``h``'s field ``name``."""
    return codes >> 2 * h._fields.index(name) & 3


def test_neutral_fields_are_constants_only_at_their_exact_value():
    """RMSprop's defaults hold every neutral value (no decay, no ε in the root, lr outside the
    buffer, no momentum): each is compiled as its constant; a field that moves off it, or
    holds 0.0 where -0.0 is neutral, is read at run time again."""
    opt = optim.RMSprop([np.ones(2)])
    rule, group = opt.rule, opt.param_groups[0]
    h = rule.coefficients(group, {"step": 0})
    codes = kernels.constants(rule, h)
    assert {name: _code(h, codes, name) for name in rule.neutral} == {
        "decay": 2, "weight_decay": 1, "eps_root": 3, "grad_scale": 2, "momentum": 1}
    assert _code(h, codes, "centered") == 1
    # not a constant: compiled in, it gained nothing measurable and doubled the kernels
    assert _code(h, codes, "maximize") == 0
    assert _code(h, codes, "alpha") == 0  # not declared: always read at run time
    moved = kernels.constants(rule, h._replace(decay=0.999, eps_root=0.0, momentum=0.9))
    assert [_code(h, moved, name) for name in ("decay", "eps_root", "momentum")] == [0, 0, 0]
    assert _code(h, moved, "grad_scale") == 2


def test_every_rule_compiles_its_defaults_as_constants():
    """Each rule's neutral declarations name fields of its coefficients, and its default group
    without weight decay (AdamW's default has some) holds the values: a misspelt name or a
    default moved off its neutral value fails here (the kernel would quietly read the field at
    run time)."""
    for name, cls in optim.OPTIMIZERS.items():
        opt = cls([np.ones(2)], weight_decay=0.0)
        rule = opt.rule
        h = rule.coefficients(opt.param_groups[0], {k: v for k, v in rule.scalars.items()})
        codes = kernels.constants(rule, h)
        for field in rule.neutral:
            assert _code(h, codes, field) != 0, (name, field)


def test_a_neutral_value_must_be_zero_or_one():
    rule = optim.RMSprop([np.ones(2)]).rule
    with pytest.raises(ValueError, match="neutral value decay=0.5 is not 0.0, -0.0 or 1.0"):
        dataclasses.replace(rule, neutral={"decay": 0.5})


def test_neutral_values_and_others_give_the_reference_s_numbers():
    """Kernels with the decay, L2, momentum and flag terms compiled away, and kernels reading
    them, match the array-wise reference bit for bit (it computes every term, as written)."""
    rng = np.random.default_rng(5)
    start = rng.standard_normal(3000).astype(np.float32)
    grads = rng.standard_normal((5, 3000)).astype(np.float32)
    for options in ({}, {"weight_decay": 0.1},
                    {"weight_decay": 0.1, "decoupled_weight_decay": True},
                    {"maximize": True, "centered": True, "momentum": 0.9},
                    {"momentum": 0.9, "lr_in_momentum": True}):
        results = {}
        for executor in ("fused", "arraywise"):
            p = start.copy()
            opt = optim.RMSprop([p], executor=executor, **options)
            for g in grads:
                opt.step([g])
            results[executor] = p
        assert np.array_equal(results["fused"], results["arraywise"]), options


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_non_contiguous_arrays_are_handled(name):
    """Strided and transposed parameters and gradients give the reference's numbers."""
    rng = np.random.default_rng(2)
    # a parameter that is not C-contiguous (Fortran order), then ordinary ones
    params = [np.asfortranarray(rng.standard_normal((6, 4))), rng.standard_normal((5, 4)),
              rng.standard_normal(9)]
    grads = []
    for _ in range(4):
        g0 = rng.standard_normal(params[0].shape)
        g1 = rng.standard_normal((4, 5)).T  # a transposed gradient
        g2 = rng.standard_normal(18)[::2]  # a strided gradient
        grads.append([g0, g1, g2])
    kwargs = {"momentum": 0.9} if name == "SGD" else {}
    ours, opt = _run(optim.OPTIMIZERS[name], params, grads, "fused", **kwargs)
    ref, _ = _run(optim.OPTIMIZERS[name], params, grads, "arraywise", **kwargs)
    (plan,) = opt.executor._plans.values()
    assert plan.slow == [0] and plan.parts[0].members.tolist() == [1, 2]
    assert not params[0].flags.c_contiguous
    assert not (grads[0][1].flags.c_contiguous or grads[0][2].flags.c_contiguous)
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", ["Adam", "Adadelta", "Lion"])
def test_results_do_not_depend_on_the_number_of_threads(name):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.fail("Numba sees one thread; this test needs two (set NUMBA_NUM_THREADS=2)")
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(n).astype(np.float32) for n in (5 * fused.BLOCK + 3, 17, 4096)]
    grads = _grads(rng, params, steps=3)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            results.append(_run(optim.OPTIMIZERS[name], params, grads, "fused")[0])
    finally:
        numba.set_num_threads(before)
    for one, two in zip(*results, strict=True):
        assert one.tobytes() == two.tobytes()


def test_a_step_allocates_almost_nothing():
    """Peak extra memory of a step: at most 1 % of the parameters' size (tracemalloc)."""
    rng = np.random.default_rng(4)
    params = [rng.standard_normal(n).astype(np.float32) for n in (1 << 20, 1000, 1 << 18)]
    grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
    opt = optim.Adam(params, amsgrad=True)
    opt.step(grads)  # creates the state (that is state, not step overhead) and compiles
    opt.step(grads)
    size = sum(p.nbytes for p in params)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        opt.step(grads)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - start <= 0.01 * size, f"{peak - start} bytes for {size} bytes of parameters"


def test_the_arraywise_reference_does_allocate():
    """The measurement above can fail: the array-wise reference allocates temporaries."""
    p = np.zeros(1 << 18, np.float32)
    opt = optim.Adam([p], executor="arraywise")
    opt.step([np.ones_like(p)])
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        opt.step([np.ones_like(p)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - start > 0.01 * p.nbytes


def test_replaced_arrays_are_noticed():
    """A plan remembers arrays; replacing a state array or a parameter makes a new one."""
    p = np.ones(10)
    opt = optim.SGD([p], lr=0.5, momentum=0.9)
    opt.step([np.ones(10)])
    fresh = np.zeros(10)
    opt.state[0]["momentum_buffer"] = fresh
    opt.step([np.ones(10)])
    np.testing.assert_array_equal(fresh, np.ones(10))  # b = 0.9 * 0 + 1
    q = np.ones(10)
    opt.param_groups[0]["params"][0] = q
    opt.step([np.ones(10)])
    assert q[0] != 1.0 and p[0] == 0.0  # p got the two steps before it was replaced


def test_run_again_given_addresses_steps_as_run_given_the_gradients():
    """``Fused.run_again`` with the gradients' data addresses as ints (descentlab.torch's
    planned step) steps every part as ``run`` does with the gradient arrays, bit for bit: here
    a batch of two dtypes, so that neither part holds the whole batch, and one array cut into
    several blocks."""
    rng = np.random.default_rng(7)
    opt = optim.RMSprop([np.ones(2)])
    rule = opt.rule
    h = rule.coefficients(opt.param_groups[0], {"step": 0})
    dtypes = (np.float32, np.float64, np.float32)
    start = [rng.standard_normal(n).astype(d) for n, d in zip((300, 3 * fused.BLOCK + 5, 7),
                                                               dtypes, strict=True)]
    grads = [[rng.standard_normal(p.shape).astype(p.dtype) for p in start] for _ in range(3)]
    results = []
    for again in (False, True):
        executor = fused.Fused()
        params = [p.copy() for p in start]
        columns = [[np.zeros_like(p) for p in params] if name in rule.active_arrays(
            opt.param_groups[0]) else None for name in rule.arrays]
        executor.run(rule, h, "batch", params, grads[0], columns)
        assert len(executor._plans["batch"].parts) == 2
        for step in grads[1:]:
            if again:
                executor.run_again(rule, h, "batch", [g.ctypes.data for g in step])
            else:
                executor.run(rule, h, "batch", params, step, columns)
        results.append(params + columns[0])
    for ran, ran_again, first in zip(*results, start + start, strict=True):
        np.testing.assert_array_equal(ran_again, ran)
        assert not np.array_equal(ran, first)


@pytest.mark.parametrize("copy_of", ["deepcopy", "pickle"])
def test_a_copied_optimizer_steps_its_own_arrays_as_the_original_steps_its(copy_of):
    """A deep copy or an unpickled copy of an optimizer that has stepped (its executor's plans
    and their pointer tables copied with it) steps its own arrays, exactly as the original
    steps its, and never writes into the original's."""
    import copy
    import pickle

    rng = np.random.default_rng(3)
    params = [rng.standard_normal(n).astype(d) for n, d in ((50, np.float32), (30, np.float64))]
    grads = _grads(rng, params)
    opt = optim.Adam(params, lr=0.1)
    opt.step(grads[0])
    twin = copy.deepcopy(opt) if copy_of == "deepcopy" else pickle.loads(pickle.dumps(opt))
    before = [p.copy() for p in params]
    for step in grads[1:]:
        twin.step(step)
    for p, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(p, b)
    for step in grads[1:]:
        opt.step(step)
    for mine, theirs, b in zip(params, twin.param_groups[0]["params"], before, strict=True):
        np.testing.assert_array_equal(theirs, mine)
        assert not np.array_equal(mine, b)


def test_load_state_dict_then_step_uses_the_loaded_arrays():
    p = np.ones(4, np.float32)
    opt = optim.Adam([p])
    opt.step([np.ones(4, np.float32)])
    saved = opt.state_dict()
    opt.step([np.ones(4, np.float32)])
    opt.load_state_dict(saved)
    after_load = p.copy()
    opt.step([np.ones(4, np.float32)])
    ref_p = after_load.copy()
    ref = optim.Adam([ref_p], executor="arraywise")
    ref.load_state_dict(saved)
    ref.step([np.ones(4, np.float32)])
    np.testing.assert_array_equal(p, ref_p)


def test_unknown_executor_is_refused():
    with pytest.raises(ValueError, match="unknown executor 'gpu'.*fused, arraywise"):
        optim.Adam([np.ones(2)], executor="gpu")


def test_struct_fields_are_numpys():
    """The fields read from NumPy's array struct are the ones NumPy reports."""
    arrays = [np.zeros(3), np.zeros((4, 5))[1:], np.zeros(0, np.float32), np.zeros(()),
              np.zeros((4, 5))[:, ::2], np.zeros((3, 2)).T]
    assert ndarray_fields.OFFSETS is not None  # the fast path is the one in use here
    addresses, contiguous = ndarray_fields.data_addresses(arrays)
    assert addresses.tolist() == [a.ctypes.data for a in arrays]
    assert contiguous.tolist() == [a.flags.c_contiguous for a in arrays]


def test_object_ids_read_from_the_list_are_ids():
    items = [np.zeros(2), None, 1.5, "text", np.zeros(())]
    assert ndarray_fields.LIST_ITEMS is not None
    assert ndarray_fields.object_ids(items).tolist() == list(map(id, items))
    assert ndarray_fields.object_ids(tuple(items)).tolist() == list(map(id, items))
    assert ndarray_fields.object_ids([]).tolist() == []


def test_the_fallbacks_step_like_the_struct_reads(monkeypatch):
    """Where the struct offsets cannot be found, NumPy's own attributes give the same step."""
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(s) for s in ((3, 4), (5,), ())]
    grads = [rng.standard_normal(p.shape) for p in params]
    grads[0] = np.asfortranarray(grads[0])  # one non-contiguous gradient
    fast = [p.copy() for p in params]
    optim.Adam(fast).step(grads)
    monkeypatch.setattr(ndarray_fields, "OFFSETS", None)
    monkeypatch.setattr(ndarray_fields, "LIST_ITEMS", None)
    slow = [p.copy() for p in params]
    optim.Adam(slow).step(grads)
    for a, b in zip(fast, slow, strict=True):
        assert a.tobytes() == b.tobytes()
    assert not np.array_equal(fast[1], params[1])  # it did step


class _Sub(np.ndarray):
    pass


@pytest.mark.parametrize("fast", [True, False], ids=["struct", "fallback"])
def test_gradients_agree_only_in_the_plain_case(fast, monkeypatch):
    if not fast:
        monkeypatch.setattr(ndarray_fields, "OFFSETS", None)
    params = [np.zeros(3), np.zeros((2, 5), np.float32), np.zeros(())]

    def grads(**replace):
        plain = [np.ones(3), np.ones((2, 5), np.float32), np.ones(())]
        for index, g in replace.items():
            plain[int(index[1:])] = g
        return plain

    agree = ndarray_fields.gradients_agree
    assert agree(params, grads())
    assert agree(params, grads(_2=np.array(1.0)))
    for bad in (
        grads(_0=None),
        grads(_0=1.0),
        grads(_0=[1.0, 1.0, 1.0]),
        grads(_0=np.ones(4)),
        grads(_0=np.ones((3, 1))),
        grads(_0=np.ones(3, np.float32)),
        grads(_0=np.ones(3).view(_Sub)),
        grads(_1=np.ones((5, 2), np.float32).T),  # right shape, not contiguous
        grads(_1=np.ones((2, 5), np.float64)),
        grads(_2=np.ones(1)),
        grads(_2=np.float64(1.0)),  # a NumPy scalar is not an ndarray
    ):
        assert not agree(params, bad)
    assert not agree([*params[:2], 0.5], grads())  # a parameter replaced by something else
    assert not agree(params, grads(_0=params[0]))  # the parameter itself
    buffer = np.zeros(6)
    assert agree([buffer[:3], *params[1:]], grads(_0=buffer[3:]))  # its neighbour is fine
    assert not agree([buffer[:3], *params[1:]], grads(_0=buffer[2:5]))  # an overlapping view
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    assert not agree([frozen, *params[1:]], grads())
    assert not agree(params[:2], grads())


@pytest.mark.parametrize("fast", [True, False], ids=["struct", "fallback"])
def test_float_layout_reads_what_numpy_reports(fast, monkeypatch):
    if not fast:
        monkeypatch.setattr(ndarray_fields, "OFFSETS", None)
    arrays = [np.zeros((3, 4), np.float32), np.zeros(()), np.zeros(0), np.zeros((4, 4))[:, ::2],
              np.zeros(2, np.int64), None, np.zeros(3).view(_Sub), np.zeros((2, 2, 2))]
    addresses, sizes, kinds = ndarray_fields.float_layout(arrays)
    F32, F64, OTHER = ndarray_fields.FLOAT32, ndarray_fields.FLOAT64, ndarray_fields.OTHER
    assert kinds.tolist() == [F32, F64, F64, OTHER, OTHER, OTHER, OTHER, F64]
    assert sizes.tolist() == [12, 1, 0, 0, 0, 0, 0, 8]
    for i in (0, 1, 7):
        assert addresses[i] == arrays[i].ctypes.data


def test_a_second_process_loads_kernels_from_the_cache(tmp_path):
    """Numba's on-disk cache: the second process compiles nothing, neither the rule's job nor
    the function that runs jobs on Numba's pool."""
    script = (
        "import numpy as np, descentlab.optim as o\n"
        "from descentlab.optim.executors import launches, shares\n"
        "p = np.ones(3, np.float32); o.Adamax([p]).step([np.ones(3, np.float32)])\n"
        "(member,) = shares._MEMBERS.values()\n"
        "pool = launches._on_pool.stats\n"
        "print(member.function.cache_hits, sum(pool.cache_hits.values()),\n"
        "      sum(pool.cache_misses.values()))\n"
    )
    runs = outputs_of_two_processes(script, tmp_path)
    assert runs[0] == ["0", "0", "1"], runs  # compiled and stored
    assert runs[1] == ["1", "1", "0"], runs  # loaded


def test_a_state_array_of_the_wrong_shape_is_never_written_through():
    """The kernel writes through raw addresses: a replaced state array that is too small must
    go to the array-wise path (which refuses it) instead of being overrun."""
    p = np.ones(1000)
    opt = optim.Adam([p])
    opt.step([np.ones(1000)])
    small = np.zeros(3)
    opt.state[0]["exp_avg"] = small
    with pytest.raises(ValueError):
        opt.step([np.ones(1000)])
    np.testing.assert_array_equal(small, np.zeros(3))


def _step_in_child(queue):
    p = np.ones(1000, np.float32)
    optim.Adam([p]).step([np.ones_like(p)])
    queue.put(float(p[0]))


def test_a_forked_process_can_step_after_the_parent_did():
    """Process pools fork: the threading layer Numba uses here must survive it (GNU OpenMP
    does not; TBB, a dependency, does)."""
    p = np.ones(1000, np.float32)
    optim.Adam([p]).step([np.ones_like(p)])  # the parent has run a parallel kernel
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_step_in_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0, f"the forked child ended with {child.exitcode}"
    assert queue.get(timeout=5) == pytest.approx(1 - 1e-3)
