"""The paper's backbones: stage shapes and parameter counts derived from their layer lists."""

import keras
import numpy as np
import pytest
from keras import layers

from keras_crosr.backbones import BACKBONES, Backbone, densenet_layers_per_block, get_backbone
from keras_crosr.dhrnet import build_dhrnet

LATENT = 32
N = 10


def conv(k, c_in, c_out, bias=True):
    """Weights of a convolution with a k (or k x k) kernel."""
    return k * c_in * c_out + (c_out if bias else 0)


def conv_bn(c_in, c_out):
    """3x3 convolution without bias + batch normalization (gamma, beta, moving mean, moving variance)."""
    return conv(9, c_in, c_out, bias=False) + 4 * c_out


def dense(n_in, n_out):
    return n_in * n_out + n_out


def lateral(c, d=LATENT, window=9):
    """h_l: conv c -> d, h~_l: conv d -> c."""
    return conv(window, c, d) + conv(window, d, c)


def combiner(c, c_top=None, window=9):
    """g_l: optional 1x1 projection of the top-down channels, then a conv c -> c."""
    projection = conv(1, c_top, c) if c_top not in (None, c) else 0
    return projection + conv(window, c, c)


def count(model, *prefixes):
    return sum(layer.count_params() for layer in model.layers if layer.name.startswith(prefixes))


def split_counts(model):
    laterals = count(model, "lateral")
    decoder = count(model, "decoder", "reconstruction")
    return model.count_params() - laterals - decoder, laterals, decoder


def stage_shapes(model):
    return [tuple(model.get_layer(f"lateral{i}").input.shape[1:]) for i in range(1, 10) if _has(model, f"lateral{i}")]


def _has(model, name):
    return any(layer.name == name for layer in model.layers)


def test_mnist_cnn_layer_list():
    model = build_dhrnet("mnist_cnn", num_classes=N)
    assert stage_shapes(model) == [(14, 14, 100), (7, 7, 100)]
    # 5 convs 3x3-100, FC 500 on the flattened 7x7x100 map after conv5, FC N.
    encoder = conv(9, 1, 100) + 4 * conv(9, 100, 100) + dense(7 * 7 * 100, 500) + dense(500, N)
    decoder = combiner(100) + combiner(100, 100) + conv(9, 100, 1)
    assert split_counts(model) == (encoder, 2 * lateral(100), decoder)
    assert model.output["latent"].shape[-1] == 2 * LATENT
    convs = [layer for layer in model.layers if isinstance(layer, layers.Conv2D) and layer.name.startswith("block")]
    assert len(convs) == 5 and all(layer.kernel_size == (3, 3) and layer.filters == 100 for layer in convs)


def test_cifar_cnn_layer_list():
    model = build_dhrnet("cifar_cnn", num_classes=N)
    assert stage_shapes(model) == [(16, 16, 64), (8, 8, 128), (4, 4, 256)]
    convs = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 256)]
    encoder = sum(conv_bn(a, b) for a, b in convs) + dense(4 * 4 * 256, 512) + dense(512, N)
    laterals = lateral(64) + lateral(128) + lateral(256)
    decoder = combiner(256) + combiner(128, 256) + combiner(64, 128) + conv(9, 64, 3)
    assert split_counts(model) == (encoder, laterals, decoder)
    assert model.output["reconstruction"].shape[1:] == (32, 32, 3)


def test_neal_cnn_layer_list():
    model = build_dhrnet("neal_cnn", num_classes=6)
    assert stage_shapes(model) == [(16, 16, 128), (8, 8, 128), (4, 4, 128)]
    convs = [(3, 64), (64, 64), (64, 128)] + [(128, 128)] * 6
    encoder = sum(conv_bn(a, b) for a, b in convs) + dense(4 * 4 * 128, 6)
    decoder = 3 * combiner(128) + conv(9, 128, 3)
    assert split_counts(model) == (encoder, 3 * lateral(128), decoder)
    strides = [layer.strides for layer in model.layers if isinstance(layer, layers.Conv2D) and "_conv" in layer.name]
    assert strides == [(1, 1), (1, 1), (2, 2)] * 3


def test_neal_cnn_tiny_imagenet_size():
    model = build_dhrnet("neal_cnn", num_classes=20, input_shape=(64, 64, 3), variant="supervised")
    assert model.count_params() == sum(conv_bn(a, b) for a, b in [(3, 64), (64, 64), (64, 128)] + [(128, 128)] * 6) + (
        dense(8 * 8 * 128, 20)
    )


@pytest.mark.parametrize("name", ["cifar_cnn", "neal_cnn", "densenet92"])
def test_batch_norm_uses_chainer_defaults(name):
    # The paper's framework (Chainer) decays the moving statistics by 0.9; with Keras' 0.99 a short training
    # (the quick budgets) classifies far worse in inference mode than in training mode.
    model = build_dhrnet(get_backbone(name, depth=16) if name == "densenet92" else name, num_classes=4)
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    assert norms and {(layer.momentum, layer.epsilon) for layer in norms} == {(0.9, 2e-5)}


def test_text_cnn_layer_list():
    vocab, length, embed = 60, 12, 300
    model = build_dhrnet("text_cnn", num_classes=4, vocab_size=np.int64(vocab), max_length=length)  # NumPy ints too
    assert stage_shapes(model) == [(length, 300)]
    encoder = vocab * embed + sum(conv(w, embed, 100) for w in (3, 4, 5)) + dense(300, 4)
    decoder = combiner(300, window=3) + dense(300, vocab)
    assert split_counts(model) == (encoder, lateral(300, d=25, window=3), decoder)
    assert model.output["latent"].shape[-1] == 25
    assert model.output["reconstruction"].shape[1:] == (length, vocab)
    assert model.inputs[0].dtype == "int32"


@pytest.fixture(scope="module")
def densenet_model():
    model = build_dhrnet("densenet92", num_classes=N)
    yield model
    keras.backend.clear_session()


def test_densenet_depth_to_layers():
    assert densenet_layers_per_block(92) == 29  # (92 - 4) // 3, as Huang et al.'s reference code
    assert densenet_layers_per_block(92, bottleneck=True) == 14
    assert densenet_layers_per_block(100) == 32 and densenet_layers_per_block(100, bottleneck=True) == 16
    assert densenet_layers_per_block(np.int64(92)) == 29
    for depth in (4, 92.0, True):
        with pytest.raises(ValueError, match="depth"):
            densenet_layers_per_block(depth)


def test_densenet92_layer_list(densenet_model):
    model, k, n = densenet_model, 24, 29
    c1 = 16 + n * k
    c2, c3 = c1 + n * k, c1 + 2 * n * k
    assert (c1, c2, c3) == (712, 1408, 2104)
    assert stage_shapes(model) == [(32, 32, c1), (16, 16, c2), (8, 8, c3)]

    def block(c_in):  # BN-ReLU-Conv3x3(k) per layer, input grows by k
        return sum(4 * (c_in + i * k) + conv(9, c_in + i * k, k, bias=False) for i in range(n))

    def transition(c):  # BN-ReLU-Conv1x1(c)-AvgPool
        return 4 * c + conv(1, c, c, bias=False)

    encoder = (
        conv(9, 3, 16, bias=False) + block(16) + transition(c1) + block(c1) + transition(c2) + block(c2)
        + 4 * c3 + dense(c3, N)
    )
    laterals = lateral(c1) + lateral(c2) + lateral(c3)
    decoder = combiner(c3) + combiner(c2, c3) + combiner(c1, c2) + conv(9, c1, 3)
    assert split_counts(model) == (encoder, laterals, decoder)
    n_convs = sum(isinstance(layer, layers.Conv2D) and not layer.name.startswith(("decoder", "recon"))
                  for layer in model.layers)
    assert n_convs == 1 + 3 * n + 2  # + the classifier = 91 weighted layers of the 92-deep recipe


def test_densenet92_forward(densenet_model):
    out = densenet_model.predict(np.random.rand(1, 32, 32, 3).astype("float32"), verbose=0)
    assert out["logits"].shape == (1, N) and out["latent"].shape == (1, 3 * LATENT)
    assert out["reconstruction"].shape == (1, 32, 32, 3)


def test_densenet_bc_variant():
    backbone = get_backbone("densenet92", depth=40, growth_rate=12, bottleneck=True)
    model = build_dhrnet(backbone, num_classes=N, variant="supervised")
    # DenseNet-BC-40: 6 layers per block, 2k initial channels, transitions halve the channels.
    assert densenet_layers_per_block(40, bottleneck=True) == 6
    shapes = [tuple(layer.output.shape[1:]) for layer in model.layers if layer.name.startswith("stage")]
    assert shapes == [(32, 32, 24 + 72), (16, 16, 48 + 72), (8, 8, 60 + 72)]


def test_named_backbones_and_errors():
    assert sorted(BACKBONES) == ["cifar_cnn", "densenet92", "mnist_cnn", "neal_cnn", "text_cnn"]
    with pytest.raises(ValueError, match="Unknown backbone 'vgg'.*cifar_cnn, densenet92, mnist_cnn"):
        get_backbone("vgg")
    with pytest.raises(ValueError, match="vocab_size"):
        get_backbone("text_cnn", vocab_size=1)
    with pytest.raises(ValueError, match="stages"):
        Backbone([])
    with pytest.raises(ValueError, match="not callable"):
        Backbone([3])
    with pytest.raises(ValueError, match="embedding"):
        Backbone([layers.Conv1D(4, 3)], input_kind="text")
    with pytest.raises(ValueError, match="text backbones"):
        Backbone([layers.Conv2D(4, 3)], vocab_size=10)
    for latent_dim in ("x", 0, None):
        with pytest.raises(ValueError, match="`latent_dim` must be a positive integer"):
            Backbone([layers.Conv2D(4, 3)], latent_dim=latent_dim)


def test_backbone_is_a_reusable_recipe():
    backbone = get_backbone("mnist_cnn")
    first = build_dhrnet(backbone, num_classes=3)
    second = build_dhrnet(backbone, num_classes=3)
    first_kernel = first.get_layer("block1_conv1").kernel
    assert first_kernel is not second.get_layer("block1_conv1").kernel


def test_user_stages():
    stages = [
        keras.Sequential([layers.Conv2D(8, 3, padding="same", activation="relu"), layers.MaxPooling2D()]),
        keras.Sequential([layers.Conv2D(16, 3, padding="same", activation="relu"), layers.MaxPooling2D()]),
    ]
    model = build_dhrnet(stages, num_classes=5, input_shape=(16, 16, 3), latent_dim=4)
    assert stage_shapes(model) == [(8, 8, 8), (4, 4, 16)]
    encoder = conv(9, 3, 8) + conv(9, 8, 16) + dense(4 * 4 * 16, 5)
    decoder = combiner(16) + combiner(8, 16) + conv(9, 8, 3)
    assert split_counts(model) == (encoder, lateral(8, d=4) + lateral(16, d=4), decoder)

    custom = Backbone(
        [keras.Sequential([layers.Conv2D(4, 3, strides=2, padding="same")])],
        head=layers.GlobalAveragePooling2D(),
        input_shape=(8, 8, 1),
        latent_dim=2,
        name="tiny",
    )
    model = build_dhrnet(custom, num_classes=2)
    assert model.name == "dhrnet_tiny"
    assert model.output["latent"].shape[-1] == 2
    assert model.output["reconstruction"].shape[1:] == (8, 8, 1)
