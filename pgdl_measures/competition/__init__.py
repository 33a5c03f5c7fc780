"""The competition's side: running 2020-format ``complexity(model, dataset)`` submissions as the
ingestion program did (:mod:`~pgdl_measures.competition.run`, the driver, over
:mod:`~pgdl_measures.competition.submission` (finding, unpacking, digesting one),
:mod:`~pgdl_measures.competition.ingestion` (the child processes, the child itself being
:mod:`~pgdl_measures.competition._ingestion_child`), :mod:`~pgdl_measures.competition.files` (the
output files) and :mod:`~pgdl_measures.competition.outcomes`), packaging any registered measure
as a submission (:mod:`~pgdl_measures.competition.package`, template in ``templates/``), and the
adapter a packaged submission uses to turn the competition's arguments into a
:class:`~pgdl_measures.tasks.TrainedModel` (:mod:`~pgdl_measures.competition.adapter`).
"""
