"""The report's three models built in Keras (TensorFlow backend), timed on this machine.

The issue's speed targets come from a Keras build of the same models measured on another
machine. This script rebuilds them from ../shared/spec/seed-system.md section 2, checks their
parameter counts against the spec, and times a training step (batch 16, fp32, Adam, the
default `compile`) so that PyTorch and Keras can be compared in one run on one machine.
It needs TensorFlow, which facesketch does not depend on: run it with an interpreter that has
`tensorflow-cpu` installed (train_bench.py --keras-python does that for you).

    /path/to/tf-venv/bin/python bench/keras_bench.py [--models conv_ae] [--seconds 20]

Prints one JSON object per model: images/s, trainable and total parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (trainable, total) from the spec; a build that differs is not the report's model
SPEC_PARAMS = {"dense_ae": (425_086_880, 425_086_880), "conv_ae": (9_784_491, 9_786_347),
               "hybrid_ae": (1_470_779, 1_472_779)}


def dense_ae(keras):
    layers = keras.layers
    x = inp = keras.Input((128, 128, 3))
    x = layers.Flatten()(x)
    for width in (4096, 2048, 1024, 512, 256, 128, 64, 32, 64, 128, 256, 512, 1024, 2048, 4096):
        x = layers.Dense(width, activation="relu")(x)
    x = layers.Dense(128 * 128 * 3, activation="sigmoid")(x)
    return keras.Model(inp, layers.Reshape((128, 128, 3))(x)), "mse"


def conv_ae(keras):
    layers = keras.layers
    x = inp = keras.Input((256, 256, 3))
    for f, bn in ((16, False), (32, True), (64, False), (128, True), (256, True), (512, True)):
        x = layers.Conv2D(f, 4, strides=2, padding="valid", use_bias=False, kernel_initializer="he_normal")(x)
        x = layers.BatchNormalization()(x) if bn else x
        x = layers.LeakyReLU(0.3)(x)
    for f, dropout in ((512, True), (256, False), (128, True), (64, False), (32, False), (16, False)):
        x = layers.Conv2DTranspose(f, 4, strides=2, padding="valid", use_bias=False, kernel_initializer="he_normal")(x)
        x = layers.Dropout(0.1)(x) if dropout else x
        x = layers.LeakyReLU(0.3)(x)
    x = layers.Conv2DTranspose(8, 2, strides=1, padding="valid")(x)
    x = layers.Conv2DTranspose(3, 2, strides=1, padding="valid")(x)
    return keras.Model(inp, x), "mae"


def hybrid_ae(keras):
    layers = keras.layers
    x = inp = keras.Input((256, 256, 3))
    for f, k in ((256, 5), (128, 3), (64, 3), (32, 3), (16, 3), (8, 3)):
        x = layers.Conv2D(f, k, padding="same")(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
        x = layers.LeakyReLU(0.3)(x)
        x = layers.BatchNormalization()(x)
    x = layers.Dense(512)(layers.Flatten()(x))
    x = layers.Reshape((4, 4, 8))(layers.Dense(128)(x))
    for f, k in ((16, 3), (32, 3), (64, 3), (128, 3), (256, 5)):
        x = layers.Conv2DTranspose(f, k, padding="same")(x)
        x = layers.UpSampling2D(2)(x)
        x = layers.ReLU()(x)
        x = layers.BatchNormalization()(x)
    x = layers.UpSampling2D(2)(x)
    x = layers.Conv2DTranspose(3, 3, padding="same", activation="relu")(x)
    return keras.Model(inp, x), "mse"


BUILDERS = {"dense_ae": dense_ae, "conv_ae": conv_ae, "hybrid_ae": hybrid_ae}


def measure(name: str, batch: int, seconds: float, jit: str = "auto") -> dict:
    import numpy as np
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model, loss = BUILDERS[name](keras)
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    total = int(model.count_params())
    if (trainable, total) != SPEC_PARAMS[name]:
        raise SystemExit(f"{name}: Keras build has {trainable:,} trainable / {total:,} total parameters, "
                         f"spec says {SPEC_PARAMS[name][0]:,} / {SPEC_PARAMS[name][1]:,}")
    model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-7), loss=loss,
                  jit_compile={"auto": "auto", "xla": True, "off": False}[jit])
    shape = (batch, *model.input_shape[1:])
    x = np.random.rand(*shape).astype("float32")
    y = np.random.rand(batch, *model.output_shape[1:]).astype("float32")
    model.train_on_batch(x, y)  # trace and compile
    model.train_on_batch(x, y)
    n, t = 0, time.perf_counter()
    while (time.perf_counter() - t < seconds and n < 50) or n < 2:
        model.train_on_batch(x, y)
        n += 1
    return {"model": name, "batch": batch, "images_per_s": n * batch / (time.perf_counter() - t),
            "trainable_params": trainable, "total_params": total, "tensorflow": tf.__version__,
            "keras": keras.__version__, "jit_compile": jit, "threads": tf.config.threading.get_intra_op_parallelism_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="dense_ae,conv_ae,hybrid_ae")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--jit", choices=("auto", "xla", "off"), default="auto",
                    help="Keras compile(jit_compile=...): auto (the Keras default), xla, off")
    args = ap.parse_args()
    try:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    except ImportError:
        raise SystemExit(f"{sys.executable} has no TensorFlow/Keras; run this script with an interpreter that does "
                         "(pip install tensorflow-cpu)") from None
    for name in args.models.split(","):
        if name not in BUILDERS:
            raise SystemExit(f"unknown model {name!r}; expected one of {', '.join(BUILDERS)}")
        print(json.dumps(measure(name, args.batch, args.seconds, args.jit)), flush=True)


if __name__ == "__main__":
    main()
