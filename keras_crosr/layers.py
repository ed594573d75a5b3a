"""The two building blocks of a DHRNet (Yoshihashi et al., CVPR 2019, section 4.2, Eq. 7 and Fig. 3).

For stage ``l`` of the classification network, with ``x_l`` the output of stage ``l``:

    z_l = h_l(x_l)                          LateralBottleneck (h_l: ReLU then convolution)
    x~_l = g_l(x~_{l+1} + h~_l(z_l))        TopDownCombiner (g_l), h~_l from LateralBottleneck

Both layers take 2-D feature maps ``(batch, H, W, C)`` and 1-D sequences ``(batch, T, C)`` (the text network:
``W`` = maximum text length, ``H`` = 1), and are written with ``keras.ops`` only.
"""

import keras
from keras import ops

from keras_crosr._validation import is_integer


def _own_initializer(initializer, index):
    """A copy of ``initializer`` for the ``index``-th weight of a layer.

    A Keras random initializer fixes its seed when it is created and returns the same values at every call, so
    two weights of one layer drawn from one initializer start as copies of each other (h~_l would start as h_l
    re-shaped). Each weight gets its own copy: an unseeded one draws a new seed (reproducible under
    ``keras.utils.set_random_seed``), a seeded one is offset by ``index``. A plain function is used as it is.
    """
    if not isinstance(initializer, keras.initializers.Initializer):
        return initializer
    config = initializer.get_config()
    seed = config.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        config = dict(config, seed=seed + index)
    return type(initializer).from_config(config)


def _conv(x, kernel, bias):
    """``same``-padded convolution plus bias, channels last whatever ``keras.config.image_data_format()`` says
    (the kernels are built for ``(..., C)`` inputs)."""
    return ops.conv(x, kernel, padding="same", data_format="channels_last") + bias


def _check_rank(layer, shape, what):
    if len(shape) not in (3, 4):
        raise ValueError(
            f"{layer.__class__.__name__} {layer.name!r} expects {what} of shape (batch, H, W, C) or (batch, T, C); "
            f"received shape {tuple(shape)}."
        )
    if shape[-1] is None:
        raise ValueError(
            f"{layer.__class__.__name__} {layer.name!r} needs a known channel count; received shape {tuple(shape)}."
        )


@keras.saving.register_keras_serializable(package="keras_crosr")
class LateralBottleneck(keras.layers.Layer):
    """Lateral connection of a DHRNet stage: the bottleneck h_l and its re-projection h~_l.

    ``z = conv_h(relu(x))`` compresses the stage output ``x_l`` to ``latent_dim`` channels (the latent
    representation ``z_l``); ``conv_h~(z)`` re-projects it to the channel count of ``x_l`` for the decoder.
    Both convolutions use ``"same"`` padding, so the spatial axes are kept. With ``identity=True`` both maps
    are the identity (the LadderNet lateral of the paper): ``z = x`` and no weights are created.

    Args:
        latent_dim: channels of ``z_l`` (paper: 32 for images, 25 for text). Ignored (may be None) when
            ``identity=True``.
        kernel_size: size of both convolution kernels (square for 2-D maps).
        identity: LadderNet mode.
        kernel_initializer, bias_initializer: initializers of both convolutions.

    Call arguments:
        inputs: ``x_l`` of shape ``(batch, H, W, C)`` or ``(batch, T, C)``.

    Returns:
        The tuple ``(z, reprojection)``: ``z`` of shape ``(batch, H, W, latent_dim)`` or ``(batch, T, latent_dim)``
        (``C`` in identity mode) and ``h~(z)`` of the shape of ``inputs`` (which the decoder-free inference model
        leaves unused).
    """

    def __init__(
        self,
        latent_dim=None,
        kernel_size=3,
        identity=False,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not identity:
            if not is_integer(latent_dim, 1):
                raise ValueError(f"`latent_dim` must be a positive integer; received latent_dim={latent_dim!r}.")
        if not is_integer(kernel_size, 1):
            raise ValueError(f"`kernel_size` must be a positive integer; received kernel_size={kernel_size!r}.")
        self.latent_dim = None if identity else int(latent_dim)  # a Python int: get_config is JSON
        self.kernel_size = int(kernel_size)
        self.identity = bool(identity)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        _check_rank(self, input_shape, "inputs")
        self.channels = input_shape[-1]
        if self.identity:
            return
        window = (self.kernel_size,) * (len(input_shape) - 2)
        self.h_kernel = self.add_weight(
            name="h_kernel",
            shape=window + (self.channels, self.latent_dim),
            initializer=_own_initializer(self.kernel_initializer, 0),
        )
        self.h_bias = self.add_weight(
            name="h_bias", shape=(self.latent_dim,), initializer=_own_initializer(self.bias_initializer, 0)
        )
        self.reprojection_kernel = self.add_weight(
            name="reprojection_kernel",
            shape=window + (self.latent_dim, self.channels),
            initializer=_own_initializer(self.kernel_initializer, 1),
        )
        self.reprojection_bias = self.add_weight(
            name="reprojection_bias", shape=(self.channels,), initializer=_own_initializer(self.bias_initializer, 1)
        )

    def call(self, inputs):
        if self.identity:
            return inputs, inputs
        z = _conv(ops.relu(inputs), self.h_kernel, self.h_bias)
        reprojection = _conv(z, self.reprojection_kernel, self.reprojection_bias)
        return z, reprojection

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self.identity:
            return input_shape, input_shape
        return input_shape[:-1] + (self.latent_dim,), input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "latent_dim": self.latent_dim,
                "kernel_size": self.kernel_size,
                "identity": self.identity,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_crosr")
class TopDownCombiner(keras.layers.Layer):
    """The decoder step g_l: ``x~_l = relu(conv(up(x~_{l+1}) + h~_l(z_l)))``.

    The top-down tensor ``x~_{l+1}`` comes from the coarser stage ``l+1``. When its channel count differs from
    that of ``x_l``, it is first mapped by a learned linear 1x1 convolution (the decoder's counterpart of the
    channel change made by the encoder stage); this is done at the coarse resolution, which equals projecting
    after the up-sampling but costs fewer operations. It is then up-sampled by nearest-neighbour repetition
    with the integer factors between the two resolutions, added element-wise to the lateral term
    ``h~_l(z_l)``, and passed through a ``kernel_size`` convolution (``"same"`` padding) and a ReLU, as the
    paper chooses "an element-wise sum and subsequent convolutional and ReLU layers".

    The top stage has no ``x~_{L+1}``: call the layer on the lateral term alone, ``x~_L = g_L(h~_L(z_L))``.

    Args:
        kernel_size: size of the convolution kernel (square for 2-D maps).
        kernel_initializer, bias_initializer: initializers of the convolutions.

    Call arguments:
        inputs: ``[top_down, lateral]`` or ``lateral`` alone. ``lateral`` has the shape of ``x_l``,
            ``(batch, H, W, C)`` or ``(batch, T, C)``; ``top_down`` has the same rank, spatial sizes that divide
            those of ``lateral``, and any channel count. With ``top_down``, the spatial sizes of both inputs
            must be static (not None) when the layer is built, as the up-sampling factors are fixed then: build
            the model with a fixed ``input_shape``.

    Returns:
        ``x~_l``, of the shape of ``lateral``.
    """

    def __init__(self, kernel_size=3, kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if not is_integer(kernel_size, 1):
            raise ValueError(f"`kernel_size` must be a positive integer; received kernel_size={kernel_size!r}.")
        self.kernel_size = int(kernel_size)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    @staticmethod
    def _split_shapes(input_shape):
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
            if len(input_shape) != 2:
                raise ValueError(
                    f"TopDownCombiner takes [top_down, lateral] or lateral alone; received {len(input_shape)} inputs."
                )
            return tuple(input_shape[0]), tuple(input_shape[1])
        return None, tuple(input_shape)

    def build(self, input_shape):
        top_shape, lateral_shape = self._split_shapes(input_shape)
        _check_rank(self, lateral_shape, "lateral")
        channels = lateral_shape[-1]
        self.upsampling = ()
        self.projects = False
        self.takes_top_down = top_shape is not None
        if top_shape is not None:
            _check_rank(self, top_shape, "top_down")
            if len(top_shape) != len(lateral_shape):
                raise ValueError(
                    f"TopDownCombiner {self.name!r}: top_down {top_shape} and lateral {lateral_shape} "
                    "must have the same rank."
                )
            factors = []
            for axis, (coarse, fine) in enumerate(zip(top_shape[1:-1], lateral_shape[1:-1]), start=1):
                if coarse is None or fine is None:
                    raise ValueError(
                        f"TopDownCombiner {self.name!r}: the spatial sizes must be known (static) to up-sample "
                        f"the top-down input, but axis {axis} is None (shapes {lateral_shape} and {top_shape}); "
                        "build the model with a fixed `input_shape`, e.g. (32, 32, 3) rather than (None, None, 3)."
                    )
                if coarse <= 0 or fine % coarse:
                    raise ValueError(
                        f"TopDownCombiner {self.name!r}: the spatial size {fine} of the lateral input is not an "
                        f"integer multiple of the size {coarse} of the top-down input on axis {axis} (shapes "
                        f"{lateral_shape} and {top_shape}); choose an input size that every down-sampling divides "
                        "evenly."
                    )
                factors.append(fine // coarse)
            self.upsampling = tuple(factors)
            self.projects = top_shape[-1] != channels
            if self.projects:
                window = (1,) * (len(lateral_shape) - 2)
                self.projection_kernel = self.add_weight(
                    name="projection_kernel",
                    shape=window + (top_shape[-1], channels),
                    initializer=_own_initializer(self.kernel_initializer, 1),
                )
                self.projection_bias = self.add_weight(
                    name="projection_bias", shape=(channels,), initializer=_own_initializer(self.bias_initializer, 1)
                )
        window = (self.kernel_size,) * (len(lateral_shape) - 2)
        self.kernel = self.add_weight(
            name="kernel",
            shape=window + (channels, channels),
            initializer=_own_initializer(self.kernel_initializer, 0),
        )
        self.bias = self.add_weight(
            name="bias", shape=(channels,), initializer=_own_initializer(self.bias_initializer, 0)
        )

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)) != self.takes_top_down:
            built_on = "[top_down, lateral]" if self.takes_top_down else "the lateral term alone"
            raise ValueError(
                f"TopDownCombiner {self.name!r} was built on {built_on}; call it on the same inputs "
                f"(received {type(inputs).__name__})."
            )
        if isinstance(inputs, (list, tuple)):
            top_down, lateral = inputs
            if self.projects:
                top_down = _conv(top_down, self.projection_kernel, self.projection_bias)
            for axis, factor in enumerate(self.upsampling, start=1):
                if factor > 1:
                    top_down = ops.repeat(top_down, factor, axis=axis)
            lateral = top_down + lateral
        else:
            lateral = inputs
        return ops.relu(_conv(lateral, self.kernel, self.bias))

    def compute_output_shape(self, input_shape):
        return self._split_shapes(input_shape)[1]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
