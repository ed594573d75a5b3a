"""keras-crosr: Classification-Reconstruction learning for Open-Set Recognition (Yoshihashi et al., CVPR 2019).

The front door::

    from keras_crosr import build_dhrnet, compile_dhrnet, dhrnet_targets, OpenSetHead

    model = compile_dhrnet(build_dhrnet("mnist_cnn", num_classes=10))
    head = OpenSetHead((x_train, y_train), detector="crosr")
    model.fit(x_train, dhrnet_targets(x_train, y_train), epochs=10, callbacks=[head])
    head.predict(x_test)  # 0..9, or 10 for "unknown"
"""

from keras_crosr.backbones import Backbone
from keras_crosr.backbones import get_backbone
from keras_crosr.callbacks import OpenSetHead
from keras_crosr.deploy import OpenSetLayer
from keras_crosr.deploy import SoftmaxThresholdLayer
from keras_crosr.deploy import build_open_set_model
from keras_crosr.dhrnet import ImageReconstructionError
from keras_crosr.dhrnet import build_dhrnet
from keras_crosr.dhrnet import compile_dhrnet
from keras_crosr.dhrnet import dhrnet_targets
from keras_crosr.dhrnet import inference_model
from keras_crosr.distribute import distributed_dataset
from keras_crosr.distribute import distributed_features
from keras_crosr.distribute import multi_worker_mirrored_strategy
from keras_crosr.layers import LateralBottleneck
from keras_crosr.layers import TopDownCombiner
from keras_crosr.openset import CROSR
from keras_crosr.openset import NotFittedError
from keras_crosr.openset import OneClassCROSR
from keras_crosr.openset import OpenMax
from keras_crosr.openset import SoftmaxThreshold
from keras_crosr.openset import load_detector
from keras_crosr.openset import save_detector

__version__ = "0.1.0"
