"""The model zoo: importing this package registers every shipped architecture."""

from harness.models import cifar_resnet, digits_cnn, imagenet, vgg
from harness.models.registry import (
    create_model,
    list_models,
    prunable_layers,
    register_model,
)

__all__ = [
    "cifar_resnet",
    "create_model",
    "digits_cnn",
    "imagenet",
    "list_models",
    "prunable_layers",
    "register_model",
    "vgg",
]
