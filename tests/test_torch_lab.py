"""The torch lab: its networks against torch's own layers and hand-derived backpropagation,
the adding problem against its definition, the runs in the store and the report, the command
line, and the torch problems of the sweep registry against torch.optim."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import require_torch

torch = require_torch()
from descentlab import problems  # noqa: E402
from descentlab.cli import main  # noqa: E402
from descentlab.cli_lab import TORCH_TASKS  # noqa: E402
from descentlab.lab import Store  # noqa: E402
from descentlab.lab.demo import choice  # noqa: E402
from descentlab.optim import SGD  # noqa: E402
from descentlab.report import read_folder, render  # noqa: E402
from descentlab.torch import lab  # noqa: E402
from descentlab.torch.models import (  # noqa: E402
    ADDING_CHANCE,
    ADDING_TOLERANCE,
    Recurrent,
    SmallCNN,
    adding_problem,
)


def test_the_unrolled_rnn_equals_torch_nn_rnn():
    torch.manual_seed(0)
    ours = Recurrent("rnn", inputs=2, hidden=8).double()
    reference = torch.nn.RNN(2, 8, nonlinearity="tanh", batch_first=True).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(reference, f"{name}_l0").copy_(getattr(ours.cell, name))
    x = torch.randn(5, 7, 2, dtype=torch.float64)
    _, h_last = reference(x)
    expected = ours.readout(h_last[0]).squeeze(-1)
    torch.testing.assert_close(ours(x), expected, rtol=1e-12, atol=1e-12)


def test_the_unrolled_lstm_equals_torch_nn_lstm():
    torch.manual_seed(0)
    ours = Recurrent("lstm", inputs=2, hidden=8).double()
    reference = torch.nn.LSTM(2, 8, batch_first=True).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(reference, f"{name}_l0").copy_(getattr(ours.cell, name))
    x = torch.randn(5, 7, 2, dtype=torch.float64)
    _, (h_last, _) = reference(x)
    torch.testing.assert_close(ours(x), ours.readout(h_last[0]).squeeze(-1), rtol=1e-12,
                               atol=1e-12)


def test_hidden_state_gradients_follow_backpropagation_through_time():
    """∂L/∂h_{t-1} = U^T (∂L/∂h_t ⊙ (1 − h_t²)) for h_t = tanh(W x_t + U h_{t-1} + b), and
    ∂L/∂h_T = ∂L/∂y · w_out: the recurrence derived by hand, checked on every step."""
    torch.manual_seed(0)
    model = Recurrent("rnn", hidden=6).double()
    x = torch.randn(4, 9, 2, dtype=torch.float64)
    y = torch.randn(4, dtype=torch.float64)
    model.keep_hidden = True
    prediction = model(x)
    torch.nn.functional.mse_loss(prediction, y).backward()
    h = model.hidden
    dy = 2 * (prediction - y).detach() / len(y)
    expected = dy[:, None] * model.readout.weight.detach()
    torch.testing.assert_close(h[-1].grad, expected, rtol=1e-12, atol=1e-15)
    U = model.cell.weight_hh.detach()
    for t in range(len(h) - 1, 0, -1):
        back = (h[t].grad * (1 - h[t].detach() ** 2)) @ U
        torch.testing.assert_close(h[t - 1].grad, back, rtol=1e-10, atol=1e-15)
    norms = model.hidden_grad_norms()
    assert norms == pytest.approx([float(torch.linalg.vector_norm(s.grad)) for s in h])


def test_the_adding_problem_is_what_it_says():
    x, y = adding_problem(2000, 30, seed=3)
    assert x.shape == (2000, 30, 2) and x.dtype == np.float32
    markers = x[..., 1]
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :15].sum(axis=1) == 1) and np.all(markers[:, 15:].sum(axis=1) == 1)
    np.testing.assert_array_equal(y, (x[..., 0] * markers).sum(axis=1))
    assert np.all((x[..., 0] >= 0) & (x[..., 0] < 1))
    # predicting the mean, 1, is right this often (Monte Carlo, 4 standard errors)
    _, big = adding_problem(200_000, 4, seed=0)
    share = np.mean(np.abs(big - 1.0) < ADDING_TOLERANCE)
    assert share == pytest.approx(ADDING_CHANCE, abs=4 * math.sqrt(ADDING_CHANCE / 200_000))
    with pytest.raises(ValueError, match="at least 2 steps"):
        adding_problem(3, 1, 0)


def test_the_cnn_takes_digits_images():
    data = lab.image_splits(0)
    x, y = data.train
    assert x.shape[1:] == (1, 8, 8) and SmallCNN()(x[:3]).shape == (3, 10)


def test_a_torch_study_records_epochs_layers_modules_and_time_steps(tmp_path):
    study = lab.TorchStudy("rnn-adding", [choice("Adam")], epochs=2, search_epochs=1,
                           lengths=(4, 8))
    with Store(tmp_path) as store:
        results = lab.run(study, store)
        runs = [r for r in store.runs() if r["config"]["role"] == "final"]
        assert [r["name"] for r in runs] == ["Adam | RNN T=4", "Adam | LSTM T=4",
                                              "Adam | RNN T=8", "Adam | LSTM T=8"]
        run = runs[-1]
        assert [e["epoch"] for e in store.epochs(run["id"])] == [0, 1, 2]
        steps = store.timesteps(run["id"])
        assert {(s["epoch"], s["t"]) for s in steps} == {(e, t) for e in (0, 1, 2)
                                                          for t in range(1, 9)}
        layers = store.layers(run["id"])
        assert {row["layer"] for row in layers} == {1, 2}  # the cell, the read-out
        modules = store.modules(run["id"])
        assert {row["module"] for row in modules} >= {"cell", "readout"}
        # searched once per cell, at the shortest length
        searches = [r for r in store.runs() if r["config"]["role"] == "search"]
        assert len(searches) == 2 * len(choice("Adam").lr_grid)
        assert {r["config"]["network"]["length"] for r in searches} == {4}
    assert all(r.status == "finished" for r in results)
    read = read_folder(tmp_path)
    html = render(read)
    assert "gradient norm per time step of study rnn-adding (torch)" in html
    assert "accuracy against sequence length of study rnn-adding (torch)" in html
    assert "module statistics of Adam | LSTM T=8" in html
    epochs, matrix = read.runs[-1].timestep_matrix()
    assert epochs == [0, 1, 2] and matrix.shape == (3, 8)


def test_gd_in_the_torch_lab_takes_the_whole_split(tmp_path):
    with Store(tmp_path) as store:
        lab.run(lab.TorchStudy("cnn-digits", [choice("GD")], epochs=1, search_epochs=1),
                store)
        final = [r for r in store.runs() if r["config"]["role"] == "final"][0]
        # one step per epoch: the monitor (records every step then) saw steps 0 only
        assert final["config"]["train"]["batch_size"] is None
        assert {row["step"] for row in store.modules(final["id"])} == {0}


@pytest.mark.parametrize("kwargs, match", [
    ({"task": "gan"}, "unknown torch task"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"lengths": (1,)}, "at least 2"),
])
def test_bad_torch_studies_are_refused(kwargs, match):
    arguments = {"task": "rnn-adding", "optimizers": [choice("Adam")], **kwargs}
    with pytest.raises(ValueError, match=match):
        lab.TorchStudy(**arguments)


def test_the_command_line_runs_the_torch_lab(tmp_path, capsys):
    assert TORCH_TASKS == list(lab.TASKS)
    folder = tmp_path / "out"
    code = main(["vanish", "--backend", "torch", "--tasks", "rnn-adding", "--lengths", "4",
                 "--epochs", "1", "--search-epochs", "1", "--optimizers", "SGD+momentum",
                 "--out", str(folder), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "LSTM T=4" in out and "RNN T=4" in out and "SGD+momentum" in out
    assert (folder / "report.html").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--backend", "torch", "--depth", "3"], "only --backend numpy takes --depth"),
    (["--lengths", "5"], "only --backend torch takes --lengths"),
    (["--backend", "torch", "--batch-size", "0"], "mini-batches"),
    (["--backend", "torch", "--optimizers", "Lamb"], "unknown optimizer 'Lamb'"),
])
def test_the_command_line_refuses_mixed_options(tmp_path, capsys, argv, message):
    assert main(["vanish", *argv, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x" / "results.sqlite").exists()


def test_the_torch_problems_are_registered_and_step_like_torch_optim():
    names = problems.names()
    for name in ("cnn-digits-torch", "mlp-mnist1d-torch", "rnn-adding-torch",
                 "lstm-adding-torch"):
        assert name in names
    problem = problems.get("cnn-digits-torch")
    model = problem.setup(0)
    twin = problems.get("cnn-digits-torch").setup(0)
    for a, b in zip(model.params, twin.params, strict=True):
        np.testing.assert_array_equal(a, b)  # the seed decides the initial parameters
    rows = np.arange(64)
    # the reference: torch.optim.SGD on a torch copy of the same network and batch
    from descentlab.problems.torch_problems import _data

    data = _data("cnn-digits")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        reference = lab.networks("cnn-digits")[1].build()
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    ours = SGD(model.params, lr=0.1, momentum=0.9)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the problem runs
    try:
        for _ in range(3):
            loss, grads = model.loss_and_grad(rows)
            ours.step(grads)
            ref_opt.zero_grad()
            ref_loss = data.loss(reference(data.train[0][:64]), data.train[1][:64])
            ref_loss.backward()
            ref_opt.step()
            assert loss == pytest.approx(ref_loss.item(), rel=1e-6)
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads  # the problem restored it too
    for ours_p, ref_p in zip(model.params, reference.parameters(), strict=True):
        np.testing.assert_allclose(ours_p, ref_p.detach().numpy(), rtol=1e-5, atol=1e-6)
    accuracy = model.evaluate()
    assert 0 <= accuracy <= 1
