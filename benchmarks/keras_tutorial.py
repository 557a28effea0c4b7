"""The tutorial's own Keras code (../shared/seed), instrumented. Runs inside the Keras virtualenv only.

Usage: python keras_tutorial.py DATA_DIR [--epochs 10] [--save cnn_model.h5]   -> one JSON object on stdout.
--save writes the model as the tutorial does (model.save) and its test-set probabilities next to it
(FILE.predictions.npy), for `benchmarks/keras_import_check.py`.
Data is read from the same verified IDX files our code uses, so both sides see identical bytes.
"""
import argparse
import json
import os
import resource
import struct
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", default=None, help="write the model here, as the tutorial's model.save does")
    args = ap.parse_args()
    t_start = time.perf_counter()
    import tensorflow as tf
    from tensorflow.keras.layers import Conv2D, Dense, Flatten, MaxPool2D
    from tensorflow.keras.models import Sequential
    from tensorflow.keras.optimizers import SGD
    from tensorflow.keras.utils import to_categorical

    tf.keras.utils.set_random_seed(args.seed)
    X_train = read_idx(os.path.join(args.data_dir, "train-images-idx3-ubyte"))
    Y_train = read_idx(os.path.join(args.data_dir, "train-labels-idx1-ubyte"))
    X_test = read_idx(os.path.join(args.data_dir, "t10k-images-idx3-ubyte"))
    Y_test = read_idx(os.path.join(args.data_dir, "t10k-labels-idx1-ubyte"))
    # As the tutorial: /255, one-hot, NHWC, 10% validation split (sklearn's train_test_split, done in numpy).
    X_train, X_test = X_train / 255.0, X_test / 255.0
    Y_train, Y_test = to_categorical(Y_train, num_classes=10), to_categorical(Y_test, num_classes=10)
    X_train, X_test = X_train.reshape((-1, 28, 28, 1)), X_test.reshape((-1, 28, 28, 1))
    perm = np.random.default_rng(args.seed).permutation(len(X_train))
    n_val = int(np.ceil(0.1 * len(X_train)))
    X_val, Y_val = X_train[perm[:n_val]], Y_train[perm[:n_val]]
    X_train, Y_train = X_train[perm[n_val:]], Y_train[perm[n_val:]]

    model = Sequential()
    model.add(tf.keras.Input(shape=(28, 28, 1)))
    model.add(Conv2D(32, (3, 3), activation="relu", kernel_initializer="he_uniform"))
    model.add(MaxPool2D((2, 2)))
    model.add(Conv2D(64, (3, 3), activation="relu", kernel_initializer="he_uniform"))
    model.add(Conv2D(64, (3, 3), activation="relu", kernel_initializer="he_uniform"))
    model.add(MaxPool2D((2, 2)))
    model.add(Flatten())
    model.add(Dense(100, activation="relu", kernel_initializer="he_uniform"))
    model.add(Dense(10, activation="softmax"))
    model.compile(optimizer=SGD(learning_rate=0.01, momentum=0.9), loss="categorical_crossentropy",
                  metrics=["accuracy"])

    epochs = []

    class Timer(tf.keras.callbacks.Callback):
        """Per-epoch wall time of fit (training + validation), and test accuracy measured outside that time."""

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            dt = time.perf_counter() - self.t0
            acc = float(self.model.evaluate(X_test, Y_test, verbose=0)[1])
            epochs.append({"epoch": epoch + 1, "seconds": dt, "test_accuracy": acc,
                           "val_accuracy": float(logs["val_accuracy"])})
            print(json.dumps(epochs[-1]), file=sys.stderr, flush=True)

    setup = time.perf_counter() - t_start
    model.fit(X_train, Y_train, epochs=args.epochs, batch_size=32, validation_data=(X_val, Y_val), verbose=0,
              callbacks=[Timer()])

    if args.save:
        model.save(args.save)
        np.save(args.save + ".predictions.npy", model.predict(X_test, verbose=0).astype(np.float32))
    model.predict(X_test[:64], verbose=0)  # warm-up
    reps = []
    for _ in range(5):
        t0 = time.perf_counter()
        model.predict(X_test, verbose=0)
        reps.append(time.perf_counter() - t0)
    one = X_test[:1]
    lat = []
    for i in range(200):
        t0 = time.perf_counter()
        model(one, training=False)
        lat.append(time.perf_counter() - t0)
    print(json.dumps({
        "setup_seconds": setup, "epochs": epochs, "params": int(model.count_params()),
        "predict_10k_seconds_median": float(np.median(reps)),
        "single_latency_ms_median": float(np.median(lat[20:]) * 1e3),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tensorflow": tf.__version__,
    }))


if __name__ == "__main__":
    main()
