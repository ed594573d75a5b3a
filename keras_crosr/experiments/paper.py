"""The numbers the paper reports (Yoshihashi et al., CVPR 2019), for side-by-side tables.

One dict per table, named after it, keyed as the table is laid out: Table 1 by ``(backbone, training,
dataset)`` (backbones ``"plain_cnn"`` / ``"densenet"``, the paper's names); Tables 2 and 6 by ``(training,
detector)``, then outlier set; Table 3 by ``(backbone, training, detector)``, then outlier set, and its other
methods by ``(backbone, method)``; Tables 4, 5 and 7 by method, then setting, data set or backbone (Tables 3
and 7 name backbones as :mod:`keras_crosr.backbones` does). Values are the published scores, reference values
to compare against, never used to compute anything.
"""

TABLE1_CLOSED_SET_ACCURACY = {
    ("plain_cnn", "supervised", "mnist"): 0.991,
    ("plain_cnn", "laddernet", "mnist"): 0.993,
    ("plain_cnn", "dhrnet", "mnist"): 0.992,
    ("plain_cnn", "supervised", "cifar10"): 0.934,
    ("plain_cnn", "laddernet", "cifar10"): 0.928,
    ("plain_cnn", "dhrnet", "cifar10"): 0.930,
    ("plain_cnn", "supervised", "svhn"): 0.943,
    ("plain_cnn", "dhrnet", "svhn"): 0.945,
    ("densenet", "supervised", "cifar10"): 0.944,
    ("densenet", "dhrnet", "cifar10"): 0.940,
}

# Table 2 (MNIST, macro-F1 over 11 classes) and Table 6 (other unknown detectors on [y, z]).
TABLE2_MNIST_F1 = {
    ("supervised", "softmax"): {"omniglot": 0.592, "mnist_noise": 0.641, "noise": 0.826},
    ("supervised", "openmax"): {"omniglot": 0.680, "mnist_noise": 0.720, "noise": 0.890},
    ("laddernet", "softmax"): {"omniglot": 0.588, "mnist_noise": 0.772, "noise": 0.828},
    ("laddernet", "openmax"): {"omniglot": 0.764, "mnist_noise": 0.821, "noise": 0.826},
    ("dhrnet", "softmax"): {"omniglot": 0.595, "mnist_noise": 0.801, "noise": 0.829},
    ("dhrnet", "openmax"): {"omniglot": 0.780, "mnist_noise": 0.816, "noise": 0.826},
    ("dhrnet", "crosr"): {"omniglot": 0.793, "mnist_noise": 0.827, "noise": 0.826},
}
TABLE6_MNIST_F1 = {
    ("supervised", "openmax"): {"omniglot": 0.680, "noise": 0.890, "mnist_noise": 0.720},
    ("supervised", "ocsvm"): {"omniglot": 0.647, "noise": 0.899, "mnist_noise": 0.919},
    ("dhrnet", "crosr"): {"omniglot": 0.793, "noise": 0.826, "mnist_noise": 0.827},
    ("dhrnet", "crosr_ocsvm"): {"omniglot": 0.702, "noise": 0.979, "mnist_noise": 0.976},
    ("dhrnet", "crosr_isoforest"): {"omniglot": 0.649, "noise": 0.908, "mnist_noise": 0.839},
}

# Table 3 (CIFAR-10, macro-F1 over 11 classes).
_T3_SETS = ("imagenet_crop", "imagenet_resize", "lsun_crop", "lsun_resize")
TABLE3_CIFAR10_F1 = {
    (backbone, training, detector): dict(zip(_T3_SETS, scores))
    for backbone, training, detector, scores in [
        ("cifar_cnn", "supervised", "softmax", (0.639, 0.653, 0.642, 0.647)),
        ("cifar_cnn", "supervised", "openmax", (0.660, 0.684, 0.657, 0.668)),
        ("cifar_cnn", "laddernet", "softmax", (0.640, 0.646, 0.644, 0.647)),
        ("cifar_cnn", "laddernet", "openmax", (0.653, 0.670, 0.652, 0.659)),
        ("cifar_cnn", "laddernet", "crosr", (0.621, 0.631, 0.629, 0.630)),
        ("cifar_cnn", "dhrnet", "softmax", (0.645, 0.649, 0.650, 0.649)),
        ("cifar_cnn", "dhrnet", "openmax", (0.655, 0.675, 0.656, 0.664)),
        ("cifar_cnn", "dhrnet", "crosr", (0.721, 0.735, 0.720, 0.749)),
        ("densenet92", "supervised", "softmax", (0.693, 0.685, 0.697, 0.722)),
        ("densenet92", "supervised", "openmax", (0.696, 0.688, 0.700, 0.726)),
        ("densenet92", "dhrnet", "softmax", (0.691, 0.726, 0.688, 0.700)),
        ("densenet92", "dhrnet", "openmax", (0.729, 0.760, 0.712, 0.728)),
        ("densenet92", "dhrnet", "crosr", (0.733, 0.763, 0.714, 0.731)),
    ]
}

# Table 3's row of a method this package does not implement: Neal et al.'s counterfactual images (plain CNN).
TABLE3_CIFAR10_F1_OTHERS = {
    ("cifar_cnn", "counterfactual"): dict(zip(_T3_SETS, (0.636, 0.635, 0.650, 0.648))),
}

# Table 4 (DBpedia, macro-F1; known/total classes; DOC, Shu et al. 2017, is not implemented here).
TABLE4_DBPEDIA_F1 = {
    "softmax": {"4/14": 0.460, "4/12": 0.503, "4/8": 0.662, "4/4": 0.988},
    "openmax": {"4/14": 0.532, "4/12": 0.574, "4/8": 0.729, "4/4": 0.986},
    "crosr": {"4/14": 0.582, "4/12": 0.627, "4/8": 0.765, "4/4": 0.987},
    "doc": {"4/14": 0.507, "4/12": 0.568, "4/8": 0.733, "4/4": 0.985},
}

# Table 5 (class separation, AUROC mean and std over five trials; TinyImageNet without std).
TABLE5_AUROC = {
    "openmax": {"mnist": (0.981, 0.005), "svhn": (0.894, 0.013), "tinyimagenet": (0.576, None)},
    "g_openmax": {"mnist": (0.984, 0.005), "svhn": (0.896, 0.017), "tinyimagenet": (0.580, None)},
    "counterfactual": {"mnist": (0.988, 0.004), "svhn": (0.910, 0.010), "tinyimagenet": (0.586, None)},
    "crosr": {"mnist": (0.991, 0.004), "svhn": (0.899, 0.018), "tinyimagenet": (0.589, None)},
}

# Table 7 (ms per image at batch size 1, CIFAR-10, one GTX Titan X).
TABLE7_MS_PER_IMAGE = {
    "softmax": {"cifar_cnn": 9.3, "densenet92": 63.2},
    "openmax": {"cifar_cnn": 11.7, "densenet92": 69.4},
    "crosr": {"cifar_cnn": 16.5, "densenet92": 72.4},
}
