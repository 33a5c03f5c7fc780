"""The competition's side: running 2020-format ``complexity(model, dataset)`` submissions as the
ingestion program did (:mod:`~pgdl_measures.competition.run`, with the child process
:mod:`~pgdl_measures.competition._ingestion_child`), packaging any registered measure as a
submission (:mod:`~pgdl_measures.competition.package`, template in ``templates/``), and the
adapter a packaged submission uses to turn the competition's arguments into a
:class:`~pgdl_measures.tasks.TrainedModel` (:mod:`~pgdl_measures.competition.adapter`).
"""
