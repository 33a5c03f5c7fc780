"""Meta-measures: combinations of measures fitted on a benchmark of tasks (``pgdl meta fit``).

``benchmark.py`` reads tasks' reference data and ``.predict`` files; ``fit.py`` fits a pairwise
ranking model over the measures' values; ``measure.py`` is the fitted combination as a measure
plugin (``meta_measure``); ``loto.py`` judges a fit on tasks it never saw (leave one task out).
"""
