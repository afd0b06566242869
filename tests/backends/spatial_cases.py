"""Model bodies for the 3-D ops, grouped and depthwise convolutions, pooling with
explicit pads, dilation and ceil mode, and normalisation of volumes (issue 19), shared
by every backend's tests: the NumPy gradient checks, torch's and TensorFlow's
reference checks, the ONNX export checks and the ONNX round trips each add them to
their own table of cases. Each body chains several of the features, to keep the
suite short; the comments give the shapes."""

from __future__ import annotations

SPATIAL_CASES = {
    # grouped + dilated + strided conv3d [6, 4, 3, 3], then ceil-mode maxpool3d [6, 2, 2, 2]
    "conv3d_grouped_dilated_maxpool3d_ceil": "input x: [4, 6, 7, 7]\n"
    " conv3d(6, [2, 3, 3], stride = [1, 2, 1], dilation = [2, 1, 2], groups = 2, bias = false)\n"
    " maxpool3d(2, ceil_mode = true)",
    # depthwise conv3d (multiplier 2) with asymmetric pads [6, 3, 3, 6], then an average
    # over real elements with pads and ceil mode's end pad [6, 2, 2, 4]
    "conv3d_depthwise_pads_avgpool3d_ceil": "input x: [3, 4, 4, 5]\n"
    " conv3d(6, 3, groups = 3, padding = [1, 0, 1, 0, 1, 2])\n"
    " avgpool3d(3, stride = 2, padding = 1, ceil_mode = true)",
    # TF-style same with stride 2 [4, 3, 2, 3], group norm of the volume
    "conv3d_same_stride2_groupnorm": "input x: [2, 5, 4, 5]\n"
    " conv3d(4, [3, 2, 3], stride = 2, padding = same)\n groupnorm(2, eps = 0.001)",
    # -inf padding never wins [2, 3, 5, 4]; 'same' 3-D average [2, 3, 3, 2]
    "maxpool3d_pads_avgpool3d_same": "input x: [2, 3, 5, 4]\n log_softmax(axis = 0)\n"
    " maxpool3d(2, stride = 1, padding = [1, 0, 0, 0, 1, 1])\n"
    " avgpool3d([1, 2, 2], padding = same)",
    # depthwise conv2d [3, 8, 8], dilated max pool with asymmetric pads [3, 3, 4]
    "conv2d_depthwise_maxpool_dilated": "input x: [3, 8, 8]\n"
    " conv2d(3, 3, groups = 3, padding = same)\n"
    " maxpool(3, stride = 2, dilation = [2, 1], padding = [1, 0, 1, 1])",
    # depthwise conv1d, multiplier 2 [4, 5]; 1-D average, asymmetric pads + ceil [4, 4]
    "conv1d_depthwise_avgpool_ceil": "input x: [2, 11]\n conv1d(4, 3, stride = 2, groups = 2)\n"
    " avgpool(3, stride = 2, padding = [2, 1], ceil_mode = true)",
    # 1-D max in ceil mode over negative values [2, 4]
    "maxpool_1d_ceil": "input x: [2, 8]\n log_softmax(axis = 0)\n"
    " maxpool(3, stride = 2, ceil_mode = true)",
    # dilated 2-D average in ceil mode [2, 4, 4], dilated sum [2, 2, 2]
    "avgpool_sumpool_dilated": "input x: [2, 8, 8]\n"
    " avgpool(2, stride = 2, dilation = 2, ceil_mode = true)\n"
    " sumpool(2, stride = 1, dilation = 2)",
    # batchnorm, instance norm and group norm of a volume (a tanh between them, or the
    # next norm would cancel each bias: a gradient of exactly 0)
    "norms_of_a_volume": "input x: [4, 3, 3, 2]\n batchnorm(momentum = 0.2) tanh\n"
    " instancenorm(eps = 0.01) tanh\n groupnorm(2)",
    # global average of a volume [6], group norm of a vector
    "global_avg_pool_volume_groupnorm": "input x: [4, 3, 3, 2]\n conv3d(6, 1)\n"
    " global_avg_pool\n groupnorm(2)",
}
