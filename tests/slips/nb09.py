"""Slips a learner may make in notebook 09 (DenseNet), each with words its check's hint must contain."""

import torch
from torch import nn

import course_utils as cu


class _LayerReturnsEverything(cu.models.DenseLayer):
    def forward(self, features):
        return torch.cat([*features, super().forward(features)], 1)  # the old features and the new ones


class _PostActivationLayer(nn.Module):
    """conv, BN, ReLU: the order of a ResNet's layers, where a dense layer has BN, ReLU, conv."""

    def __init__(self, num_input_features, growth_rate, bn_size=4):
        super().__init__()
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, 1, bias=False)
        self.norm1, self.relu1 = nn.BatchNorm2d(bn_size * growth_rate), nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(growth_rate), nn.ReLU()

    def forward(self, features):
        out = self.relu1(self.norm1(self.conv1(torch.cat(features, 1))))
        return self.relu2(self.norm2(self.conv2(out)))


class _Block(nn.Module):
    def __init__(self, num_layers, num_input_features, bn_size, growth_rate):
        super().__init__()
        for i in range(num_layers):
            self.add_module(
                f"denselayer{i + 1}",
                cu.models.DenseLayer(self.inputs(num_input_features, i, growth_rate), growth_rate, bn_size),
            )

    def inputs(self, k0, i, k):
        return k0 + i * k


class _AddingBlock(_Block):
    def forward(self, x):
        for layer in self.children():
            x = x + layer([x])  # the ResNet habit: add, where a dense block concatenates
        return x


class _InputAndLastOnly(_Block):
    def inputs(self, k0, i, k):
        return k0 + min(i, 1) * k  # each layer fed the block's input and the last layer's features only

    def forward(self, x):
        features = [x]
        for layer in self.children():
            features.append(layer([x, features[-1]] if len(features) > 1 else [x]))
        return torch.cat(features, 1)


class _WithoutTheInput(_Block):
    def forward(self, x):
        features = [x]
        for layer in self.children():
            features.append(layer(features))
        return torch.cat(features[1:], 1)  # the input left out


MISTAKES = {
    "DenseLayer": [
        (_LayerReturnsEverything, "return only the growth_rate new channels"),
        (_PostActivationLayer, "BN and ReLU come before each convolution"),
    ],
    "DenseBlock": [
        (_AddingBlock, "do not add"),
        (_InputAndLastOnly, "denselayer3.norm1.weight is \\(96,\\) in yours.*layer i sees the block's input"),
        (_WithoutTheInput, "the block returns its input too"),
    ],
}
