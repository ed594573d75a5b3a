"""Table 7: milliseconds per image at batch size 1 for Softmax, OpenMax and CROSR on the same backbone.

Each method is timed end to end on one Keras model from a CIFAR-10 image to its ``N + 1`` probabilities
(:func:`keras_crosr.deploy.build_open_set_model`): the supervised network + softmax, the supervised network +
the OpenMax layer, and the decoder-free DHRNet + the CROSR layer. Every call is
``model.predict_on_batch(image[None])`` on a real test image (the backend's compiled predict function, output
copied back to the host), after warm-up calls; the methods of a backbone take turns image by image, so a
change of machine load hits them alike, and the median per method is reported with its ratio to Softmax.

The heads need fitted detectors: they are fitted on the features of a few hundred CIFAR-10 training images.
With ``epochs=0`` (the configured default) the networks are built but not trained, since the time does not
depend on the weights; their classifier (the ``logits`` Dense layer) is then set to the least-squares fit of
the one-hot labels on its input features, so that every class has correctly classified samples to fit the
Weibull models on. With ``epochs > 0`` the networks are trained by :meth:`Runner.train` first.
"""

import os
import platform
import time

import keras
import numpy as np

from keras_crosr import datasets
from keras_crosr.datasets import _source
from keras_crosr.deploy import build_open_set_model
from keras_crosr.dhrnet import inference_model
from keras_crosr.experiments.runner import subsample, make_detector

FIT_IMAGES = 500  # training images whose features fit the heads (full run; quick: the budget's ``train``)
TIMED_IMAGES = 300  # test images timed one by one per method (full run; quick: the budget's ``test``)
WARMUP_CALLS = 10  # untimed calls per model first (tracing, compilation, caches)
DEPLOYABLE_HEADS = ("softmax", "openmax", "crosr")
_CIFAR10_SIZES = {"train": 50_000, "test": 10_000}


def device_name():
    """The device the Keras backend computes on, e.g. ``"gpu: NVIDIA H200"`` or ``"cpu: <model> (2 cores)"``."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return f"{device.platform}: {device.device_kind}"
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return "gpu: " + tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return "gpu: " + torch.cuda.get_device_name(0)
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as cpuinfo:
            names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"cpu: {cpu} ({os.cpu_count()} cores)"


def check_methods(runner):
    """``{backbone: [(network, head), ...]}`` of the runner's networks and heads (``skip_heads`` left out); a
    ``ValueError`` unless they make a Table 7 comparison (every head a Keras model, a softmax on every backbone)."""
    methods = {}
    for network in runner.networks:
        for head in network.heads:
            if head in runner.skip_heads:
                continue
            if head not in DEPLOYABLE_HEADS:
                raise ValueError(
                    f"runtime: head {head!r} of {network.key} cannot be timed as a Keras model; "
                    f"use {', '.join(DEPLOYABLE_HEADS)}."
                )
            if any(h == head for _, h in methods.get(network.backbone, [])):
                raise ValueError(f"runtime: head {head!r} appears twice on backbone {network.backbone!r}.")
            methods.setdefault(network.backbone, []).append((network, head))
    for backbone, pairs in methods.items():
        if "softmax" not in [head for _, head in pairs]:
            raise ValueError(
                f"runtime: backbone {backbone!r} has no softmax head to compare with; include the network "
                f"'{backbone}-supervised' with its softmax head."
            )
    return methods


def fit_readout(model, x, y, num_classes, batch_size=100):
    """Sets the ``logits`` Dense layer to the least-squares fit of one-hot labels on its input features.

    Used on untrained networks, whose argmax otherwise falls on one or two classes: afterwards most training
    samples of every class are classified correctly, so the Weibull tails can be fitted.

    Args:
        model: a model from ``build_dhrnet``.
        x: `(n, H, W, C)` training images; y: `(n,)` their labels in ``0..num_classes-1``.

    Returns:
        ``inference_model(model).predict(x)`` under the new classifier: ``{"logits", "latent"?}``.
    """
    dense = model.get_layer("logits")
    outputs = dict(inference_model(model).output)
    outputs["penultimate"] = dense.input
    features = keras.Model(model.inputs, outputs).predict(x, batch_size=batch_size, verbose=0)
    penultimate = np.asarray(features.pop("penultimate"), dtype=np.float64)
    design = np.concatenate([penultimate, np.ones((len(penultimate), 1))], axis=1)
    solution = np.linalg.lstsq(design, np.eye(num_classes)[y], rcond=None)[0]
    dense.kernel.assign(solution[:-1].astype("float32"))
    dense.bias.assign(solution[-1].astype("float32"))
    features["logits"] = (penultimate @ solution[:-1] + solution[-1]).astype("float32")
    return features


def fit_timing_head(head, features, labels, tail_size, alpha=None):
    """A detector fitted for timing; the tail is capped at the smallest class's correctly classified count."""
    logits = np.asarray(features["logits"])
    correct = np.bincount(labels[np.argmax(logits, axis=1) == labels], minlength=logits.shape[1])
    tail = int(min(tail_size, correct.min()))
    if head != "softmax" and tail < 2:
        raise ValueError(
            f"runtime: class {int(np.argmin(correct))} has {correct.min()} correctly classified fitting samples; "
            "the Weibull fit needs 2 or more. Train longer (--epochs), or time untrained networks (--epochs 0: a "
            "least-squares readout then classifies the fitting images; the time does not depend on the weights)."
        )
    detector = make_detector(head, tail_size=max(tail, 2), alpha=alpha)
    return detector.fit(features if head == "crosr" else logits, labels)


def time_per_image(models, images, warmup=WARMUP_CALLS):
    """Median seconds of ``model.predict_on_batch(image[None])`` per model over ``images``.

    The models take turns on each image, starting one later each time, so that a change of load or clock
    affects all alike. Returns ``{name: (median seconds, list of all timings)}``.
    """
    names = list(models)
    for name in names:
        for i in range(warmup):
            models[name].predict_on_batch(images[i % len(images)][None])
    timings = {name: [] for name in names}
    for i, image in enumerate(images):
        batch = image[None]
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            models[name].predict_on_batch(batch)
            timings[name].append(time.perf_counter() - start)
    return {name: (float(np.median(values)), values) for name, values in timings.items()}


def _timing_models(runner, pairs, train, fit, num_classes):
    """``({head: open-set model}, {head: tail size})`` of one backbone's ``(network, head)`` pairs, or None
    when a training diverged or a head cannot be fitted (the runner reports it; other backbones go on)."""
    (x_train, y_train), (x_fit, y_fit) = train, fit
    models, tails = {}, {}
    for network in dict.fromkeys(network for network, _ in pairs):
        model = runner.train(network.key, network.backbone, network.variant, x_train, y_train, num_classes)
        if model is None:
            return None
        if runner.epochs > 0:
            features = inference_model(model).predict(x_fit, batch_size=100, verbose=0)
        else:
            features = fit_readout(model, x_fit, y_fit, num_classes)
        for head in (h for n, h in pairs if n is network):
            try:
                detector = fit_timing_head(head, features, y_fit, runner.experiment.tail_size_for(network.backbone),
                                           runner.experiment.alpha_for(runner.experiment.dataset))
            except ValueError as error:
                runner._problem(f"runtime-{network.backbone}",
                                f"[runtime] {network.backbone} not timed: {head} head: {error}")
                return None
            tails[head] = getattr(detector, "tail_size", None)
            models[head] = build_open_set_model(model, detector, name=f"{network.backbone}_{head}")
    return models, tails


def measure_runtime(runner):
    """Table 7 for the runner's networks: records ``runtime/{backbone}/{head}`` for each backbone not yet done.

    Each record holds ``ms_per_image`` (median), ``ratio_to_softmax``, ``p10_ms`` / ``p90_ms``, ``repeats``
    (timed images), ``backend``, ``device``, ``weights`` (how the networks were obtained), ``tail_size`` (as
    fitted), ``fit_images`` and ``configured`` (the experiment's tail size and ``alpha`` for the head): a record
    configured otherwise is timed again.
    """
    experiment = runner.experiment
    if experiment.dataset != "cifar10":
        raise ValueError(
            f"the runtime experiment times CIFAR-10 images (the paper's setting); got {experiment.dataset!r}."
        )
    methods = check_methods(runner)

    def configured(backbone, head):
        if head == "softmax":
            return {}
        return {"tail_size": experiment.tail_size_for(backbone), "alpha": experiment.alpha_for(experiment.dataset)}

    def finished(backbone, head):
        record = runner.workspace.results.get(f"runtime/{backbone}/{head}")
        return isinstance(record, dict) and record.get("configured") == configured(backbone, head)

    pending = {b: pairs for b, pairs in methods.items() if not all(finished(b, head) for _, head in pairs)}
    if not pending:
        return
    n_fit = runner.limit("train") or FIT_IMAGES
    n_timed = runner.limit("test") or TIMED_IMAGES
    load = datasets.load_cifar10
    with _source.recording() as sources:
        x_fit, y_fit = load("train", indices=subsample(_CIFAR10_SIZES["train"], n_fit, runner.seed), **runner.data)
        if runner.epochs > 0:
            keep = subsample(_CIFAR10_SIZES["train"], runner.limit("train"), runner.seed)
            x_train, y_train = load("train", indices=keep, **runner.data)
            weights = f"trained for {runner.epochs} epochs on {len(x_train)} images"
        else:
            x_train, y_train = x_fit, y_fit
            weights = ("untrained (the time does not depend on the weights); classifier: least-squares readout on "
                       f"{len(x_fit)} training images")
        x_timed, _ = load("test", indices=subsample(_CIFAR10_SIZES["test"], n_timed, runner.seed + 1), **runner.data)
    runner.check_data(sources, train=(x_train, y_train), fit=(x_fit, y_fit), timed=(x_timed,))
    num_classes = 10
    device = device_name()
    for backbone, pairs in pending.items():
        built = _timing_models(runner, pairs, (x_train, y_train), (x_fit, y_fit), num_classes)
        if built is None:
            continue
        models, tails = built
        runner._solved(f"runtime-{backbone}")
        runner.log(f"[runtime] timing {', '.join(models)} on {backbone}: {len(x_timed)} images at batch size 1")
        timings = time_per_image(models, x_timed)
        softmax = timings["softmax"][0]
        for head, (median, values) in timings.items():
            runner.workspace.record(f"runtime/{backbone}/{head}", {
                "ms_per_image": round(1000 * median, 3),
                "ratio_to_softmax": round(median / softmax, 3),
                "p10_ms": round(1000 * float(np.percentile(values, 10)), 3),
                "p90_ms": round(1000 * float(np.percentile(values, 90)), 3),
                "repeats": len(values),
                "backend": keras.backend.backend(),
                "device": device,
                "weights": weights,
                "tail_size": tails[head],
                "fit_images": int(len(x_fit)),
                "configured": configured(backbone, head),
            })
            runner.log(f"[runtime] {backbone} {head}: {1000 * median:.2f} ms/image ({median / softmax:.2f}x softmax)")
