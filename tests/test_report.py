"""The report: the page and its figures, escaping, the conclusion, headless Chromium."""

from __future__ import annotations

import base64
import io
import math
import os
import re
from dataclasses import replace

import numpy as np
import pytest

from descentlab import data, nn
from descentlab.lab import Store
from descentlab.lab.study import OptimizerChoice, Study, run_study
from descentlab.report import REPORT, read, render, write_report
from descentlab.report.conclusion import conclude
from descentlab.report.results import Results, Run

HOSTILE_STUDY = "<script>alert(1)</script>"
HOSTILE_LABEL = "<img src=x onerror=alert(2)>"


@pytest.fixture(scope="module")
def results_folder(tmp_path_factory):
    """Two small studies, one of them with a hostile name and optimizer label."""
    folder = tmp_path_factory.mktemp("report")
    splits = data.prepare("digits")
    sigmoid = nn.MLPSpec(64, 10, depth=4, width=16, activation="sigmoid", init="normal",
                         init_std=0.1)
    relu = nn.MLPSpec(64, 10, depth=4, width=16, activation="relu", init="he_normal")
    choices = [OptimizerChoice("SGD", "SGD", lr_grid=(0.1,)),
               OptimizerChoice(HOSTILE_LABEL, "Adam", lr_grid=(1e-3, 1e-2))]
    with Store(folder) as store:
        run_study(Study("first", [sigmoid, relu], choices, epochs=3, search_epochs=1), splits,
                  store)
        run_study(Study(HOSTILE_STUDY, [sigmoid], choices[:1], epochs=2, search_epochs=1),
                  splits, store)
    return folder


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"',
                                                    html)]


def test_the_page_embeds_every_figure_and_a_row_per_final_run(results_folder):
    path = write_report(results_folder, "unit report")
    assert path == results_folder / REPORT
    html = path.read_text()
    import matplotlib.image

    images = _images(html)
    # one initialisation profile, then learning curves, update ratios and heat maps per study
    assert len(images) == 1 + 3 * 2 == html.count("<img ")
    for png in images:
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and pixels.std() > 0
    with Store(results_folder) as store:
        finals = [r for r in store.runs() if r["config"]["role"] == "final"]
    assert html.count('<tr class="finished">') + html.count('<tr class="diverged">') \
        == len(finals) == 5
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_names_from_users_are_escaped(results_folder):
    html = write_report(results_folder).read_text()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "script-src" not in html and "default-src 'none'" in html


def test_report_refuses_a_folder_without_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no results.sqlite"):
        write_report(tmp_path)
    assert list(tmp_path.iterdir()) == []


def _run(optimizer, network, accuracy, ratios, finding="vanishing", status="finished",
         target_epochs=None, layers=3):
    """A run with a chosen test accuracy and per-layer update-to-weight ratios (the same at
    both recorded epochs), gradient norms falling towards the input at initialisation."""
    rows = [{"epoch": 0, "layer": k + 1, "grad_norm": 10.0 ** (k - layers),
             "weight_norm": 1.0, "update_norm": 0.0, "update_ratio": 0.0, "inactive": 0.0}
            for k in range(layers)]
    for epoch in (1, 2):
        rows += [{"epoch": epoch, "layer": k + 1, "grad_norm": 1.0, "weight_norm": 1.0,
                  "update_norm": r, "update_ratio": r, "inactive": 0.0}
                 for k, r in enumerate(ratios)]
    return Run(id=0, study="s", optimizer=optimizer, network=network,
               spec={"outputs": 10}, lr=0.1, lr_search=[], status=status,
               test_accuracy=accuracy, test_loss=1.0, epochs_to_target=target_epochs,
               target_accuracy=0.9, wall_s=1.0, finding=finding,
               message="vanishing gradients: layer 1's gradient norm is 0.001 times layer 3's",
               layers=rows, epochs=[])


def test_runs_of_different_tasks_are_concluded_apart():
    ratios = [1e-3, 1e-3, 1e-3]
    runs = [replace(_run("Adam", "CNN relu", 0.98, ratios), task="cnn-digits"),
            replace(_run("SGD", "CNN relu", 0.50, ratios), task="cnn-digits"),
            replace(_run("Adam", "3x256 MLP relu", 0.63, ratios), task="mlp-mnist1d"),
            replace(_run("Adam", "3x256 MLP sigmoid", 0.39, ratios), task="mlp-mnist1d")]
    paragraphs = conclude(Results("f", runs, 0, 0))
    by_task = {task: [p for p in paragraphs if p.startswith(f"{task}: ")]
               for task in ("cnn-digits", "mlp-mnist1d")}
    assert sum(map(len, by_task.values())) == len(paragraphs)  # every paragraph names its task
    assert by_task["cnn-digits"][-1].endswith(
        "Best run overall: Adam | CNN relu, 98.0% test accuracy (1.0 s).")
    assert by_task["mlp-mnist1d"][-1].endswith(
        "Best run overall: Adam | 3x256 MLP relu, 63.0% test accuracy (1.0 s).")
    # the MNIST-1D networks are compared with each other, never with the CNN's 98 %
    assert any("best run on the 3x256 MLP" in p for p in by_task["mlp-mnist1d"])
    assert not any("CNN" in p for p in by_task["mlp-mnist1d"])


def test_the_conclusion_is_written_from_the_numbers():
    plain, remedy = "3x8 sigmoid", "3x8 sigmoid +residual"
    runs = [
        _run("SGD", plain, 0.10, [1e-7, 1e-5, 1e-3]),
        _run("Adam", plain, 0.55, [2e-3, 2e-3, 1e-3]),
        _run("Fancy", plain, 0.93, [1e-3, 1e-3, 1e-3], target_epochs=7),
        _run("Broken", plain, math.nan, [1e-3, 1e-3, 1e-3], status="diverged"),
        _run("SGD", remedy, 0.97, [1e-3, 1e-3, 1e-3], finding="healthy", target_epochs=3),
        _run("Adam", remedy, 0.11, [1e-3, 1e-3, 1e-3], finding="healthy"),
    ]
    text = "\n".join(conclude(Results("f", runs, 0, 0)))
    assert ("Fancy (93.0%) overcame the vanishing gradients and reached the target 90.0%"
            in text)
    assert "Adam (55.0%) learned less but stayed below the target" in text
    assert "SGD (10.0%) stayed at chance (10.0%)" in text and "Broken diverged" in text
    # layer 1's ratio over layer 3's, largest first: 2 (Adam), 1 (Fancy), 1e-4 (SGD)
    assert "was 2 with Adam, 1 with Fancy and 0.0001 with SGD" in text
    assert ("Changing the network did more than changing the optimizer: the best run on the "
            "3x8 sigmoid network reached 93.0% (Fancy)") in text
    assert "3x8 sigmoid +residual: 97.0% with SGD, the target in 3 epochs" in text
    assert "depends on its optimizer: SGD reached 97.0%, Adam stayed at chance" in text
    assert text.endswith("Best run overall: SGD | 3x8 sigmoid +residual, 97.0% test accuracy, "
                         "reaching the target in 3 epochs (1.0 s).")


def test_render_reads_the_store_alone(results_folder):
    with Store(results_folder) as store:
        results = read(store)
    assert results.search_runs == 2 * (1 + 2) + 1 and results.unfinished == 0
    assert [r.study for r in results.runs].count("first") == 4
    run = results.of("first")[0]
    assert run.layer_matrix("grad_norm").shape == (4, 5)  # epochs 0-3, 5 layers
    assert np.all(run.initial_grad_norms() > 0)
    assert "Conclusion" in render(results)


# -- headless Chromium --------------------------------------------------------------------------

def _browser():
    import browser

    return browser.required()


def test_the_report_renders_in_chromium(results_folder, tmp_path):
    browser = _browser()
    path = write_report(results_folder)
    page = browser.open_page(path.as_uri())
    assert page.title == "descentlab report"
    assert len(page.images) == 7
    for image in page.images:
        assert image["complete"] and image["naturalWidth"] > 0 and image["naturalHeight"] > 0
    assert page.errors == [] and page.dialogs == []
    (tmp_path / "screenshot.png").write_bytes(page.screenshot)
    import matplotlib.image

    shot = matplotlib.image.imread(tmp_path / "screenshot.png")
    assert shot.shape[1] == 1280 and shot.shape[0] > 1000 and shot.std() > 0.01


def test_the_browser_check_catches_broken_images_errors_and_scripts(tmp_path):
    """The checks above can fail: a page with a broken image, a console error and an alert."""
    browser = _browser()
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><title>bad</title></head><body>'
                   '<img src="data:image/png;base64,AAAA">'
                   '<script>console.error("boom"); alert("injected");</script></body></html>')
    page = browser.open_page(bad.as_uri())
    assert page.images[0]["naturalWidth"] == 0
    assert any("boom" in e for e in page.errors)
    assert page.dialogs == ["injected"]
