"""
`lm_eval` (its own command line: lm_eval.__main__.cli_evaluate) with the arguments given.

Run by test/interop/lm-eval.test.ts when PYTHIA_LM_EVAL names a Python with lm-eval. Where
pytablewriter is not installed (lm-eval imports it only to print its summary table, after the
results and samples are saved), the table is printed as JSON instead; nothing else changes.
"""

import importlib.util
import json
import sys

import lm_eval.utils
from lm_eval.__main__ import cli_evaluate

if importlib.util.find_spec("pytablewriter") is None:

    def make_table(result_dict, column="results", sort_results=False):
        return json.dumps(result_dict.get(column, {}), indent=1, default=str)

    lm_eval.utils.make_table = make_table

sys.argv = ["lm_eval", *sys.argv[1:]]
cli_evaluate()
