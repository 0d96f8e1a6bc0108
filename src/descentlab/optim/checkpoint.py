"""Optimizer checkpoints: ``save(path, optimizer)`` and ``load(path, optimizer)``.

The file is an ``.npz`` archive (a ZIP of ``.npy`` arrays) that NumPy itself reads with
``np.load(path, allow_pickle=False)``; nothing in it is ever unpickled or executed:

- ``meta.npy``: a uint8 array holding UTF-8 JSON: the format name and version, the optimizer's
  class, each parameter's key (its name, or its position when no names were given), shape and
  dtype, each parameter's scalar state (``step`` ...), the groups' hyperparameters and
  ``skipped_steps``;
- ``state/<i>/<name>.npy``: state array ``name`` of the i-th parameter listed in the metadata.

Writing goes through ``descentlab.atomic``: a crash or a kill mid-write leaves the previous
checkpoint intact. Reading trusts nothing in the file: every member's ``.npy`` header is read
and checked against the parameter it belongs to (shape, dtype, byte count) *before* its data
are read, so an absurd shape cannot make us allocate, and the optimizer is changed only after
everything has been read and checked (through ``Optimizer.load_state_dict``, which checks
again).
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from ..atomic import write_atomically
from .optimizer import Optimizer

FORMAT = "descentlab.optim checkpoint"
VERSION = 1
_META = "meta.npy"
_MAX_META_BYTES = 64 << 20  # JSON for millions of parameters fits; a hostile giant does not


class LoadResult(NamedTuple):
    """What a partial load (``strict=False``) matched: the keys of the optimizer's parameters
    the file had no state for, and the keys in the file that name no parameter here."""

    missing: list[str]
    unexpected: list[str]


def save(path: str | Path, optimizer: Optimizer, names: Sequence[str] | None = None) -> Path:
    """Write ``optimizer``'s state to ``path`` (an ``.npz`` file), atomically.

    Args:
        names: one name per parameter, in group order, to key the file by (so that it loads
            into an optimizer whose parameters come in another order or are partly
            different). Default: the names the optimizer was given, if any; otherwise
            parameters are keyed by position.
    """
    keys, named = _keys(optimizer, names)
    state = optimizer.state_dict()
    arrays: dict[str, np.ndarray] = {}
    entries = []
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for i, (key, p) in enumerate(zip(keys, params, strict=True)):
        saved = state["state"].get(i, {})
        scalars = {}
        for name, value in saved.items():
            if isinstance(value, np.ndarray):
                arrays[f"state/{i}/{name}"] = np.array(value, order="C")  # keeps 0-d
            else:
                scalars[name] = _plain(value, f"state {name!r} of {key}")
        entries.append({"key": key, "shape": list(p.shape), "dtype": p.dtype.name,
                        "has_state": i in state["state"], "scalars": scalars})
    groups = []
    for number, group in enumerate(state["param_groups"]):
        hyper = {k: _plain(v, f"hyperparameter {k!r} of group {number}")
                 for k, v in group.items() if k not in ("params", "param_names")}
        groups.append({"params": [keys[i] for i in group["params"]], "hyperparameters": hyper})
    meta = {"format": FORMAT, "version": VERSION, "optimizer": type(optimizer).__name__,
            "keys": "names" if named else "positions", "params": entries,
            "param_groups": groups, "skipped_steps": state["skipped_steps"]}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)

    def write(f: BinaryIO) -> None:
        np.savez(f, **arrays)

    return write_atomically(path, write)


def load(path: str | Path, optimizer: Optimizer, strict: bool = True,
         names: Sequence[str] | None = None) -> LoadResult:
    """Restore the state saved in ``path`` into ``optimizer``.

    Parameters are matched by key: by name when the file was saved with names (``names``
    here, or the names the optimizer was given), by position otherwise. With ``strict`` (the
    default) the file must hold exactly the optimizer's parameters, in the same groups, with
    the same shapes and dtypes, and the groups' hyperparameters are restored too. With
    ``strict=False`` the parameters both sides know are restored, the others keep their
    state; a group's hyperparameters are restored when the group holds the same parameters.

    Raises ValueError, naming the problem, for a file that is not such a checkpoint, a
    damaged or truncated file, another optimizer's checkpoint, a version this descentlab does
    not read, or a parameter whose shape or dtype differs. The optimizer is unchanged then.
    """
    path = Path(path)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"{path} is not a descentlab checkpoint (not an .npz archive; "
                         "pickle files are never read)") from None
    with archive:
        try:
            meta = _read_meta(archive, path)
            named = meta["keys"] == "names"
            if named:
                keys, named = _keys(optimizer, names)
                if not named:
                    raise ValueError(f"{path} keys its parameters by name; give names (the "
                                     "optimizer's own, or names=...) to load it")
            else:  # a file keyed by position loads by position, names or not
                keys = list(range(len(params)))
            saved = _check_meta(meta, optimizer, path)
            position = {key: i for i, key in enumerate(keys)}
            missing = [key for key in keys if key not in saved]
            unexpected = [key for key in saved if key not in position]
            if strict and (missing or unexpected):
                raise ValueError(f"{path} does not hold this optimizer's parameters: "
                                 f"{_listing('missing', missing)}"
                                 f"{'; ' if missing and unexpected else ''}"
                                 f"{_listing('unexpected', unexpected)} (strict=False loads "
                                 "the ones both have)")
            current = optimizer.state_dict()
            for key, (number, entry) in saved.items():
                if key not in position:
                    continue
                i = position[key]
                p = params[i]
                where = f"parameter {key!r}" if named else f"parameter {key}"
                if entry["shape"] != list(p.shape) or entry["dtype"] != p.dtype.name:
                    raise ValueError(
                        f"{path}: {where} has shape {tuple(entry['shape'])} and dtype "
                        f"{entry['dtype']} there, {p.shape} and {p.dtype} here")
                current["state"].pop(i, None)
                if entry["has_state"]:
                    current["state"][i] = {
                        **entry["scalars"],
                        **_read_arrays(archive, path, number, p, where),
                    }
            _restore_groups(meta, current, keys, optimizer, path, strict)
            if strict:
                current["skipped_steps"] = meta["skipped_steps"]
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{path} is damaged or truncated ({exc})") from None
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path} is not a valid descentlab checkpoint ({exc!r})") from None
    optimizer.load_state_dict(current)
    return LoadResult(missing, unexpected)


# -- reading, trusting nothing -----------------------------------------------------------------


def _read_meta(archive: zipfile.ZipFile, path: Path) -> dict:
    try:
        info = archive.getinfo(_META)
    except KeyError:
        raise ValueError(f"{path} is not a descentlab checkpoint (no {_META} in it)") from None
    if info.file_size > _MAX_META_BYTES:
        raise ValueError(f"{path}: its metadata claims {info.file_size} bytes, more than a "
                         "checkpoint's can be")
    with archive.open(info) as f:
        shape, dtype = _header(f, path, _META)
        if dtype != np.dtype(np.uint8) or len(shape) != 1:
            raise ValueError(f"{path}: its metadata is not a byte string")
        if info.file_size - f.tell() != shape[0]:
            raise ValueError(f"{path}: its metadata is {info.file_size - f.tell()} bytes long, "
                             f"its header says {shape[0]}")
        raw = f.read(shape[0])
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: its metadata is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a descentlab checkpoint (its format is "
                         f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("version")
    if version != VERSION:
        raise ValueError(f"{path} is a checkpoint of format version {version!r}; this "
                         f"descentlab reads version {VERSION}")
    return meta


def _check_meta(meta: dict, optimizer: Optimizer,
                path: Path) -> dict[str | int, tuple[int, dict]]:
    """The file's parameters by key: ``{key: (number in the file, entry)}``."""
    if meta["optimizer"] != type(optimizer).__name__:
        raise ValueError(f"{path} holds the state of {meta['optimizer']}, not of "
                         f"{type(optimizer).__name__}")
    saved: dict[str | int, tuple[int, dict]] = {}
    for number, entry in enumerate(meta["params"]):
        key = entry["key"]
        shape = entry["shape"]
        if not (isinstance(shape, list) and all(_count(n) for n in shape)
                and isinstance(entry["dtype"], str) and isinstance(entry["scalars"], dict)
                and isinstance(entry["has_state"], bool)):
            raise ValueError(f"{path}: the entry of parameter {key!r} is malformed")
        if key in saved:
            raise ValueError(f"{path}: parameter {key!r} appears twice")
        saved[key] = (number, entry)
    return saved  # skipped_steps is checked by Optimizer.load_state_dict


def _read_arrays(archive: zipfile.ZipFile, path: Path, number: int, p: np.ndarray,
                 where: str) -> dict[str, np.ndarray]:
    prefix = f"state/{number}/"
    arrays = {}
    for info in archive.infolist():
        if not (info.filename.startswith(prefix) and info.filename.endswith(".npy")):
            continue
        name = info.filename[len(prefix):-len(".npy")]
        with archive.open(info) as f:
            shape, dtype = _header(f, path, info.filename)
            if shape != p.shape or dtype != p.dtype:
                raise ValueError(f"{path}: state {name!r} of {where} has shape {shape} and "
                                 f"dtype {dtype}; the parameter has {p.shape} and {p.dtype}")
            if info.file_size - f.tell() != p.nbytes:
                raise ValueError(f"{path}: state {name!r} of {where} holds "
                                 f"{info.file_size - f.tell()} bytes, not {p.nbytes}")
            data = f.read(p.nbytes)
        if len(data) != p.nbytes:
            raise ValueError(f"{path} is truncated (state {name!r} of {where})")
        arrays[name] = np.frombuffer(data, dtype).reshape(shape).copy()
    return arrays


def _header(f: BinaryIO, path: Path, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from an ``.npy`` header, refusing object arrays and Fortran order."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    try:
        version = np.lib.format.read_magic(f)
        if version not in readers:
            raise ValueError(f"unsupported .npy version {version}")
        shape, fortran, dtype = readers[version](f)
    except (ValueError, SyntaxError, EOFError) as exc:
        raise ValueError(f"{path}: {member} is not a NumPy array ({exc})") from None
    if dtype.hasobject:
        raise ValueError(f"{path}: {member} holds Python objects, which are never loaded")
    if fortran:
        raise ValueError(f"{path}: {member} is in Fortran order, which we never write")
    return tuple(shape), dtype


def _restore_groups(meta: dict, current: dict, keys: list, optimizer: Optimizer, path: Path,
                    strict: bool) -> None:
    saved_groups = meta["param_groups"]
    if strict and len(saved_groups) != len(current["param_groups"]):
        raise ValueError(f"{path} has {len(saved_groups)} parameter groups, this optimizer "
                         f"has {len(current['param_groups'])}")
    for number, (saved, group) in enumerate(zip(saved_groups, current["param_groups"],
                                                strict=False)):
        mine = [keys[i] for i in group["params"]]
        if list(saved["params"]) != mine:
            if strict:
                raise ValueError(f"{path}: parameter group {number} holds other parameters "
                                 "there than here")
            continue
        hyper = saved["hyperparameters"]
        if not isinstance(hyper, dict):
            raise ValueError(f"{path}: the hyperparameters of group {number} are malformed")
        # JSON has no tuples: betas come back as lists
        group.update({k: tuple(v) if isinstance(v, list) else v for k, v in hyper.items()})


# -- small helpers -----------------------------------------------------------------------------


def _keys(optimizer: Optimizer, names: Sequence[str] | None) -> tuple[list, bool]:
    """Each parameter's key, in group order, and whether the keys are names."""
    count = sum(len(group["params"]) for group in optimizer.param_groups)
    if names is None:
        given = [group.get("param_names") for group in optimizer.param_groups]
        if all(g is not None for g in given):
            names = [name for g in given for name in g]
    if names is None:
        return list(range(count)), False
    names = list(names)
    if len(names) != count or not all(isinstance(n, str) for n in names):
        raise ValueError(f"names must be {count} strings, one per parameter in group order")
    if len(set(names)) != len(names):
        raise ValueError("names must be distinct")
    return names, True


def _plain(value: Any, what: str) -> Any:
    """``value`` as JSON can hold it exactly, or a ValueError naming ``what``."""
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ValueError(f"{what} is {value}, which a checkpoint cannot hold")
        return float(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v, what) for v in value]
    raise ValueError(f"{what} is a {type(value).__name__}, which a checkpoint cannot hold")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _listing(label: str, keys: list) -> str:
    if not keys:
        return ""
    shown = ", ".join(repr(k) for k in keys[:5])
    return f"{label} {shown}{f' and {len(keys) - 5} more' if len(keys) > 5 else ''}"
