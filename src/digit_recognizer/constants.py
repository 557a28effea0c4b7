"""Constants named once: image geometry, classes and MNIST pixel statistics."""

IMAGE_SIZE = 28  # MNIST images are 28x28 pixels
NUM_CLASSES = 10
PIXEL_MAX = 255.0  # images are stored as uint8, 0 = background, 255 = ink

# Mean and std of MNIST training pixels after scaling to [0, 1].
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

# MNIST digits were size-normalised into a 20x20 box and centred by centre of mass in 28x28.
DIGIT_BOX = 20

# MNIST px: the stroke widths of MNIST's digits at the 5th / 50th / 95th percentile of 5,000 training-split
# digits, measured as the reader measures a stroke (twice the 90th percentile of the distance from a pixel inside
# a stroke, above half of full ink, to the paper, exactly: inference.reader.masks.typical_width). The reader
# evens strokes outside this range to the median; the synthesizers draw pens in multiples of the median.
MNIST_STROKES = (2.0, 2.8, 4.5)
MNIST_STROKE = MNIST_STROKES[1]

# The label of a training image that is not a digit (outlier exposure): the model's ten outputs learn to stay
# even on it. It is never an output.
NOT_DIGIT = NUM_CLASSES
