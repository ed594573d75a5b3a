"""The paper's experiments as declarative configurations and a resumable runner (see ``python -m keras_crosr``)."""

from keras_crosr.experiments.config import EXPERIMENTS
from keras_crosr.experiments.config import Budget
from keras_crosr.experiments.config import Experiment
from keras_crosr.experiments.config import Network
from keras_crosr.experiments.config import Training
from keras_crosr.experiments.config import get_experiment
from keras_crosr.experiments.runner import Runner
from keras_crosr.experiments.runner import make_detector
from keras_crosr.experiments.runner import run_experiment
from keras_crosr.experiments.runner import warmup_cosine
