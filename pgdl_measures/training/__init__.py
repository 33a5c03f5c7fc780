"""Training: Keras 3 models, datasets, ``fit`` with the study's schedule, gradient-norm trackers,
and the study's measurement experiments.

* :mod:`~pgdl_measures.training.models`: MLP, LeNet-5, CIFAR ResNets, DenseNet-BC, PGDL VGG/NiN;
* :mod:`~pgdl_measures.training.families`: the PGDL families as competition layer lists (the zoo's);
* :mod:`~pgdl_measures.training.datasets`: offline digits and MNIST digits, MNIST/Fashion-MNIST/
  CIFAR/SVHN readers, normalisation, augmentation, subset and validation split;
* :mod:`~pgdl_measures.training.fit`: :func:`~pgdl_measures.training.fit.train` (SGD with coupled
  or decoupled weight decay, piecewise learning rate, resumable, divergence, CSV/TensorBoard);
* :mod:`~pgdl_measures.training.trackers`: exact AGN, online AGN and GN as Keras callbacks;
* :mod:`~pgdl_measures.training.experiments`: ``gn-vs-agn``, ``timing``, ``fit-regimes``.

Nothing here imports TensorFlow or JAX directly: autodiff goes through
:mod:`pgdl_measures.backend`.
"""
