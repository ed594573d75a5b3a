"""Classification backbones cut into stages for DHRNet: the five networks of the paper and user stages.

A DHRNet attaches a lateral connection after every stage of its backbone (Eq. 7: ``x_{l+1} = f_l(x_l)``
with ``f_l`` "a series of convolutional layers between downsampling layers in a plain CNN or a densely-connected
block in DenseNet"). A :class:`Backbone` is a recipe: ``stages`` and ``head`` are callables that map a tensor to
a tensor and create their Keras layers when called, so one backbone can build several models.

Bring your own network by listing its stages::

    backbone = Backbone(
        stages=[
            keras.Sequential([layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D()]),
            keras.Sequential([layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D()]),
        ],
        head=layers.GlobalAveragePooling2D(),
        input_shape=(32, 32, 3),
    )
    model = build_dhrnet(backbone, num_classes=10)

(``build_dhrnet(list_of_stages, num_classes=..., input_shape=...)`` does the same with a Flatten head.)
Keras layer instances passed as stages are used as they are: building two models from the same instances shares
their weights. The decoder up-samples by integer factors, so every stage must keep or divide the spatial size of
the one before by an integer.
"""

from keras import layers

from keras_crosr._validation import is_integer

IMAGE = "image"
TEXT = "text"


class Backbone:
    """A classification network as a list of stages, for :func:`keras_crosr.build_dhrnet`.

    Args:
        stages: list of callables ``tensor -> tensor`` (Keras layers, ``keras.Sequential`` blocks, or functions
            that create layers when called). Stage ``l`` produces ``x_l``, the input of lateral ``l``.
            Images: ``(batch, H, W, C)``; text: ``(batch, T, C)`` with ``T`` kept by every stage.
        head: callable mapping the last stage output to the feature vector ``(batch, F)`` read by the final
            ``Dense(num_classes)``. ``None``: ``Flatten``.
        input_kind: ``"image"`` (float inputs ``(batch, H, W, C)``) or ``"text"`` (int token ids ``(batch, T)``).
        input_shape: default input shape without the batch axis, or ``None`` (then ``build_dhrnet`` needs one).
        latent_dim: default width of each ``z_l`` (paper: 32 for images, 25 for text).
        embedding: text only: callable mapping token ids ``(batch, T)`` to vectors ``(batch, T, E)``.
        vocab_size: text only: size of the vocabulary (the reconstruction predicts a token per position).
        name: used in model names and error messages.
    """

    def __init__(
        self,
        stages,
        head=None,
        *,
        input_kind=IMAGE,
        input_shape=None,
        latent_dim=32,
        embedding=None,
        vocab_size=None,
        name="custom",
    ):
        stages = list(stages) if isinstance(stages, (list, tuple)) else None
        if not stages:
            raise ValueError("`stages` must be a non-empty list of Keras layers/blocks or callables.")
        for index, stage in enumerate(stages, start=1):
            if not callable(stage):
                raise ValueError(f"Stage {index} is not callable: {stage!r}.")
        if input_kind not in (IMAGE, TEXT):
            raise ValueError(f"`input_kind` must be 'image' or 'text'; received {input_kind!r}.")
        if input_kind == TEXT:
            if embedding is None or vocab_size is None:
                raise ValueError("A text backbone needs `embedding` and `vocab_size`.")
            if not is_integer(vocab_size, 2):
                raise ValueError(f"`vocab_size` must be an integer >= 2; received {vocab_size!r}.")
        elif embedding is not None or vocab_size is not None:
            raise ValueError("`embedding` and `vocab_size` are for text backbones (input_kind='text') only.")
        if not is_integer(latent_dim, 1):
            raise ValueError(f"`latent_dim` must be a positive integer; received latent_dim={latent_dim!r}.")
        self.stages = stages
        self.head = head
        self.input_kind = input_kind
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.latent_dim = int(latent_dim)
        self.embedding = embedding
        self.vocab_size = None if vocab_size is None else int(vocab_size)
        self.name = name

    def make_head(self, x):
        """Applies the head (``Flatten`` when none was given) to the last stage output."""
        if self.head is None:
            return layers.Flatten(name="head_flatten")(x)
        return self.head(x)

    def __repr__(self):
        return (
            f"Backbone(name={self.name!r}, input_kind={self.input_kind!r}, stages={len(self.stages)}, "
            f"input_shape={self.input_shape}, latent_dim={self.latent_dim})"
        )


def _batch_norm(name):
    """Batch normalization with Chainer's defaults (the paper's framework): moving averages decay 0.9, eps 2e-5.

    Keras' default momentum 0.99 leaves the moving statistics far from the batch statistics for the first
    few hundred steps: after 32 steps the plain CNN classified 12 % of its training images correctly in training
    mode and 1 % in inference mode, the mode the open-set heads see.
    """
    return layers.BatchNormalization(momentum=0.9, epsilon=2e-5, name=name)


def _conv_relu(x, filters, name):
    return layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)(x)


def _conv_bn(x, filters, name, strides=1, activation="relu"):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = _batch_norm(f"{name}_bn")(x)
    if activation == "leaky_relu":
        return layers.LeakyReLU(negative_slope=0.2, name=f"{name}_lrelu")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def mnist_cnn():
    """The paper's seven-layer plain CNN for MNIST (section 5).

    Five 3x3 convolutions with 100 channels and ReLU, 2x2 max-pooling (stride 2) after every two
    convolutions, then fully connected layers of 500 and N units. Laterals go "after every pooling layer",
    so there are two stages::

        stage 1: conv1, conv2, pool   -> x_1 (H/2, W/2, 100)
        stage 2: conv3, conv4, pool   -> x_2 (H/4, W/4, 100)
        head:    conv5, flatten, FC 500 + ReLU   (the fifth convolution has no pooling after it)

    The final ``FC N`` is added by ``build_dhrnet``. Default input ``(28, 28, 1)``, latent 32.
    """

    def stage(index):
        def block(x):
            x = _conv_relu(x, 100, f"block{index}_conv1")
            x = _conv_relu(x, 100, f"block{index}_conv2")
            return layers.MaxPooling2D(2, name=f"block{index}_pool")(x)

        return block

    def head(x):
        x = _conv_relu(x, 100, "block3_conv1")
        x = layers.Flatten(name="flatten")(x)
        return layers.Dense(500, activation="relu", name="fc1")(x)

    return Backbone([stage(1), stage(2)], head, input_shape=(28, 28, 1), latent_dim=32, name="mnist_cnn")


def cifar_cnn(fc_units=512):
    """The paper's 13-layer VGG-style plain CNN for CIFAR-10 (section 5).

    Three convolutional blocks of 64, 128 and 256 channels with 2, 2 and 4 convolutions (3x3), each block
    ending with 2x2 max-pooling, then the fully connected block ``FC fc_units + ReLU, FC N``: 8 convolutions,
    3 poolings and 2 fully connected layers make the 13 layers. The paper does not give the hidden width of
    the fully connected block (512 here, as in VGG networks for CIFAR). Every convolution is followed by batch
    normalization and ReLU, the usual form of VGG on CIFAR, without which Table 1's 0.93 is out of reach.
    One lateral after each block::

        stage 1 -> x_1 (H/2, W/2, 64);  stage 2 -> x_2 (H/4, W/4, 128);  stage 3 -> x_3 (H/8, W/8, 256)

    Default input ``(32, 32, 3)``, latent 32.
    """

    def stage(index, filters, convs):
        def block(x):
            for conv in range(1, convs + 1):
                x = _conv_bn(x, filters, f"block{index}_conv{conv}")
            return layers.MaxPooling2D(2, name=f"block{index}_pool")(x)

        return block

    def head(x):
        x = layers.Flatten(name="flatten")(x)
        return layers.Dense(fc_units, activation="relu", name="fc1")(x)

    stages = [stage(1, 64, 2), stage(2, 128, 2), stage(3, 256, 4)]
    return Backbone(stages, head, input_shape=(32, 32, 3), latent_dim=32, name="cifar_cnn")


def densenet_layers_per_block(depth, bottleneck=False):
    """Layers per dense block of a 3-block CIFAR DenseNet of ``depth``, as Huang et al. count it.

    ``depth = 3 * n + 4`` (one convolution per layer) or ``6 * n + 4`` with bottlenecks, the 4 being the first
    convolution, the two transitions and the classifier. Huang et al.'s reference code (``N = (depth - 4) / 3``,
    then a loop ``for i = 1, N``) keeps the integer part when ``depth - 4`` does not divide: depth 92 gives
    29 layers per block (bottleneck: 14).
    """
    if not is_integer(depth, 10):
        raise ValueError(f"`depth` must be an integer >= 10; received {depth!r}.")
    return (int(depth) - 4) // (6 if bottleneck else 3)


def densenet92(depth=92, growth_rate=24, bottleneck=False, initial_channels=None):
    """DenseNet for CIFAR (Huang et al., CVPR 2017) with the paper's depth 92 and growth rate 24.

    The basic DenseNet of Huang et al. (the family of their "DenseNet (L=100, k=24)"): a 3x3 convolution to
    ``initial_channels`` (16; with ``bottleneck=True``, twice the growth rate), three dense blocks of
    :func:`densenet_layers_per_block` layers (29 for depth 92), each layer ``BN-ReLU-Conv3x3(growth_rate)``
    concatenated to its input (``bottleneck=True``: ``BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k)`` and transitions
    that halve the channels, i.e. DenseNet-BC), transitions ``BN-ReLU-Conv1x1-AvgPool2`` between blocks, then
    ``BN-ReLU-GlobalAveragePooling`` and the classifier. Convolutions have no bias (each is followed by batch
    normalization). One lateral after each dense block; the transition opens the next stage::

        stage 1: conv, dense block 1                -> x_1 (H,   W,   c1)   c1 = 16 + 29 * 24 = 712
        stage 2: transition 1, dense block 2        -> x_2 (H/2, W/2, c2)   c2 = c1 + 696 = 1408
        stage 3: transition 2, dense block 3        -> x_3 (H/4, W/4, c3)   c3 = c2 + 696 = 2104

    Default input ``(32, 32, 3)``, latent 32. The decoder's 3x3 convolutions run at these widths, so the
    DHRNet (10 classes) has 91.3M parameters to the classifier's 22.6M (LadderNet: 88.8M).
    """
    n_layers = densenet_layers_per_block(depth, bottleneck)
    if not is_integer(growth_rate, 1):
        raise ValueError(f"`growth_rate` must be a positive integer; received {growth_rate!r}.")
    depth, growth_rate = int(depth), int(growth_rate)
    if initial_channels is None:
        initial_channels = 2 * growth_rate if bottleneck else 16
    compression = 0.5 if bottleneck else 1.0

    def dense_block(x, index):
        for layer in range(1, n_layers + 1):
            prefix = f"block{index}_layer{layer}"
            y = _batch_norm(f"{prefix}_bn")(x)
            y = layers.ReLU(name=f"{prefix}_relu")(y)
            if bottleneck:
                y = layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{prefix}_conv1x1")(y)
                y = _batch_norm(f"{prefix}_bn2")(y)
                y = layers.ReLU(name=f"{prefix}_relu2")(y)
            y = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{prefix}_conv")(y)
            x = layers.Concatenate(name=f"{prefix}_concat")([x, y])
        return x

    def transition(x, index):
        channels = int(x.shape[-1] * compression)
        x = _batch_norm(f"transition{index}_bn")(x)
        x = layers.ReLU(name=f"transition{index}_relu")(x)
        x = layers.Conv2D(channels, 1, use_bias=False, name=f"transition{index}_conv")(x)
        return layers.AveragePooling2D(2, name=f"transition{index}_pool")(x)

    def first_stage(x):
        x = layers.Conv2D(initial_channels, 3, padding="same", use_bias=False, name="conv0")(x)
        return dense_block(x, 1)

    def later_stage(index):
        return lambda x: dense_block(transition(x, index - 1), index)

    def head(x):
        x = _batch_norm("final_bn")(x)
        x = layers.ReLU(name="final_relu")(x)
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)

    name = "densenet92" if (depth, growth_rate, bottleneck) == (92, 24, False) else f"densenet{depth}_k{growth_rate}"
    return Backbone(
        [first_stage, later_stage(2), later_stage(3)], head, input_shape=(32, 32, 3), latent_dim=32, name=name
    )


def neal_cnn():
    """The 9-convolution + 1 FC classifier of Neal et al. (ECCV 2018, "Open Set Learning with Counterfactual
    Images"), which the paper uses for every data set of its Table 5 (MNIST, SVHN, TinyImageNet).

    As released in github.com/lwneal/counterfactual-open-set (``network_definitions.py``, the 32x32 classifier):
    three groups of three 3x3 convolutions without bias, each followed by batch normalization and
    LeakyReLU(0.2), with 64, 64, 128 | 128, 128, 128 | 128, 128, 128 filters, the last convolution of each group
    having stride 2; then one fully connected layer from the flattened ``(H/8, W/8, 128)`` map to the N classes.
    The reference applies channel-wise Dropout2d(0.2) to the input and before the second and third groups;
    ``build_dhrnet``'s (element-wise) dropout after each stage and before the classifier, as for every backbone,
    takes their place. One lateral after each group::

        stage 1 -> x_1 (H/2, W/2, 128);  stage 2 -> x_2 (H/4, W/4, 128);  stage 3 -> x_3 (H/8, W/8, 128)

    Default input ``(32, 32, 3)`` (TinyImageNet: ``(64, 64, 3)``), latent 32.
    """

    def stage(index, filters):
        def block(x):
            for conv, (channels, strides) in enumerate(zip(filters, (1, 1, 2)), start=1):
                x = _conv_bn(x, channels, f"block{index}_conv{conv}", strides=strides, activation="leaky_relu")
            return x

        return block

    def head(x):
        return layers.Flatten(name="flatten")(x)

    stages = [stage(1, (64, 64, 128)), stage(2, (128, 128, 128)), stage(3, (128, 128, 128))]
    return Backbone(stages, head, input_shape=(32, 32, 3), latent_dim=32, name="neal_cnn")


def text_cnn(vocab_size, embedding_dim=300, filters=100, kernel_sizes=(3, 4, 5)):
    """The shallow-and-wide text CNN of Kim (EMNLP 2014) used by the paper for DBpedia.

    Token ids ``(batch, T)`` -> embedding ``(batch, T, embedding_dim)`` -> one stage made of parallel
    convolutions of widths 3, 4 and 5 with ``filters`` (100) channels each and ReLU, concatenated to
    ``x_1 (batch, T, 300)`` -> max over time -> the classifier. The convolutions use ``"same"`` padding so that
    ``x_1`` keeps one vector per token: this is the paper's "W = (maximum text length) and H = 1" form, in which
    the decoder reconstructs every token. One lateral (the paper's single bottleneck of width 25).
    """
    if not is_integer(vocab_size, 2):
        raise ValueError(f"`vocab_size` must be an integer >= 2; received {vocab_size!r}.")
    vocab_size = int(vocab_size)
    kernel_sizes = tuple(kernel_sizes)

    def embedding(ids):
        return layers.Embedding(vocab_size, embedding_dim, name="embedding")(ids)

    def stage(x):
        branches = [
            layers.Conv1D(filters, width, padding="same", activation="relu", name=f"conv_w{width}")(x)
            for width in kernel_sizes
        ]
        if len(branches) == 1:
            return branches[0]
        return layers.Concatenate(name="conv_concat")(branches)

    return Backbone(
        [stage],
        lambda x: layers.GlobalMaxPooling1D(name="max_over_time")(x),
        input_kind=TEXT,
        latent_dim=25,
        embedding=embedding,
        vocab_size=vocab_size,
        name="text_cnn",
    )


BACKBONES = {
    "mnist_cnn": mnist_cnn,
    "cifar_cnn": cifar_cnn,
    "densenet92": densenet92,
    "neal_cnn": neal_cnn,
    "text_cnn": text_cnn,
}


def get_backbone(name, **kwargs):
    """Returns the named :class:`Backbone`; ``kwargs`` go to its builder (``text_cnn`` needs ``vocab_size``)."""
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}; valid names are {', '.join(sorted(BACKBONES))}.")
    return BACKBONES[name](**kwargs)
