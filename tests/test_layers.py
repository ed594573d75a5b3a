"""Layer tests for LateralBottleneck (h_l, h~_l) and TopDownCombiner (g_l), Keras style."""

import keras
import numpy as np
import pytest
from keras import ops
from keras.src import testing

from keras_crosr.layers import LateralBottleneck, TopDownCombiner


class LateralBottleneckTest(testing.TestCase):
    def test_2d_feature_maps(self):
        self.run_layer_test(
            LateralBottleneck,
            init_kwargs={"latent_dim": 4},
            input_shape=(2, 6, 6, 5),
            expected_output_shape=((2, 6, 6, 4), (2, 6, 6, 5)),
            expected_num_trainable_weights=4,
            expected_num_non_trainable_weights=0,
        )

    def test_1d_sequences(self):
        self.run_layer_test(
            LateralBottleneck,
            init_kwargs={"latent_dim": 3, "kernel_size": 5},
            input_shape=(2, 7, 6),
            expected_output_shape=((2, 7, 3), (2, 7, 6)),
            expected_num_trainable_weights=4,
        )

    def test_identity_mode_is_the_ladder_lateral(self):
        self.run_layer_test(
            LateralBottleneck,
            init_kwargs={"identity": True},
            input_shape=(2, 4, 4, 3),
            expected_output_shape=((2, 4, 4, 3), (2, 4, 4, 3)),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            run_training_check=False,
        )
        x = np.random.rand(2, 4, 4, 3).astype("float32")
        z, back = LateralBottleneck(identity=True)(x)
        self.assertAllClose(z, x)
        self.assertAllClose(back, x)

    def test_weight_shapes_and_math(self):
        layer = LateralBottleneck(latent_dim=2, kernel_size=3)
        x = np.random.randn(1, 5, 5, 3).astype("float32")
        z, back = layer(x)
        self.assertEqual(tuple(layer.h_kernel.shape), (3, 3, 3, 2))
        self.assertEqual(tuple(layer.reprojection_kernel.shape), (3, 3, 2, 3))
        # h_l is ReLU then convolution; h~_l is a linear convolution of z.
        conv = keras.layers.Conv2D(2, 3, padding="same")
        conv.build((None, 5, 5, 3))
        conv.set_weights([layer.h_kernel.numpy(), layer.h_bias.numpy()])
        self.assertAllClose(z, conv(np.maximum(x, 0)), atol=1e-5)
        reproject = keras.layers.Conv2D(3, 3, padding="same")
        reproject.build((None, 5, 5, 2))
        reproject.set_weights([layer.reprojection_kernel.numpy(), layer.reprojection_bias.numpy()])
        self.assertAllClose(back, reproject(z), atol=1e-5)

    def test_config_round_trip(self):
        layer = LateralBottleneck(latent_dim=7, kernel_size=1, kernel_initializer="he_normal", name="lat")
        clone = LateralBottleneck.from_config(layer.get_config())
        self.assertEqual(clone.get_config(), layer.get_config())
        self.assertEqual(clone.latent_dim, 7)
        identity = LateralBottleneck.from_config(LateralBottleneck(identity=True).get_config())
        self.assertTrue(identity.identity)
        self.assertIsNone(identity.latent_dim)
        from_numpy = LateralBottleneck(latent_dim=np.int64(7), kernel_size=np.int32(1))  # e.g. from an array's shape
        config = from_numpy.get_config()
        self.assertEqual((config["latent_dim"], config["kernel_size"]), (7, 1))
        self.assertIs(type(config["latent_dim"]), int)  # a Python int: the config is JSON in model.save

    def test_weights_start_independent(self):
        # latent_dim == channels: h_l and h~_l have the same shape and, from one initializer, would be the same
        for initializer in ("glorot_uniform", keras.initializers.GlorotUniform(seed=3)):
            layer = LateralBottleneck(latent_dim=5, kernel_size=1, kernel_initializer=initializer)
            layer.build((None, 4, 4, 5))
            self.assertFalse(np.allclose(layer.h_kernel.numpy(), layer.reprojection_kernel.numpy()))
        seeded = [LateralBottleneck(latent_dim=5, kernel_initializer=keras.initializers.HeNormal(seed=7)) for _ in "ab"]
        for layer in seeded:
            layer.build((None, 4, 4, 5))
        self.assertAllClose(seeded[0].h_kernel, seeded[1].h_kernel)  # a seeded layer stays reproducible
        self.assertAllClose(seeded[0].reprojection_kernel, seeded[1].reprojection_kernel)

    def test_errors(self):
        for bad in (0, -3, 2.5, None, True):
            with self.assertRaisesRegex(ValueError, "latent_dim"):
                LateralBottleneck(latent_dim=bad)
        with self.assertRaisesRegex(ValueError, "kernel_size"):
            LateralBottleneck(latent_dim=2, kernel_size=0)
        with self.assertRaisesRegex(ValueError, r"\(batch, H, W, C\) or \(batch, T, C\)"):
            LateralBottleneck(latent_dim=2)(np.zeros((2, 3), "float32"))


class TopDownCombinerTest(testing.TestCase):
    def test_upsamples_and_projects_channels(self):
        self.run_layer_test(
            TopDownCombiner,
            init_kwargs={},
            input_shape=[(2, 3, 3, 6), (2, 6, 6, 4)],
            expected_output_shape=(2, 6, 6, 4),
            # projection kernel + bias, convolution kernel + bias
            expected_num_trainable_weights=4,
            run_training_check=False,  # the fit check of run_layer_test cannot feed list inputs on TF
        )

    def test_same_channels_no_projection(self):
        self.run_layer_test(
            TopDownCombiner,
            init_kwargs={"kernel_size": 1},
            input_shape=[(2, 4, 4, 3), (2, 8, 8, 3)],
            expected_output_shape=(2, 8, 8, 3),
            expected_num_trainable_weights=2,
            run_training_check=False,
        )

    def test_top_stage_takes_the_lateral_alone(self):
        self.run_layer_test(
            TopDownCombiner,
            init_kwargs={},
            input_shape=(2, 4, 4, 3),
            expected_output_shape=(2, 4, 4, 3),
            expected_num_trainable_weights=2,
        )

    def test_1d_sequences(self):
        self.run_layer_test(
            TopDownCombiner,
            init_kwargs={},
            input_shape=[(2, 5, 8), (2, 10, 6)],
            expected_output_shape=(2, 10, 6),
            expected_num_trainable_weights=4,
            run_training_check=False,
        )

    def test_channels_last_whatever_the_global_data_format(self):
        x = np.random.randn(2, 4, 4, 3).astype("float32")
        bottleneck, combiner = LateralBottleneck(latent_dim=2), TopDownCombiner(kernel_size=1)
        expected_z, expected_back = (ops.convert_to_numpy(t) for t in bottleneck(x))
        expected_out = ops.convert_to_numpy(combiner(x))
        keras.config.set_image_data_format("channels_first")
        try:
            z, back = bottleneck(x)
            out = combiner(x)
        finally:
            keras.config.set_image_data_format("channels_last")
        self.assertAllClose(z, expected_z)
        self.assertAllClose(back, expected_back)
        self.assertAllClose(out, expected_out)

    def test_math_sum_conv_relu(self):
        layer = TopDownCombiner(kernel_size=1)
        top = np.random.randn(1, 2, 2, 3).astype("float32")
        lateral = np.random.randn(1, 4, 4, 3).astype("float32")
        out = ops.convert_to_numpy(layer([top, lateral]))
        kernel = layer.kernel.numpy()[0, 0]
        upsampled = top.repeat(2, axis=1).repeat(2, axis=2)
        expected = np.maximum((upsampled + lateral) @ kernel + layer.bias.numpy(), 0)
        self.assertAllClose(out, expected, atol=1e-5)
        self.assertGreater(np.mean(out == 0), 0.0)

    def test_math_projection_upsampling_and_3x3_conv(self):
        # the path of real backbones: the top-down input has other channels (a learned 1x1 projection), a coarser
        # grid (nearest-neighbour up-sampling), and g_l's convolution is 3x3 ("same", zero padding)
        rng = np.random.default_rng(0)
        for top_shape, lateral_shape in (((1, 3, 2, 6), (1, 6, 6, 4)), ((2, 5, 8), (2, 10, 6))):
            layer = TopDownCombiner(kernel_size=3, bias_initializer="random_normal")
            top = rng.normal(size=top_shape).astype("float32")
            lateral = rng.normal(size=lateral_shape).astype("float32")
            out = ops.convert_to_numpy(layer([top, lateral]))
            if top.ndim == 3:  # a sequence is a one-row image for the numpy reference below
                top, lateral, out = top[:, None], lateral[:, None], out[:, None]
                kernel = layer.kernel.numpy()[None]
            else:
                kernel = layer.kernel.numpy()
            projected = top @ layer.projection_kernel.numpy().reshape(top.shape[-1], -1) + layer.projection_bias.numpy()
            factors = (lateral.shape[1] // top.shape[1], lateral.shape[2] // top.shape[2])
            summed = projected.repeat(factors[0], axis=1).repeat(factors[1], axis=2) + lateral
            kh, kw = kernel.shape[:2]
            padded = np.pad(summed, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
            height, width = summed.shape[1:3]
            expected = sum(
                padded[:, i : i + height, j : j + width] @ kernel[i, j] for i in range(kh) for j in range(kw)
            )
            expected = np.maximum(expected + layer.bias.numpy(), 0)
            self.assertEqual(layer.projection_kernel.shape[-2:], (top.shape[-1], lateral.shape[-1]))
            self.assertAllClose(out, expected, atol=1e-5)
            self.assertGreater(np.mean(out == 0), 0.0)
            self.assertGreater(np.mean(out > 0), 0.0)

    def test_config_round_trip(self):
        layer = TopDownCombiner(kernel_size=5, bias_initializer="ones", name="g")
        self.assertEqual(TopDownCombiner.from_config(layer.get_config()).get_config(), layer.get_config())

    def test_weights_start_independent(self):
        layer = TopDownCombiner(kernel_size=1)
        layer.build([(None, 2, 2, 6), (None, 4, 4, 3)])
        projection, kernel = layer.projection_kernel.numpy()[0, 0], layer.kernel.numpy()[0, 0]
        ratio = projection[:3] / kernel  # scaled copies of one stream would give a constant ratio
        self.assertGreater(np.std(ratio), 0.1 * np.mean(np.abs(ratio)))

    def test_calls_must_match_the_build(self):
        top, lateral = np.ones((1, 2, 2, 3), "float32"), np.ones((1, 4, 4, 3), "float32")
        alone = TopDownCombiner()
        alone(lateral)
        with self.assertRaisesRegex(ValueError, "built on the lateral term alone"):
            alone([top, lateral])
        pair = TopDownCombiner()
        pair([top, lateral])
        with self.assertRaisesRegex(ValueError, r"built on \[top_down, lateral\]"):
            pair(lateral)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "not an integer multiple"):
            TopDownCombiner()([np.zeros((1, 3, 3, 2), "float32"), np.zeros((1, 7, 7, 2), "float32")])
        with self.assertRaisesRegex(ValueError, "same rank"):
            TopDownCombiner()([np.zeros((1, 3, 2), "float32"), np.zeros((1, 6, 6, 2), "float32")])
        with self.assertRaisesRegex(ValueError, "kernel_size"):
            TopDownCombiner(kernel_size=-1)

    def test_unknown_spatial_sizes_need_a_fixed_input_shape(self):
        top, lateral = keras.Input((None, None, 8)), keras.Input((None, None, 8))
        with self.assertRaisesRegex(ValueError, r"spatial sizes must be known \(static\).*fixed `input_shape`"):
            TopDownCombiner()([top, lateral])
        self.assertEqual(TopDownCombiner()(lateral).shape, (None, None, None, 8))  # no up-sampling, no need


@pytest.mark.parametrize("layer", [LateralBottleneck(latent_dim=2), TopDownCombiner()])
def test_layers_are_registered_serializable(layer):
    config = keras.saving.serialize_keras_object(layer)
    assert config["registered_name"] == f"keras_crosr>{type(layer).__name__}"
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(layer)
