"""Deep hierarchical reconstruction nets (DHRNet, Yoshihashi et al., CVPR 2019, section 4.2).

``build_dhrnet`` turns a backbone (a list of stages) into a functional model with the outputs

- ``"logits"`` ``(batch, num_classes)``: the pre-softmax vector y;
- ``"latent"`` ``(batch, L * latent_dim)``: every ``z_l = h_l(x_l)`` global-max-pooled over its spatial axes and
  concatenated (LadderNet: the pooled ``x_l`` themselves);
- ``"reconstruction"``: the decoder output x~, of the input's shape (images) or ``(batch, T, vocab_size)`` token
  logits (text).

Training minimises softmax cross entropy + reconstruction loss, weighted 1.0 each by default (section 5)::

    model = build_dhrnet("mnist_cnn", num_classes=10)
    compile_dhrnet(model)
    model.fit(x, dhrnet_targets(x, y), epochs=...)
    features = inference_model(model).predict(x_test)   # {"logits", "latent"}, no decoder
"""

import keras
import numpy as np
from keras import layers, ops

from keras_crosr._validation import is_integer, is_real, positive_int
from keras_crosr.backbones import IMAGE, TEXT, BACKBONES, Backbone, get_backbone
from keras_crosr.layers import LateralBottleneck, TopDownCombiner

VARIANTS = ("dhrnet", "laddernet", "supervised")
DEFAULT_DROPOUT = 0.25


def _resolve_backbone(backbone, input_shape, vocab_size, max_length):
    if isinstance(backbone, str):
        if backbone not in BACKBONES:
            raise ValueError(f"Unknown backbone {backbone!r}; valid names are {', '.join(sorted(BACKBONES))}.")
        if backbone == "text_cnn":
            if vocab_size is None:
                raise ValueError("The text backbone 'text_cnn' needs `vocab_size` (and `max_length`).")
            return get_backbone(backbone, vocab_size=positive_int(vocab_size, "vocab_size"))
        backbone = get_backbone(backbone)
    elif isinstance(backbone, (list, tuple)):
        backbone = Backbone(backbone, input_shape=input_shape)
    elif not isinstance(backbone, Backbone):
        raise TypeError(
            "`backbone` must be a name (one of " + ", ".join(sorted(BACKBONES)) + "), a `keras_crosr.backbones."
            f"Backbone` or a list of stages; received {type(backbone).__name__}."
        )
    elif backbone.input_kind == TEXT and vocab_size is not None and vocab_size != backbone.vocab_size:
        raise ValueError(
            f"vocab_size={vocab_size!r} contradicts the vocabulary of backbone {backbone.name!r} "
            f"({backbone.vocab_size}); its embedding and reconstruction are built for that size."
        )
    if backbone.input_kind == IMAGE and (vocab_size is not None or max_length is not None):
        raise ValueError(
            f"Backbone {backbone.name!r} takes images; `vocab_size` and `max_length` are for the text backbone."
        )
    return backbone


def _as_shape(input_shape):
    """``input_shape`` (a sequence or array of sizes) as a tuple; a ``ValueError`` for a number or a string."""
    if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
        raise ValueError(f"`input_shape` must be a sequence of sizes, e.g. (28, 28, 1); received {input_shape!r}.")
    return tuple(input_shape)


def _resolve_input_shape(backbone, input_shape, max_length):
    if backbone.input_kind == TEXT:
        lengths = {} if max_length is None else {"max_length": max_length}
        for source, given in (("input_shape", input_shape), (f"backbone {backbone.name!r}", backbone.input_shape)):
            if given is None:
                continue
            given = _as_shape(given)
            if len(given) != 1:
                raise ValueError(
                    f"Backbone {backbone.name!r} takes text, token ids of shape (max_length,), but was given the "
                    f"input_shape {given} (images?)."
                )
            lengths[f"{source} {given}"] = given[0]
        if len(set(lengths.values())) > 1:
            raise ValueError(f"The text lengths contradict each other: {lengths}.")
        max_length = next(iter(lengths.values()), None)
        if max_length is None:
            raise ValueError(f"The text backbone {backbone.name!r} needs `max_length` (the padded text length).")
        return (positive_int(max_length, "max_length"),)
    input_shape = backbone.input_shape if input_shape is None else _as_shape(input_shape)
    if input_shape is None:
        raise ValueError(f"Backbone {backbone.name!r} has no default input shape: pass `input_shape=(H, W, C)`.")
    if len(input_shape) != 3:
        raise ValueError(
            f"Backbone {backbone.name!r} takes images of shape (H, W, C), but was given the input_shape {input_shape}"
            + (" (text token ids? use the 'text_cnn' backbone)." if len(input_shape) == 1 else ".")
        )
    if not all(is_integer(d, 1) for d in input_shape):
        raise ValueError(
            f"input_shape {input_shape} must be fully known positive integers (the decoder needs the sizes)."
        )
    return tuple(int(d) for d in input_shape)


def _run(block, x, what, backbone, input_shape):
    try:
        return block(x)
    except ValueError as error:
        raise ValueError(
            f"Backbone {backbone.name!r} cannot take input_shape {input_shape}: {what} failed: {error}"
        ) from error


def _check_stage_output(x, index, backbone, input_shape):
    rank = 3 if backbone.input_kind == TEXT else 4
    shape = tuple(x.shape)
    if len(shape) != rank or any(d is None or d <= 0 for d in shape[1:]):
        expected = "(batch, T, C)" if rank == 3 else "(batch, H, W, C)"
        raise ValueError(
            f"Backbone {backbone.name!r} cannot take input_shape {input_shape}: stage {index} gives {shape}, "
            f"expected a non-empty {expected}."
        )


def _check_scales(backbone, input_shape, taps):
    """The decoder up-samples by integer factors: each resolution must divide the one below it."""
    spatial = tuple(input_shape) if backbone.input_kind == TEXT else tuple(input_shape[:-1])
    sizes = [spatial] + [tuple(t.shape[1:-1]) for t in taps]
    if backbone.input_kind == TEXT and any(size != spatial for size in sizes):
        raise ValueError(f"Text stages must keep the sequence length {spatial[0]}; got {sizes[1:]}.")
    for level, (fine, coarse) in enumerate(zip(sizes, sizes[1:]), start=1):
        if any(f % c for f, c in zip(fine, coarse)):
            below = "the input" if level == 1 else f"stage {level - 1}"
            raise ValueError(
                f"Backbone {backbone.name!r} cannot take input_shape {input_shape}: stage {level} output size "
                f"{coarse} does not divide the size {fine} of {below}, so the decoder cannot up-sample back; "
                "use an input size that every down-sampling divides evenly."
            )


def build_dhrnet(
    backbone,
    *,
    num_classes,
    input_shape=None,
    latent_dim=None,
    variant="dhrnet",
    dropout=DEFAULT_DROPOUT,
    vocab_size=None,
    max_length=None,
    name=None,
):
    """Builds a DHRNet (or its LadderNet / supervised-only ablations) as a functional ``keras.Model``.

    Args:
        backbone: a name (``"mnist_cnn"``, ``"cifar_cnn"``, ``"densenet92"``, ``"neal_cnn"``, ``"text_cnn"``),
            a :class:`keras_crosr.backbones.Backbone`, or a list of image stages (Keras layers/blocks; Flatten
            head), see :mod:`keras_crosr.backbones`.
        num_classes: N, the number of known classes (a Python or NumPy integer).
        input_shape: ``(H, W, C)`` for images (default: the backbone's), ``(max_length,)`` for text; any sequence
            or array of Python or NumPy integers, e.g. ``x.shape[1:]``.
        latent_dim: width of each ``z_l`` (default: the backbone's, 32 for images and 25 for text).
        variant: ``"dhrnet"`` (bottleneck laterals), ``"laddernet"`` (identity laterals) or ``"supervised"``
            (classifier only: no laterals, no decoder, output ``logits`` only).
        dropout: rate of the dropout after every stage and before the classifier (the paper uses dropout in
            intermediate layers instead of the ladder network's noise); the laterals read the dropped-out
            stage outputs, as a ladder network's encoder reads its noisy ones. 0 disables it.
        vocab_size, max_length: text backbone only.
        name: model name (default ``"{variant}_{backbone}"``).

    Returns:
        A ``keras.Model`` with dict outputs ``{"logits", "latent", "reconstruction"}`` (supervised:
        ``{"logits"}``), all float32 also under a mixed-precision policy.

    Raises:
        ValueError: bad arguments, a backbone whose stages do not fit the input, or
            ``keras.config.image_data_format()`` set to ``"channels_first"``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"Unknown variant {variant!r}; valid variants are {', '.join(VARIANTS)}.")
    if keras.config.image_data_format() != "channels_last":
        raise ValueError(
            "build_dhrnet builds channels-last networks (images (batch, H, W, C), feature maps (..., C)), but "
            f"keras.config.image_data_format() is {keras.config.image_data_format()!r}, which the backbones' "
            "Keras layers would follow: call keras.config.set_image_data_format('channels_last') first."
        )
    num_classes = positive_int(num_classes, "num_classes")
    if num_classes < 2:
        raise ValueError("`num_classes` must be at least 2: a softmax over one class is constant, so the classifier "
                         f"would learn nothing; received num_classes={num_classes}.")
    if not is_real(dropout) or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be a rate in [0, 1); received dropout={dropout!r}.")
    dropout = float(dropout)
    if latent_dim is not None:
        latent_dim = positive_int(latent_dim, "latent_dim")
        if variant != "dhrnet":
            raise ValueError(
                f"`latent_dim` sets the width of DHRNet's bottlenecks; variant={variant!r} has none "
                "(LadderNet's latent is the pooled stage outputs, a supervised network has no latent)."
            )
    backbone = _resolve_backbone(backbone, input_shape, vocab_size, max_length)
    input_shape = _resolve_input_shape(backbone, input_shape, max_length)
    latent_dim = backbone.latent_dim if latent_dim is None else latent_dim
    if variant == "dhrnet":
        positive_int(latent_dim, "latent_dim")

    if backbone.input_kind == TEXT:
        inputs = keras.Input(input_shape, dtype="int32", name="tokens")
        x = _run(backbone.embedding, inputs, "the embedding", backbone, input_shape)
    else:
        inputs = keras.Input(input_shape, name="images")
        x = inputs
    taps = []
    for index, stage in enumerate(backbone.stages, start=1):
        x = _run(stage, x, f"stage {index}", backbone, input_shape)
        _check_stage_output(x, index, backbone, input_shape)
        if dropout:
            x = layers.Dropout(dropout, name=f"stage{index}_dropout")(x)
        taps.append(x)
    features = _run(backbone.make_head, x, "the head", backbone, input_shape)
    if len(features.shape) != 2:
        raise ValueError(
            f"The head of backbone {backbone.name!r} must give (batch, features); got {tuple(features.shape)}."
        )
    if dropout:
        features = layers.Dropout(dropout, name="head_dropout")(features)
    outputs = {"logits": layers.Dense(num_classes, dtype="float32", name="logits")(features)}

    if variant != "supervised":
        _check_scales(backbone, input_shape, taps)
        pooling = layers.GlobalMaxPooling1D if backbone.input_kind == TEXT else layers.GlobalMaxPooling2D
        pooled, reprojections = [], []
        for index, tap in enumerate(taps, start=1):
            z, reprojection = LateralBottleneck(
                latent_dim, identity=variant == "laddernet", name=f"lateral{index}"
            )(tap)
            pooled.append(pooling(dtype="float32", name=f"z{index}_pool")(z))
            reprojections.append(reprojection)
        outputs["latent"] = layers.Concatenate(dtype="float32", name="latent")(pooled)

        top_down = None
        for index in range(len(taps), 0, -1):
            lateral = reprojections[index - 1]
            top_down = TopDownCombiner(name=f"decoder{index}")(lateral if top_down is None else [top_down, lateral])
        if backbone.input_kind == TEXT:
            reconstruction = layers.Dense(backbone.vocab_size, dtype="float32", name="reconstruction")(top_down)
        else:
            factors = tuple(i // t for i, t in zip(input_shape[:-1], top_down.shape[1:-1]))
            if any(f > 1 for f in factors):
                top_down = layers.UpSampling2D(factors, name="decoder_upsampling")(top_down)
            reconstruction = layers.Conv2D(
                input_shape[-1], 3, padding="same", dtype="float32", name="reconstruction"
            )(top_down)
        outputs["reconstruction"] = reconstruction
    return keras.Model(inputs, outputs, name=name or f"{variant}_{backbone.name}")


def _output_dict(model):
    outputs = getattr(model, "output", None)  # None for a model that was never called (subclassed, Sequential)
    if not isinstance(outputs, dict) or "logits" not in outputs:
        raise ValueError(
            f"{model!r} is not a DHRNet-style model: expected dict outputs 'logits', 'latent' and "
            "'reconstruction' ('logits' only for variant='supervised'); build it with keras_crosr.build_dhrnet."
        )
    return outputs


def _is_text(model):
    return "int" in str(model.inputs[0].dtype)


@keras.saving.register_keras_serializable(package="keras_crosr")
class ImageReconstructionError(keras.losses.Loss):
    """The image reconstruction loss: the mean squared error of each image, over its pixels and channels.

    ``call`` returns one value per image, ``(batch,)``, so that a ``sample_weight`` of shape ``(batch,)`` weights
    whole images (``keras.losses.MeanSquaredError`` gives ``(batch, H, W)``, which Keras cannot weight by
    sample). Unweighted, the batch loss equals the mean squared error over every pixel of the batch.
    """

    def __init__(self, name="l2", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        squared = ops.square(y_pred - ops.cast(y_true, y_pred.dtype))
        return ops.mean(squared, axis=tuple(range(1, len(squared.shape))))


def compile_dhrnet(model, optimizer=None, classification_weight=1.0, reconstruction_weight=1.0, **compile_kwargs):
    """Compiles a ``build_dhrnet`` model with the paper's joint loss (section 4.2, "Training").

    ``classification_weight * softmax_cross_entropy(y, logits) + reconstruction_weight * reconstruction_loss``,
    where the reconstruction loss is the mean squared error (the l2 distance, averaged over the pixels: see
    :class:`ImageReconstructionError`) for images and the token cross entropy of the one-hot words for text,
    padding positions (id 0) excluded.

    Args:
        model: a model from :func:`build_dhrnet` (a supervised one gets the classification loss only).
        optimizer: any Keras optimizer; default SGD with learning rate 0.01 and momentum 0.9 (the paper trains
            with SGD), its gradients clipped to a global norm of 5: unclipped, the decoder's first steps can
            blow up (``cifar_cnn`` on 2,560 random CIFAR-10 training images, batch 128: NaN within the first
            epoch for seed 0; on 640 16x16 noise images, batch 64: for seeds 0, 2, 3 and 4 of 0-4). Under a
            ``tf.distribute`` strategy, Keras clips each replica's gradients before summing them, so while the
            clip acts a distributed run departs from the one-device run: pass an unclipped optimizer where the
            two must match exactly.
        classification_weight, reconstruction_weight: non-negative loss weights (paper: 1.0 and 1.0).
        **compile_kwargs: passed to ``model.compile``. Keras computes compile ``metrics`` of a dict-output model
            only when every output has a target, and ``latent`` has none, so ``metrics`` and ``weighted_metrics``
            raise a ``ValueError`` except with ``variant="supervised"``: measure the closed-set accuracy on
            ``model.predict(x)["logits"]`` instead.

    Returns:
        The compiled model.
    """
    outputs = _output_dict(model)
    weights = {"classification_weight": classification_weight, "reconstruction_weight": reconstruction_weight}
    for label, value in weights.items():
        if not is_real(value) or not 0 <= value < float("inf"):
            raise ValueError(f"`{label}` must be a non-negative number; received {value!r}.")
    if optimizer is None:
        optimizer = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, global_clipnorm=5.0)
    loss = {"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True, name="classification")}
    loss_weights = {"logits": float(classification_weight)}
    if "reconstruction" in outputs:
        if _is_text(model):
            loss["reconstruction"] = keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, ignore_class=0, name="token_cross_entropy"
            )
        else:
            loss["reconstruction"] = ImageReconstructionError()
        loss_weights["reconstruction"] = float(reconstruction_weight)
    untargeted = sorted(set(outputs) - set(loss))
    for key in ("metrics", "weighted_metrics"):
        if untargeted and compile_kwargs.get(key):
            raise ValueError(
                f"`{key}` cannot be computed for model {model.name!r}: Keras needs a target for every output and "
                f"{untargeted} has none. Measure the closed-set accuracy on `model.predict(x)['logits']`, or "
                "compile a variant='supervised' model."
            )
    model.compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights, **compile_kwargs)
    return model


def _rows(array):
    shape = getattr(array, "shape", None)
    return shape[0] if shape is not None and len(shape) else None


def _check_labels(y, num_classes):
    """Refuses labels that the sparse cross-entropy would fail on deep inside the training step."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y must hold integer class ids of shape (n,), not one-hot rows; got shape {y.shape}.")
    if y.dtype.kind not in "iuf" or y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise ValueError(f"y must hold integer class ids; got dtype {y.dtype}" +
                         (" with non-integer values." if y.dtype.kind == "f" else "."))
    if y.size and (y.min() < 0 or num_classes is not None and y.max() >= num_classes):
        allowed = ("non-negative class ids" if num_classes is None else
                   f"class ids in 0..{num_classes - 1} (the model's logits have {num_classes} columns)")
        raise ValueError(f"y must hold {allowed}; got values in [{y.min()}, {y.max()}].")


def dhrnet_targets(x, y, *, model=None):
    """The target dict for ``model.fit``: ``{"logits": y, "reconstruction": x}``.

    Args:
        x: the inputs (images ``(n, H, W, C)`` float32 or token ids ``(n, T)``), also the reconstruction target.
        y: integer labels ``(n,)`` in ``0..N-1`` (NumPy labels are checked: non-negative integers, and below
            ``N`` when ``model`` is given).
        model: optional; when it has no ``reconstruction`` output (``variant="supervised"``) the target is
            ``{"logits": y}`` only, so pass it for a supervised network.

    Works on NumPy arrays and on tensors (e.g. inside ``tf.data.Dataset.map``).
    """
    x_rows, y_rows = _rows(x), _rows(y)
    if x_rows is not None and y_rows is not None and x_rows != y_rows:
        raise ValueError(f"x and y must have the same number of rows; received {x_rows} and {y_rows}.")
    outputs = None if model is None else _output_dict(model)
    if isinstance(y, (np.ndarray, list, tuple)):  # tensors (in a tf.data map) are left to the loss
        _check_labels(np.asarray(y), None if outputs is None else outputs["logits"].shape[-1])
    targets = {"logits": y}
    if outputs is None or "reconstruction" in outputs:
        targets["reconstruction"] = x
    return targets


def inference_model(model):
    """The decoder-free model for test time: outputs ``{"logits", "latent"}`` (supervised: ``{"logits"}``).

    It shares the weights of ``model`` and has none of the decoder's layers; its laterals still produce the
    re-projections h~_l, which it leaves unused. A model that is decoder-free already (an inference model, a
    supervised network) is returned as it is.
    """
    outputs = _output_dict(model)
    kept = {key: outputs[key] for key in ("logits", "latent") if key in outputs}
    if len(kept) == len(outputs):
        return model
    return keras.Model(model.input, kept, name=f"{model.name}_inference")
