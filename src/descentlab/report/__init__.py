"""The HTML report: figures and a conclusion from the results store, in one self-contained
page (``report.html``)."""

from .page import REPORT, render, write_report
from .results import Results, Run, read, read_folder

__all__ = ["REPORT", "Results", "Run", "read", "read_folder", "render", "write_report"]
