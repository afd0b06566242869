"""Model bodies for the 3-D ops, grouped and depthwise convolutions, and pooling with
explicit pads, dilation and ceil mode (issue 19), shared by every backend's tests:
the NumPy gradient checks, torch's and TensorFlow's reference checks and the ONNX
export checks each add them to their own table of cases."""

from __future__ import annotations

SPATIAL_CASES = {
    # grouped and depthwise convolutions, 1-D to 3-D
    "conv3d_groups_dilation_no_bias": "input x: [4, 5, 6, 6]\n"
    " conv3d(6, [2, 3, 3], stride = [1, 2, 1], dilation = [2, 1, 2], groups = 2, bias = false)",
    "conv3d_depthwise_explicit_pads": "input x: [3, 4, 4, 5]\n"
    " conv3d(6, 3, groups = 3, padding = [1, 0, 1, 0, 1, 2])",
    "conv3d_same_stride2": "input x: [2, 5, 4, 5]\n"
    " conv3d(3, [3, 2, 3], stride = 2, padding = same)",
    "conv2d_depthwise_same": "input x: [3, 6, 6]\n conv2d(3, 3, groups = 3, padding = same)",
    "conv1d_depthwise_multiplier": "input x: [2, 9]\n conv1d(4, 3, stride = 2, groups = 2)",
    # 3-D pooling
    "maxpool3d_ceil": "input x: [2, 5, 5, 6]\n maxpool3d(2, stride = 2, ceil_mode = true)",
    "maxpool3d_negative_explicit_pads": "input x: [2, 3, 3, 3]\n"
    " log_softmax(axis = 0) maxpool3d(2, stride = 1, padding = [1, 0, 0, 0, 1, 1])",
    "avgpool3d_ceil_pads": "input x: [2, 4, 4, 5]\n"
    " avgpool3d(3, stride = 2, padding = 1, ceil_mode = true)",
    "avgpool3d_same": "input x: [2, 3, 5, 4]\n avgpool3d([1, 2, 2], padding = same)",
    # 1-D and 2-D pooling: explicit asymmetric pads, dilation, ceil mode
    "maxpool_2d_dilation_pads": "input x: [2, 7, 8]\n"
    " maxpool(3, stride = 2, dilation = [2, 1], padding = [1, 0, 1, 1])",
    "avgpool_2d_dilation_ceil": "input x: [2, 8, 8]\n"
    " avgpool(2, stride = 2, dilation = 2, ceil_mode = true)",
    "avgpool_1d_asymmetric": "input x: [2, 8]\n avgpool(3, stride = 2, padding = [2, 1])",
    "maxpool_1d_ceil": "input x: [2, 8]\n maxpool(3, stride = 2, ceil_mode = true)",
    "avgpool_2d_ceil_same": "input x: [2, 5, 6]\n avgpool(2, padding = same, ceil_mode = true)",
    "sumpool_dilated": "input x: [2, 6, 6]\n sumpool(2, stride = 1, dilation = 2)",
    # normalisation over [C, D, H, W] and per sample
    "groupnorm_3d": "input x: [6, 2, 3, 3]\n groupnorm(3, eps = 0.001)",
    "groupnorm_vector": "input x: [6]\n groupnorm(2)",
    "groupnorm_1d": "input x: [4, 5]\n groupnorm(4)",
    "instancenorm_3d": "input x: [2, 3, 3, 4]\n instancenorm(eps = 0.01)",
    "batchnorm_3d": "input x: [2, 3, 3, 3]\n batchnorm(momentum = 0.2)",
    "global_avg_pool_3d": "input x: [2, 2, 3, 3]\n global_avg_pool",
}
