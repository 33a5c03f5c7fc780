"""Hyper-parameter search with AGN objectives (An et al., Tables 1, 2 and 4) on Optuna, run on
a Dask cluster.

* :mod:`~pgdl_measures.search.spec`: the search spec, presets ``ci`` and ``paper``, validation;
* :mod:`~pgdl_measures.search.objectives`: a trial's training (through
  :mod:`pgdl_measures.training`) and the objective values (AGN normalised across budgets);
* :mod:`~pgdl_measures.search.algorithms`: random search, CMA-ES, PSO, BOHB as step planners;
* :mod:`~pgdl_measures.engine`: the Dask plumbing (the one module that knows the cluster);
* :mod:`~pgdl_measures.search.driver`: ask a step, submit, gather, tell; budget; resume;
* :mod:`~pgdl_measures.search.folder`: the output folder's JSON files, its recorded storage, its lock;
* :mod:`~pgdl_measures.search.report`: tables and the best-so-far figure.
"""
